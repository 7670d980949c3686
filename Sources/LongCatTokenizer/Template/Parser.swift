/// Builds the syntax tree from tokens with jinja2's grammar and operator precedence (lowest first):
/// `x if c else y`, `or`, `and`, `not`, comparisons and `in`, `+ -`, `~`, `* / // %`, `**`, unary `- +`,
/// then postfix `.attr`, `[index]`, `(call)`, `| filter` and `is test` (so `a ~ b | trim` trims only `b`).
struct Parser {
    private let tokens: [Token]
    private var index = 0
    /// `break`/`continue` are only valid inside a `for` body (and not in a macro defined there).
    private var loopDepth = 0
    /// How deeply blocks and expressions nest; bounded so that hostile input cannot overflow the stack.
    private var nesting = 0
    static let maximumNesting = 100
    /// Height of one expression tree: chains such as `a + b + c ...` or `x|f|g ...` build it without nesting.
    static let maximumExpressionDepth = 256

    static func parse(_ template: String) throws -> [Node] {
        var parser = Parser(tokens: try Lexer.tokenize(template))
        return try parser.parseBody(until: [], opener: nil).nodes
    }

    private init(tokens: [Token]) { self.tokens = tokens }

    // MARK: Statements

    /// Which block each intermediate or closing tag belongs to, for "unexpected 'endfor'" errors.
    private static let closingTags: [String: String] = [
        "elif": "'if'", "else": "'if' or 'for'", "endif": "'if'", "endfor": "'for'", "endmacro": "'macro'",
        "endcall": "'call'", "endset": "'set'", "endwith": "'with'", "endgeneration": "'generation'",
        "endraw": "'raw'",
    ]
    private static let unsupportedTags: Set<String> = [
        "filter", "block", "extends", "include", "import", "from", "autoescape", "endfilter", "endblock",
        "endautoescape",
    ]

    /// Parses nodes up to a block tag named in `endTags` and returns that tag's name with the cursor after it.
    private mutating func parseBody(until endTags: [String], opener: (tag: String, line: Int)?) throws -> (
        nodes: [Node], endTag: String
    ) {
        try enterNesting()
        defer { nesting -= 1 }
        var nodes: [Node] = []
        while true {
            let token = current
            switch token.kind {
            case .end:
                if let opener {
                    throw TemplateError.syntax(
                        "unclosed '\(opener.tag)' (no '\(endTags.last!)' before the end of the template)",
                        line: opener.line)
                }
                return (nodes, "")
            case .text(let text):
                advance()
                nodes.append(Node(line: token.line, kind: .text(text)))
            case .variableBegin:
                advance()
                let expr = try parseTuple()
                try expect(.variableEnd, "'}}'")
                nodes.append(Node(line: token.line, kind: .output(expr)))
            case .blockBegin:
                advance()
                guard case .name(let tag) = current.kind else {
                    throw unexpected("a tag name")
                }
                let line = current.line
                advance()
                if endTags.contains(tag) { return (nodes, tag) }
                if let owner = Parser.closingTags[tag] {
                    guard let opener else {
                        throw TemplateError.syntax("unexpected '\(tag)' (no open \(owner))", line: line)
                    }
                    let expected = endTags.map { "'\($0)'" }.joined(separator: " or ")
                    throw TemplateError.syntax(
                        "unexpected '\(tag)' (the innermost open block is '\(opener.tag)' from line \(opener.line), "
                            + "which expects \(expected))", line: line)
                }
                nodes.append(Node(line: line, kind: try parseStatement(tag, line: line)))
            default:
                throw unexpected("text or a tag")
            }
        }
    }

    private mutating func parseStatement(_ tag: String, line: Int) throws -> Node.Kind {
        switch tag {
        case "if": return try parseIf(line: line)
        case "for": return try parseFor(line: line)
        case "set": return try parseSet(line: line)
        case "macro": return try parseMacro(line: line)
        case "call": return try parseCallBlock(line: line)
        case "with": return try parseWith(line: line)
        case "generation":
            try expectBlockEnd(tag)
            return .generation(try parseBlockBody(tag, line: line, end: "endgeneration"))
        case "break", "continue":
            guard loopDepth > 0 else { throw TemplateError.syntax("'\(tag)' outside of a 'for' loop", line: line) }
            try expectBlockEnd(tag)
            return tag == "break" ? .breakLoop : .continueLoop
        case _ where Parser.unsupportedTags.contains(tag):
            throw TemplateError.syntax("unsupported tag '\(tag)'", line: line)
        default:
            throw TemplateError.syntax("unknown tag '\(tag)'", line: line)
        }
    }

    /// The body of a block that has no intermediate tags, through its closing `{% end... %}`.
    private mutating func parseBlockBody(_ tag: String, line: Int, end: String) throws -> [Node] {
        let body = try parseBody(until: [end], opener: (tag, line)).nodes
        try expectBlockEnd(end)
        return body
    }

    private mutating func parseIf(line: Int) throws -> Node.Kind {
        var branches: [(condition: Expr, body: [Node])] = []
        var condition = try parseTuple(withCondexpr: false)
        try expectBlockEnd("if")
        while true {
            let (body, end) = try parseBody(until: ["elif", "else", "endif"], opener: ("if", line))
            branches.append((condition, body))
            switch end {
            case "elif":
                condition = try parseTuple(withCondexpr: false)
                try expectBlockEnd("elif")
            case "else":
                try expectBlockEnd("else")
                return .conditional(branches: branches, otherwise: try parseBlockBody("if", line: line, end: "endif"))
            default:
                try expectBlockEnd("endif")
                return .conditional(branches: branches, otherwise: [])
            }
        }
    }

    private mutating func parseFor(line: Int) throws -> Node.Kind {
        let target = try parseAssignTarget(allowNamespace: false)
        guard skipName("in") else { throw unexpected("'in'") }
        let iterable = try parseTuple(withCondexpr: false, extraEndNames: ["if", "recursive"])
        let filter = skipName("if") ? try parseExpression() : nil
        if case .name("recursive") = current.kind {
            throw TemplateError.syntax("recursive loops are not supported", line: current.line)
        }
        try expectBlockEnd("for")
        loopDepth += 1
        let (body, end) = try parseBody(until: ["else", "endfor"], opener: ("for", line))
        loopDepth -= 1
        try expectBlockEnd(end)
        let otherwise = end == "else" ? try parseBlockBody("for", line: line, end: "endfor") : []
        return .loop(ForLoop(target: target, iterable: iterable, filter: filter, body: body, otherwise: otherwise))
    }

    private mutating func parseSet(line: Int) throws -> Node.Kind {
        let target = try parseAssignTarget(allowNamespace: true)
        if skipOperator("=") {
            let value = try parseTuple()
            try expectBlockEnd("set")
            return .assign(target, value)
        }
        try expectBlockEnd("set")
        return .assignBlock(target, try parseBlockBody("set", line: line, end: "endset"))
    }

    private mutating func parseMacro(line: Int) throws -> Node.Kind {
        guard case .name(let name) = current.kind else { throw unexpected("a macro name") }
        advance()
        let parameters = try parseSignature()
        try expectBlockEnd("macro")
        let savedLoopDepth = loopDepth
        loopDepth = 0
        defer { loopDepth = savedLoopDepth }
        let body = try parseBlockBody("macro", line: line, end: "endmacro")
        return .macro(MacroDefinition(name: name, parameters: parameters, body: body))
    }

    private mutating func parseCallBlock(line: Int) throws -> Node.Kind {
        let parameters = isOperator("(") ? try parseSignature() : []
        let call = try parseExpression()
        guard case .call = call.kind else {
            throw TemplateError.syntax("'call' needs a macro call, like {% call m() %}", line: call.line)
        }
        try expectBlockEnd("call")
        let body = try parseBlockBody("call", line: line, end: "endcall")
        return .callBlock(caller: MacroDefinition(name: "caller", parameters: parameters, body: body), call: call)
    }

    private mutating func parseWith(line: Int) throws -> Node.Kind {
        var assignments: [(target: AssignTarget, value: Expr)] = []
        while current.kind != .blockEnd {
            if !assignments.isEmpty { try expect(.op(","), "','") }
            let target = try parseAssignTarget(allowNamespace: false)
            try expect(.op("="), "'='")
            assignments.append((target, try parseExpression()))
        }
        try expectBlockEnd("with")
        return .with(assignments, body: try parseBlockBody("with", line: line, end: "endwith"))
    }

    /// `(a, b='x')` of a macro or call block.
    private mutating func parseSignature() throws -> [(name: String, defaultValue: Expr?)] {
        try expect(.op("("), "'('")
        var parameters: [(name: String, defaultValue: Expr?)] = []
        while !skipOperator(")") {
            if !parameters.isEmpty { try expect(.op(","), "','") }
            guard case .name(let name) = current.kind else { throw unexpected("a parameter name") }
            let line = current.line
            advance()
            if skipOperator("=") {
                parameters.append((name, try parseExpression()))
            } else if parameters.last?.defaultValue != nil {
                throw TemplateError.syntax(
                    "parameter '\(name)' without a default follows one with a default", line: line)
            } else {
                parameters.append((name, nil))
            }
        }
        return parameters
    }

    /// `x`, `a, b`, `(a, b)`, and with `allowNamespace` `ns.attr`.
    private mutating func parseAssignTarget(allowNamespace: Bool) throws -> AssignTarget {
        if allowNamespace, case .name(let name) = current.kind, peek.kind == .op(".") {
            advance(2)
            guard case .name(let attribute) = current.kind else { throw unexpected("an attribute name") }
            advance()
            return .namespaceAttribute(namespace: name, attribute: attribute)
        }
        var targets: [AssignTarget] = []
        repeat {
            if skipOperator("(") {
                targets.append(try parseAssignTarget(allowNamespace: false))
                try expect(.op(")"), "')'")
            } else if case .name(let name) = current.kind {
                advance()
                targets.append(.name(name))
            } else {
                throw unexpected("a variable name")
            }
        } while skipOperator(",")
        return targets.count == 1 ? targets[0] : .tuple(targets)
    }

    // MARK: Expressions

    /// Comma-separated expressions: one alone is itself, several (or a trailing comma) make a tuple.
    private mutating func parseTuple(
        withCondexpr: Bool = true, extraEndNames: Set<String> = [], explicitParentheses: Bool = false
    ) throws -> Expr {
        let line = current.line
        var items: [Expr] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expect(.op(","), "','") }
            switch current.kind {
            case .variableEnd, .blockEnd, .op(")"): break
            case .name(let name) where extraEndNames.contains(name): break
            default:
                items.append(withCondexpr ? try parseExpression() : try parseOr())
                if isOperator(",") {
                    isTuple = true
                    continue
                }
            }
            break
        }
        if !isTuple {
            if let single = items.first { return single }
            if !explicitParentheses { throw unexpected("an expression") }
        }
        return Expr(line: line, kind: .tuple(items))
    }

    private mutating func parseExpression() throws -> Expr {
        try enterNesting()
        defer { nesting -= 1 }
        var expr = try parseOr()
        while isName("if") {
            let line = current.line
            advance()
            let test = try parseOr()
            let otherwise = skipName("else") ? try parseExpression() : nil
            expr = try checked(Expr(line: line, kind: .conditional(test: test, then: expr, otherwise: otherwise)))
        }
        return expr
    }

    private mutating func parseOr() throws -> Expr {
        var left = try parseAnd()
        while isName("or") {
            let line = current.line
            advance()
            left = try checked(Expr(line: line, kind: .or(left, try parseAnd())))
        }
        return left
    }

    private mutating func parseAnd() throws -> Expr {
        var left = try parseNot()
        while isName("and") {
            let line = current.line
            advance()
            left = try checked(Expr(line: line, kind: .and(left, try parseNot())))
        }
        return left
    }

    private mutating func parseNot() throws -> Expr {
        guard isName("not") else { return try parseCompare() }
        try enterNesting()
        defer { nesting -= 1 }
        let line = current.line
        advance()
        return Expr(line: line, kind: .not(try parseNot()))
    }

    private mutating func parseCompare() throws -> Expr {
        let first = try parseAdditive()
        var operations: [(CompareOperator, Expr)] = []
        while true {
            if case .op(let symbol) = current.kind, let op = CompareOperator(rawValue: symbol) {
                advance()
                operations.append((op, try parseAdditive()))
            } else if skipName("in") {
                operations.append((.contains, try parseAdditive()))
            } else if isName("not"), peek.kind == .name("in") {
                advance(2)
                operations.append((.notContains, try parseAdditive()))
            } else {
                break
            }
        }
        return operations.isEmpty ? first : try checked(Expr(line: first.line, kind: .compare(first, operations)))
    }

    private mutating func parseAdditive() throws -> Expr {
        try parseBinary([.add, .subtract]) { try $0.parseConcat() }
    }

    private mutating func parseConcat() throws -> Expr {
        let first = try parseMultiplicative()
        var operands = [first]
        while skipOperator("~") { operands.append(try parseMultiplicative()) }
        return operands.count == 1 ? first : try checked(Expr(line: first.line, kind: .concat(operands)))
    }

    private mutating func parseMultiplicative() throws -> Expr {
        try parseBinary([.multiply, .divide, .floorDivide, .modulo]) { try $0.parsePower() }
    }

    /// `**` is left-associative in jinja2 and binds looser than unary minus: `-2 ** 2` is 4.
    private mutating func parsePower() throws -> Expr {
        try parseBinary([.power]) { try $0.parseUnary() }
    }

    private mutating func parseBinary(
        _ operators: [BinaryOperator], operand: (inout Parser) throws -> Expr
    ) throws -> Expr {
        var left = try operand(&self)
        while case .op(let symbol) = current.kind, let op = BinaryOperator(rawValue: symbol), operators.contains(op) {
            let line = current.line
            advance()
            left = try checked(Expr(line: line, kind: .binary(op, left, try operand(&self))))
        }
        return left
    }

    private mutating func parseUnary(withFilters: Bool = true) throws -> Expr {
        try enterNesting()
        defer { nesting -= 1 }
        let line = current.line
        var expr: Expr
        if skipOperator("-") {
            expr = Expr(line: line, kind: .negate(try parseUnary(withFilters: false)))
        } else if skipOperator("+") {
            expr = Expr(line: line, kind: .plus(try parseUnary(withFilters: false)))
        } else {
            expr = try parsePrimary()
        }
        expr = try parsePostfix(expr)
        return withFilters ? try parseFiltersAndTests(expr) : expr
    }

    private mutating func parsePrimary() throws -> Expr {
        let token = current
        let literal: Literal
        switch token.kind {
        case .name(let name):
            advance()
            switch name {
            case "true", "True": literal = .bool(true)
            case "false", "False": literal = .bool(false)
            case "none", "None": literal = .none
            default: return Expr(line: token.line, kind: .name(name))
            }
        case .string(var text):
            advance()
            // Adjacent string literals concatenate, as in Python.
            while case .string(let more) = current.kind {
                text += more
                advance()
            }
            literal = .string(text)
        case .integer(let value):
            advance()
            literal = .int(value)
        case .float(let value):
            advance()
            literal = .double(value)
        case .op("("):
            advance()
            let expr = try parseTuple(explicitParentheses: true)
            try expect(.op(")"), "')'")
            return expr
        case .op("["):
            advance()
            var items: [Expr] = []
            while !skipOperator("]") {
                if !items.isEmpty {
                    try expect(.op(","), "','")
                    if skipOperator("]") { break }
                }
                items.append(try parseExpression())
            }
            return Expr(line: token.line, kind: .list(items))
        case .op("{"):
            advance()
            var pairs: [(key: Expr, value: Expr)] = []
            while !skipOperator("}") {
                if !pairs.isEmpty {
                    try expect(.op(","), "','")
                    if skipOperator("}") { break }
                }
                let key = try parseExpression()
                try expect(.op(":"), "':'")
                pairs.append((key, try parseExpression()))
            }
            return Expr(line: token.line, kind: .dict(pairs))
        default:
            throw unexpected("an expression")
        }
        return Expr(line: token.line, kind: .literal(literal))
    }

    private mutating func parsePostfix(_ base: Expr) throws -> Expr {
        var expr = base
        while true {
            let line = current.line
            if skipOperator(".") {
                switch current.kind {
                case .name(let name): expr = Expr(line: line, kind: .attribute(expr, name))
                case .integer(let index):
                    expr = Expr(line: line, kind: .item(expr, Expr(line: line, kind: .literal(.int(index)))))
                default: throw unexpected("an attribute name")
                }
                advance()
            } else if skipOperator("[") {
                expr = try parseSubscript(of: expr, line: line)
            } else if isOperator("(") {
                expr = Expr(line: line, kind: .call(expr, try parseCallArguments()))
            } else {
                return expr
            }
            expr = try checked(expr)
        }
    }

    /// `[i]`, `[i, j]` (a tuple key) or a slice `[start:stop:step]` with any part omitted; the `[` is consumed.
    private mutating func parseSubscript(of base: Expr, line: Int) throws -> Expr {
        var start: Expr?
        if !isOperator(":") {
            var keys: [Expr] = []
            while !skipOperator("]") {
                if !keys.isEmpty { try expect(.op(","), "',' or ']'") }
                keys.append(try parseExpression())
                if keys.count == 1, isOperator(":") { break }
            }
            guard keys.count == 1, isOperator(":") else {
                let key = keys.count == 1 ? keys[0] : Expr(line: line, kind: .tuple(keys))
                return Expr(line: line, kind: .item(base, key))
            }
            start = keys[0]
        }
        try expect(.op(":"), "':' or ']'")
        let stop = isOperator(":") || isOperator("]") ? nil : try parseExpression()
        var step: Expr?
        if skipOperator(":"), !isOperator("]") { step = try parseExpression() }
        try expect(.op("]"), "']'")
        return Expr(line: line, kind: .slice(base, start: start, stop: stop, step: step))
    }

    private mutating func parseCallArguments() throws -> CallArguments {
        try expect(.op("("), "'('")
        var arguments = CallArguments()
        while !skipOperator(")") {
            if !arguments.positional.isEmpty || !arguments.keyword.isEmpty {
                try expect(.op(","), "','")
                if skipOperator(")") { break }
            }
            if case .name(let name) = current.kind, peek.kind == .op("=") {
                advance(2)
                arguments.keyword.append((name, try parseExpression()))
            } else {
                guard arguments.keyword.isEmpty else {
                    throw TemplateError.syntax("positional argument after a keyword argument", line: current.line)
                }
                arguments.positional.append(try parseExpression())
            }
        }
        return arguments
    }

    private mutating func parseFiltersAndTests(_ base: Expr) throws -> Expr {
        var expr = base
        while true {
            let line = current.line
            if skipOperator("|") {
                let name = try parseCallableName(kind: "filter", known: Filters.names)
                let arguments = isOperator("(") ? try parseCallArguments() : CallArguments()
                expr = try checked(Expr(line: line, kind: .filter(expr, name: name, arguments)))
            } else if skipName("is") {
                let negated = skipName("not")
                let name = try parseCallableName(kind: "test", known: Predicates.names)
                var arguments = CallArguments()
                if isOperator("(") {
                    arguments = try parseCallArguments()
                } else if startsTestArgument {
                    // `x is divisibleby 3`, `x is sameas none`: one argument without parentheses.
                    arguments.positional = [try parsePostfix(try parsePrimary())]
                }
                expr = try checked(Expr(line: line, kind: .test(expr, name: name, arguments, negated: negated)))
            } else if isOperator("(") {
                expr = try checked(Expr(line: line, kind: .call(expr, try parseCallArguments())))
            } else {
                return expr
            }
        }
    }

    private var startsTestArgument: Bool {
        switch current.kind {
        case .name(let name): return !["else", "or", "and", "is"].contains(name)
        case .string, .integer, .float, .op("["), .op("{"): return true
        default: return false
        }
    }

    /// A filter or test name, checked now so an unknown one fails when the template is compiled, as in jinja2.
    private mutating func parseCallableName(kind: String, known: Set<String>) throws -> String {
        guard case .name(let name) = current.kind else { throw unexpected("a \(kind) name") }
        guard known.contains(name) else { throw TemplateError.syntax("unknown \(kind) '\(name)'", line: current.line) }
        advance()
        return name
    }

    /// `expr`, unless its tree is taller than `maximumExpressionDepth`.
    private func checked(_ expr: Expr) throws -> Expr {
        guard expr.depth <= Parser.maximumExpressionDepth else {
            throw TemplateError.syntax(
                "expression nests deeper than \(Parser.maximumExpressionDepth) levels (a chain of operators, filters or "
                    + "attributes that long)", line: expr.line)
        }
        return expr
    }

    private mutating func enterNesting() throws {
        nesting += 1
        guard nesting <= Parser.maximumNesting else {
            throw TemplateError.syntax(
                "blocks or expressions nest deeper than \(Parser.maximumNesting) levels", line: current.line)
        }
    }

    // MARK: Token cursor

    private var current: Token { tokens[index] }
    private var peek: Token { tokens[min(index + 1, tokens.count - 1)] }

    private mutating func advance(_ count: Int = 1) { index = min(index + count, tokens.count - 1) }

    private func isName(_ name: String) -> Bool { current.kind == .name(name) }
    private func isOperator(_ op: String) -> Bool { current.kind == .op(op) }

    private mutating func skipName(_ name: String) -> Bool {
        guard isName(name) else { return false }
        advance()
        return true
    }

    private mutating func skipOperator(_ op: String) -> Bool {
        guard isOperator(op) else { return false }
        advance()
        return true
    }

    private mutating func expect(_ kind: TokenKind, _ description: String) throws {
        guard current.kind == kind else { throw unexpected(description) }
        advance()
    }

    private mutating func expectBlockEnd(_ tag: String) throws {
        guard current.kind == .blockEnd else { throw unexpected("'%}' to end the '\(tag)' tag") }
        advance()
    }

    private func unexpected(_ expected: String) -> TemplateError {
        let found: String
        switch current.kind {
        case .text: found = "text"
        case .blockBegin: found = "'{%'"
        case .blockEnd: found = "'%}'"
        case .variableBegin: found = "'{{'"
        case .variableEnd: found = "'}}'"
        case .name(let name): found = "'\(name)'"
        case .string(let text): found = "string \(pythonStringRepr(text))"
        case .integer(let value): found = "number \(value)"
        case .float(let value): found = "number \(pythonFloatRepr(value))"
        case .op(let op): found = "'\(op)'"
        case .end: found = "end of template"
        }
        return TemplateError.syntax("unexpected \(found) (expected \(expected))", line: current.line)
    }
}
