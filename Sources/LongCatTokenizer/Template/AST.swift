/// The syntax tree of a parsed template. Every node records its source line for error messages.

struct Expr: Sendable {
    let line: Int
    let kind: Kind
    /// Height of the tree from this node down (a leaf is 1); the parser bounds it, so evaluating and freeing an
    /// expression never recurses deeper than that.
    let depth: Int

    init(line: Int, kind: Kind) {
        self.line = line
        self.kind = kind
        depth = 1 + kind.children.reduce(0) { max($0, $1.depth) }
    }

    indirect enum Kind: Sendable {
        case literal(Literal)
        case name(String)
        case list([Expr])
        case tuple([Expr])
        case dict([(key: Expr, value: Expr)])
        /// `a.b`: attribute first, then item (jinja2's `getattr`).
        case attribute(Expr, String)
        /// `a[b]`: item first, then attribute (jinja2's `getitem`).
        case item(Expr, Expr)
        case slice(Expr, start: Expr?, stop: Expr?, step: Expr?)
        case call(Expr, CallArguments)
        case filter(Expr, name: String, CallArguments)
        case test(Expr, name: String, CallArguments, negated: Bool)
        case not(Expr)
        case negate(Expr)
        case plus(Expr)
        case binary(BinaryOperator, Expr, Expr)
        /// `a ~ b ~ c`: the operands' `str()` joined.
        case concat([Expr])
        case and(Expr, Expr)
        case or(Expr, Expr)
        /// `a < b <= c` compares pairwise like Python.
        case compare(Expr, [(CompareOperator, Expr)])
        /// `then if test else otherwise`; without `else` a false test gives undefined.
        case conditional(test: Expr, then: Expr, otherwise: Expr?)
    }
}

extension Expr.Kind {
    /// The direct subexpressions.
    var children: [Expr] {
        switch self {
        case .literal, .name: return []
        case .list(let items), .tuple(let items), .concat(let items): return items
        case .dict(let pairs): return pairs.flatMap { [$0.key, $0.value] }
        case .attribute(let base, _), .not(let base), .negate(let base), .plus(let base): return [base]
        case .item(let base, let key): return [base, key]
        case .slice(let base, let start, let stop, let step): return [base] + [start, stop, step].compactMap { $0 }
        case .call(let callee, let arguments): return [callee] + arguments.expressions
        case .filter(let base, _, let arguments), .test(let base, _, let arguments, _): return [base] + arguments.expressions
        case .binary(_, let left, let right), .and(let left, let right), .or(let left, let right): return [left, right]
        case .compare(let first, let operations): return [first] + operations.map(\.1)
        case .conditional(let test, let then, let otherwise): return [test, then] + (otherwise.map { [$0] } ?? [])
        }
    }
}

extension CallArguments {
    var expressions: [Expr] { positional + keyword.map(\.value) }
}

enum Literal: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
}

struct CallArguments: Sendable {
    var positional: [Expr] = []
    var keyword: [(name: String, value: Expr)] = []
}

enum BinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", floorDivide = "//", modulo = "%", power = "**"
}

enum CompareOperator: String, Sendable {
    case equal = "==", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case contains = "in", notContains = "not in"
}

struct Node: Sendable {
    let line: Int
    let kind: Kind

    indirect enum Kind: Sendable {
        case text(String)
        case output(Expr)
        case conditional(branches: [(condition: Expr, body: [Node])], otherwise: [Node])
        case loop(ForLoop)
        case assign(AssignTarget, Expr)
        /// `{% set x %}...{% endset %}`: the rendered body becomes a string.
        case assignBlock(AssignTarget, [Node])
        case macro(MacroDefinition)
        /// `{% call(params) m(args) %}body{% endcall %}`: calls `m` with the body as `caller`.
        case callBlock(caller: MacroDefinition, call: Expr)
        case breakLoop
        case continueLoop
        case with([(target: AssignTarget, value: Expr)], body: [Node])
        /// transformers' `{% generation %}` marks assistant text for masks; for rendering it is transparent.
        case generation([Node])
    }
}

struct ForLoop: Sendable {
    let target: AssignTarget
    let iterable: Expr
    /// `for x in xs if cond`: skipped items do not count in `loop.index`/`loop.length`.
    let filter: Expr?
    let body: [Node]
    /// Rendered when no iteration ran to the end of the body (normally: nothing to iterate).
    let otherwise: [Node]
}

indirect enum AssignTarget: Sendable {
    case name(String)
    case tuple([AssignTarget])
    /// `set ns.attr = value` on a `namespace()`.
    case namespaceAttribute(namespace: String, attribute: String)
}

struct MacroDefinition: Sendable {
    let name: String
    let parameters: [(name: String, defaultValue: Expr?)]
    let body: [Node]
}
