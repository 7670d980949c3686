/// The variables visible at one point of a template. A `for` iteration, a macro call and a `with` block each
/// get a child scope, so what they `set` disappears when they end (jinja2's rule); `if` blocks do not.
final class Scope {
    private var variables: [String: Value]
    let parent: Scope?

    init(parent: Scope?, variables: [String: Value] = [:]) {
        self.parent = parent
        self.variables = variables
    }

    func lookup(_ name: String) -> Value? { variables[name] ?? parent?.lookup(name) }

    func assign(_ name: String, _ value: Value) { variables[name] = value }
}

/// Renders a parsed template. One interpreter renders once.
final class Interpreter {
    /// Deeper macro recursion is an error rather than a stack overflow.
    static let maximumCallDepth = 64

    private let root: Scope
    private var output = ""
    private var callDepth = 0
    /// Work, iterations and sizes of this render (see `Limits`).
    private let budget = RenderBudget()

    private enum Flow { case normal, breakLoop, continueLoop }

    init(root: Scope) { self.root = root }

    func render(_ nodes: [Node]) throws -> String {
        try budget.install {
            _ = try execute(nodes, in: root)
        }
        return output
    }

    /// Appends rendered text, within the size limit.
    private func emit(_ text: String) throws {
        try Limits.checkString(bytes: output.utf8.count + text.utf8.count)
        budget.charge(bytes: text.utf8.count)
        output += text
    }

    // MARK: Statements

    private func execute(_ nodes: [Node], in scope: Scope) throws -> Flow {
        for node in nodes {
            let flow = try annotated(node.line) { try execute(node, in: scope) }
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func execute(_ node: Node, in scope: Scope) throws -> Flow {
        budget.charge(1)
        try budget.check()
        switch node.kind {
        case .text(let text):
            try emit(text)
        case .output(let expr):
            let text = try evaluate(expr, in: scope).pythonStr
            try budget.check()
            try emit(text)
        case .conditional(let branches, let otherwise):
            for branch in branches {
                if try evaluate(branch.condition, in: scope).isTruthy { return try execute(branch.body, in: scope) }
            }
            return try execute(otherwise, in: scope)
        case .loop(let loop):
            try run(loop, in: scope)
        case .assign(let target, let expr):
            try assign(try evaluate(expr, in: scope), to: target, in: scope)
        case .assignBlock(let target, let body):
            let text = try capture { _ = try execute(body, in: scope) }
            try assign(.string(text), to: target, in: scope)
        case .macro(let definition):
            scope.assign(definition.name, .macro(Macro(definition: definition, scope: scope)))
        case .callBlock(let caller, let call):
            guard case .call(let callee, let arguments) = call.kind else { preconditionFailure("checked by the parser") }
            let result = try annotated(call.line) {
                try self.call(
                    try evaluate(callee, in: scope), try evaluate(arguments, in: scope),
                    caller: Macro(definition: caller, scope: scope))
            }
            try emit(result.pythonStr)
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        case .with(let assignments, let body):
            let inner = Scope(parent: scope)
            for (target, value) in assignments { try assign(try evaluate(value, in: scope), to: target, in: inner) }
            return try execute(body, in: inner)
        case .generation(let body):
            return try execute(body, in: scope)
        }
        return .normal
    }

    private func run(_ loop: ForLoop, in scope: Scope) throws {
        var items = try evaluate(loop.iterable, in: scope).iterated()
        if let filter = loop.filter {
            items = try items.filter { item in
                try budget.iterate()
                let probe = Scope(parent: scope)
                try assign(item, to: loop.target, in: probe)
                return try evaluate(filter, in: probe).isTruthy
            }
        }
        let context = LoopContext(items: items)
        // jinja2 runs `else` unless some iteration reached the end of the body, so it also runs when every
        // iteration `continue`d or the first one `break`s.
        var completedAnIteration = false
        for (index, item) in items.enumerated() {
            try budget.iterate()
            context.index0 = index
            let iteration = Scope(parent: scope, variables: ["loop": .loop(context)])
            try assign(item, to: loop.target, in: iteration)
            let flow = try execute(loop.body, in: iteration)
            if flow == .breakLoop { break }
            if flow == .normal { completedAnIteration = true }
        }
        if !completedAnIteration { _ = try execute(loop.otherwise, in: scope) }
    }

    private func assign(_ value: Value, to target: AssignTarget, in scope: Scope) throws {
        switch target {
        case .name(let name):
            scope.assign(name, value)
        case .tuple(let targets):
            let items = try value.iterated()
            guard items.count == targets.count else {
                throw TemplateError.runtime(
                    "cannot unpack \(items.count) value(s) into \(targets.count) variables")
            }
            for (item, target) in zip(items, targets) { try assign(item, to: target, in: scope) }
        case .namespaceAttribute(let name, let attribute):
            guard case .namespace(let namespace)? = scope.lookup(name) else {
                throw TemplateError.runtime("cannot assign attribute on non-namespace object '\(name)'")
            }
            try Namespace.checkName(attribute)
            try Limits.checkStorable(value, in: "namespace")
            namespace.attributes[attribute] = value
        }
    }

    /// Renders `body` into a string instead of the output.
    private func capture(_ body: () throws -> Void) rethrows -> String {
        let saved = output
        output = ""
        defer { output = saved }
        try body()
        return output
    }

    /// Errors from builtins do not know where they happened; the innermost node or expression that does fills
    /// in its line.
    private func annotated<T>(_ line: Int, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var error as TemplateError where error.line == nil {
            error.line = line
            throw error
        }
    }

    // MARK: Expressions

    private func evaluate(_ expr: Expr, in scope: Scope) throws -> Value {
        try annotated(expr.line) {
            budget.charge(1)
            let value = try evaluateUnannotated(expr, in: scope)
            // Value operations only charge the budget; an exhausted one stops the render here.
            try budget.check()
            return value
        }
    }

    private func evaluate(_ arguments: CallArguments, in scope: Scope) throws -> Arguments {
        Arguments(
            positional: try arguments.positional.map { try evaluate($0, in: scope) },
            keyword: try arguments.keyword.map { ($0.name, try evaluate($0.value, in: scope)) })
    }

    private func evaluateUnannotated(_ expr: Expr, in scope: Scope) throws -> Value {
        switch expr.kind {
        case .literal(let literal):
            switch literal {
            case .none: return .none
            case .bool(let b): return .bool(b)
            case .int(let i): return .int(i)
            case .double(let d): return .double(d)
            case .string(let s): return .string(s)
            }
        case .name(let name):
            return scope.lookup(name) ?? .undefined("'\(name)' is undefined")
        case .list(let items):
            let values = try items.map { try evaluate($0, in: scope) }
            try Limits.checkNewContainer(values, kind: "list")
            return .list(values)
        case .tuple(let items):
            let values = try items.map { try evaluate($0, in: scope) }
            try Limits.checkNewContainer(values, kind: "tuple")
            return .tuple(values)
        case .dict(let pairs):
            var dict = OrderedDict<Value>()
            for (keyExpr, valueExpr) in pairs {
                guard case .string(let key) = try evaluate(keyExpr, in: scope) else {
                    throw TemplateError.runtime("dict keys must be strings")
                }
                dict[key] = try evaluate(valueExpr, in: scope)
            }
            try Limits.checkNewContainer(dict.values, kind: "dict")
            return .dict(dict)
        case .attribute(let base, let name):
            return try evaluate(base, in: scope).attribute(name)
        case .item(let base, let key):
            return try evaluate(base, in: scope).item(try evaluate(key, in: scope))
        case .slice(let base, let start, let stop, let step):
            let value = try evaluate(base, in: scope)
            func index(_ expr: Expr?) throws -> Int? {
                guard let expr else { return nil }
                let bound = try evaluate(expr, in: scope)
                if bound.isNone { return nil }
                guard let i = bound.integerValue else {
                    throw TemplateError.runtime("slice indices must be integers or None")
                }
                return i
            }
            return try value.sliced(start: try index(start), stop: try index(stop), step: try index(step))
        case .call(let callee, let arguments):
            return try call(try evaluate(callee, in: scope), try evaluate(arguments, in: scope), caller: nil)
        case .filter(let base, let name, let arguments):
            let value = try evaluate(base, in: scope)
            budget.charge(Filters.cost(name, value))
            return try Filters.table[name]!(value, try evaluate(arguments, in: scope))
        case .test(let base, let name, let arguments, let negated):
            let passed = try Predicates.table[name]!(try evaluate(base, in: scope), try evaluate(arguments, in: scope))
            return .bool(passed != negated)
        case .not(let operand):
            return .bool(!(try evaluate(operand, in: scope).isTruthy))
        case .negate(let operand):
            return try evaluate(operand, in: scope).negated()
        case .plus(let operand):
            return try evaluate(operand, in: scope).unaryPlus()
        case .binary(let op, let left, let right):
            return try Value.binary(op, try evaluate(left, in: scope), try evaluate(right, in: scope))
        case .concat(let operands):
            let pieces = try operands.map { try evaluate($0, in: scope).pythonStr }
            try budget.check()
            let bytes = pieces.reduce(0) { $0 + $1.utf8.count }
            try Limits.checkString(bytes, times: 1)
            return .string(pieces.joined())
        case .and(let left, let right):
            let value = try evaluate(left, in: scope)
            return value.isTruthy ? try evaluate(right, in: scope) : value
        case .or(let left, let right):
            let value = try evaluate(left, in: scope)
            return value.isTruthy ? value : try evaluate(right, in: scope)
        case .compare(let first, let operations):
            var left = try evaluate(first, in: scope)
            for (op, rightExpr) in operations {
                let right = try evaluate(rightExpr, in: scope)
                guard try compare(op, left, right) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let test, let then, let otherwise):
            if try evaluate(test, in: scope).isTruthy { return try evaluate(then, in: scope) }
            guard let otherwise else {
                return .undefined(
                    "the inline if-expression on line \(expr.line) evaluated to false and no else section was defined")
            }
            return try evaluate(otherwise, in: scope)
        }
    }

    private func compare(_ op: CompareOperator, _ left: Value, _ right: Value) throws -> Bool {
        switch op {
        case .equal: return left.pythonEquals(right)
        case .notEqual: return !left.pythonEquals(right)
        case .contains: return try right.pythonContains(left)
        case .notContains: return try !right.pythonContains(left)
        default: return try left.pythonCompare(op, right)
        }
    }

    // MARK: Calls

    private func call(_ callee: Value, _ arguments: Arguments, caller: Macro?) throws -> Value {
        switch callee {
        case .macro(let macro): return try call(macro, arguments, caller: caller)
        case .function where caller != nil: throw TemplateError.runtime("a 'call' block needs a macro to call")
        case .function(let function): return try function.call(arguments)
        case .undefined(let undefined): throw undefined.failure()
        default: throw TemplateError.runtime("'\(callee.typeName)' object is not callable")
        }
    }

    /// Binds arguments like Python: positionally, then by name; the rest are `varargs` and `kwargs`. Missing
    /// parameters take their default (evaluated now, so it may use earlier parameters) or are undefined.
    private func call(_ macro: Macro, _ arguments: Arguments, caller: Macro?) throws -> Value {
        let definition = macro.definition
        guard callDepth < Interpreter.maximumCallDepth else {
            throw TemplateError.runtime("macro '\(definition.name)' nests deeper than \(Interpreter.maximumCallDepth) calls")
        }
        callDepth += 1
        defer { callDepth -= 1 }

        let scope = Scope(parent: macro.scope ?? root)
        var provided = Set<String>()
        var varargs: [Value] = []
        for (index, value) in arguments.positional.enumerated() {
            guard index < definition.parameters.count else {
                varargs.append(value)
                continue
            }
            scope.assign(definition.parameters[index].name, value)
            provided.insert(definition.parameters[index].name)
        }
        var kwargs = OrderedDict<Value>()
        for (name, value) in arguments.keyword {
            guard definition.parameters.contains(where: { $0.name == name }) else {
                kwargs[name] = value
                continue
            }
            guard provided.insert(name).inserted else {
                throw TemplateError.runtime("macro '\(definition.name)' got multiple values for argument '\(name)'")
            }
            scope.assign(name, value)
        }
        for parameter in definition.parameters where !provided.contains(parameter.name) {
            let value = try parameter.defaultValue.map { try evaluate($0, in: scope) }
            scope.assign(parameter.name, value ?? .undefined("parameter '\(parameter.name)' was not provided"))
        }
        try Limits.checkNewContainer(varargs + kwargs.values, kind: "macro's varargs or kwargs")
        scope.assign("varargs", .tuple(varargs))
        scope.assign("kwargs", .dict(kwargs))
        if let caller { scope.assign("caller", .macro(caller)) }
        return .string(try capture { _ = try execute(definition.body, in: scope) })
    }
}
