import Foundation

/// Python's operator semantics on template values, and jinja2's attribute/item lookup.
extension Value {
    // MARK: Equality and ordering

    /// Python `==`: numbers compare by value across int/float/bool, containers element-wise, strings by code
    /// point; values of different kinds are unequal. Two undefined values are equal (jinja2's rule).
    ///
    /// Comparing charges the render's budget per element (shared lists can make values exponentially large); an
    /// exhausted budget answers false and the interpreter fails the render.
    func pythonEquals(_ other: Value) -> Bool {
        let budget = RenderBudget.current
        if let budget, !budget.charge(1) { return false }
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)):
            budget?.charge(bytes: min(a.utf8.count, b.utf8.count))
            return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.list(let a), .list(let b)), (.tuple(let a), .tuple(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.pythonEquals($1) }
        case (.dict(let a), .dict(let b)):
            return a.count == b.count && a.allSatisfy { key, value in b[key].map(value.pythonEquals) ?? false }
        case (.namespace(let a), .namespace(let b)): return a === b
        case (.loop(let a), .loop(let b)): return a === b
        case (.macro(let a), .macro(let b)): return a === b
        default:
            if let a = integerValue, let b = other.integerValue { return a == b }
            if let a = numberValue, let b = other.numberValue { return a == b }
            return false
        }
    }

    /// Python's `<`, `<=`, `>`, `>=`: numbers, strings (by code point), and lists or tuples element-wise.
    func pythonCompare(_ op: CompareOperator, _ other: Value) throws -> Bool {
        if case .undefined(let u) = self { throw u.failure() }
        if case .undefined(let u) = other { throw u.failure() }
        try RenderBudget.current?.chargeOrThrow(1)
        func holds<T: Comparable>(_ a: T, _ b: T) -> Bool {
            switch op {
            case .less: return a < b
            case .lessEqual: return a <= b
            case .greater: return a > b
            default: return a >= b
            }
        }
        switch (self, other) {
        case (.string(let a), .string(let b)):
            let order = codePointLess(a, b) ? -1 : codePointLess(b, a) ? 1 : 0
            return holds(order, 0)
        case (.list(let a), .list(let b)), (.tuple(let a), .tuple(let b)):
            // The first differing pair decides; if one is a prefix of the other, the lengths do.
            for (x, y) in zip(a, b) where !x.pythonEquals(y) { return try x.pythonCompare(op, y) }
            return holds(a.count, b.count)
        default:
            if let a = integerValue, let b = other.integerValue { return holds(a, b) }
            if let a = numberValue, let b = other.numberValue { return holds(a, b) }
            throw TemplateError.runtime(
                "'\(op.rawValue)' not supported between instances of '\(typeName)' and '\(other.typeName)'")
        }
    }

    /// Python `item in self`.
    func pythonContains(_ item: Value) throws -> Bool {
        switch self {
        case .string(let text):
            guard case .string(let needle) = item else {
                throw TemplateError.runtime("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return try needle.isEmpty || PythonString.find(text, needle) >= 0
        case .list(let items), .tuple(let items): return items.contains { $0.pythonEquals(item) }
        case .dict(let dict):
            switch item {
            case .string(let key): return dict[key] != nil
            case .list, .dict: throw TemplateError.runtime("unhashable type: '\(item.typeName)'")
            default: return false
            }
        case .undefined: return false
        default: throw TemplateError.runtime("argument of type '\(typeName)' is not iterable")
        }
    }

    // MARK: Arithmetic

    static func binary(_ op: BinaryOperator, _ left: Value, _ right: Value) throws -> Value {
        if case .undefined(let u) = left { throw u.failure() }
        if case .undefined(let u) = right { throw u.failure() }
        switch (op, left, right) {
        case (.add, .string(let a), .string(let b)):
            try Limits.checkString(a.utf8.count + b.utf8.count, times: 1)
            return .string(a + b)
        case (.add, .list(let a), .list(let b)):
            try Limits.checkElements(a.count + b.count)
            return .list(a + b)
        case (.add, .tuple(let a), .tuple(let b)):
            try Limits.checkElements(a.count + b.count)
            return .tuple(a + b)
        case (.multiply, .string(let s), _), (.multiply, _, .string(let s)):
            guard let count = (left.integerValue ?? right.integerValue) else { break }
            try Limits.checkString(s.utf8.count, times: max(count, 0))
            return .string(String(repeating: s, count: max(count, 0)))
        case (.multiply, .list(let items), _), (.multiply, _, .list(let items)):
            guard let count = (left.integerValue ?? right.integerValue) else { break }
            try Limits.checkElements(items.count, times: max(count, 0))
            return .list(Array(repeating: items, count: max(count, 0)).flatMap { $0 })
        case (.multiply, .tuple(let items), _), (.multiply, _, .tuple(let items)):
            guard let count = (left.integerValue ?? right.integerValue) else { break }
            try Limits.checkElements(items.count, times: max(count, 0))
            return .tuple(Array(repeating: items, count: max(count, 0)).flatMap { $0 })
        case (.modulo, .string(let format), _):
            return .string(try PythonString.percentFormat(format, right))
        default:
            if let a = left.integerValue, let b = right.integerValue { return try integerArithmetic(op, a, b) }
            if let a = left.numberValue, let b = right.numberValue { return try floatArithmetic(op, a, b) }
        }
        switch (op, left) {
        case (.add, .string), (.add, .list), (.add, .tuple):
            throw TemplateError.runtime(
                "can only concatenate \(left.typeName) (not \"\(right.typeName)\") to \(left.typeName)")
        default:
            throw TemplateError.runtime(
                "unsupported operand type(s) for \(op.rawValue): '\(left.typeName)' and '\(right.typeName)'")
        }
    }

    private static func integerArithmetic(_ op: BinaryOperator, _ a: Int, _ b: Int) throws -> Value {
        func checked(_ result: (partialValue: Int, overflow: Bool)) throws -> Value {
            guard !result.overflow else { throw TemplateError.runtime("integer overflow") }
            return .int(result.partialValue)
        }
        switch op {
        case .add: return try checked(a.addingReportingOverflow(b))
        case .subtract: return try checked(a.subtractingReportingOverflow(b))
        case .multiply: return try checked(a.multipliedReportingOverflow(by: b))
        case .divide: return try floatArithmetic(.divide, Double(a), Double(b))
        case .floorDivide, .modulo:
            guard b != 0 else { throw TemplateError.runtime("integer division or modulo by zero") }
            // The one quotient that does not fit: Int.min // -1 (its remainder is 0).
            if a == Int.min && b == -1 {
                if op == .modulo { return .int(0) }
                throw TemplateError.runtime("integer overflow")
            }
            // Python rounds the quotient down, so the remainder takes the divisor's sign.
            var quotient = a / b
            var remainder = a % b
            if remainder != 0 && (remainder < 0) != (b < 0) {
                quotient -= 1
                remainder += b
            }
            return .int(op == .floorDivide ? quotient : remainder)
        case .power:
            guard b >= 0 else { return try floatArithmetic(.power, Double(a), Double(b)) }
            // Square and multiply: 64 steps at most, whatever the exponent.
            func multiply(_ x: Int, _ y: Int) throws -> Int {
                let (product, overflow) = x.multipliedReportingOverflow(by: y)
                guard !overflow else { throw TemplateError.runtime("integer overflow") }
                return product
            }
            var result = 1, base = a, exponent = b
            while exponent > 0 {
                if exponent & 1 == 1 { result = try multiply(result, base) }
                exponent >>= 1
                if exponent > 0 && base != 0 && base != 1 { base = try multiply(base, base) }
            }
            return .int(result)
        }
    }

    private static func floatArithmetic(_ op: BinaryOperator, _ a: Double, _ b: Double) throws -> Value {
        switch op {
        case .add: return .double(a + b)
        case .subtract: return .double(a - b)
        case .multiply: return .double(a * b)
        case .divide:
            guard b != 0 else { throw TemplateError.runtime("division by zero") }
            return .double(a / b)
        case .floorDivide, .modulo:
            guard b != 0 else { throw TemplateError.runtime("float floor division or modulo by zero") }
            // CPython's float_divmod: the remainder takes the divisor's sign.
            var remainder = fmod(a, b)
            var quotient = (a - remainder) / b
            if remainder != 0 && (remainder < 0) != (b < 0) {
                remainder += b
                quotient -= 1
            }
            if op == .modulo { return .double(remainder != 0 ? remainder : (b < 0 ? -0.0 : 0.0)) }
            var floorQuotient = quotient.rounded(.down)
            if quotient - floorQuotient > 0.5 { floorQuotient += 1 }
            return .double(quotient == 0 ? (a / b < 0 ? -0.0 : 0.0) : floorQuotient)
        case .power:
            if a == 0 && b < 0 { throw TemplateError.runtime("0.0 cannot be raised to a negative power") }
            if a < 0 && b != b.rounded() {
                throw TemplateError.runtime("a negative number to a fractional power is complex")
            }
            let result = pow(a, b)
            if result.isInfinite && a.isFinite && b.isFinite {
                throw TemplateError.runtime("Numerical result out of range")
            }
            return .double(result)
        }
    }

    func negated() throws -> Value {
        switch self {
        case .undefined(let u): throw u.failure()
        case .double(let d): return .double(-d)
        default:
            guard let i = integerValue, i != Int.min else {
                throw TemplateError.runtime("bad operand type for unary -: '\(typeName)'")
            }
            return .int(-i)
        }
    }

    func unaryPlus() throws -> Value {
        switch self {
        case .undefined(let u): throw u.failure()
        case .double: return self
        default:
            guard let i = integerValue else { throw TemplateError.runtime("bad operand type for unary +: '\(typeName)'") }
            return .int(i)
        }
    }

    // MARK: Iteration

    /// What `for x in value` visits: a dict's keys, a string's characters; undefined iterates as empty.
    func iterated() throws -> [Value] {
        switch self {
        case .list(let items), .tuple(let items): return items
        case .dict(let dict): return dict.keys.map(Value.string)
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw TemplateError.runtime("'\(typeName)' object is not iterable")
        }
    }

    func length() throws -> Int {
        switch self {
        case .string(let s): return s.unicodeScalars.count
        case .list(let items), .tuple(let items): return items.count
        case .dict(let dict): return dict.count
        case .undefined: return 0
        default: throw TemplateError.runtime("object of type '\(typeName)' has no len()")
        }
    }

    // MARK: Attributes and items

    /// jinja2's name for a value's type in "has no attribute/element" messages.
    private var objectDescription: String {
        if case .none = self { return "None" }
        return "\(typeName) object"
    }

    /// `value.name`: a method or attribute first, then a dict key; missing gives undefined. Only an undefined
    /// receiver is an error, as in jinja2.
    func attribute(_ name: String) throws -> Value {
        if case .undefined(let u) = self { throw u.failure() }
        if let method = Methods.bound(self, name) { return .function(method) }
        switch self {
        case .dict(let dict): if let value = dict[name] { return value }
        case .namespace(let namespace): if let value = namespace.attributes[name] { return value }
        case .loop(let loop): if let value = loop.attribute(name) { return value }
        default: break
        }
        return .undefined("'\(objectDescription)' has no attribute '\(name)'")
    }

    /// `value[key]`: a dict key or sequence index first, then (for string keys) an attribute; a missing key or
    /// an index out of range gives undefined.
    func item(_ key: Value) throws -> Value {
        if case .undefined(let u) = self { throw u.failure() }
        switch (self, key) {
        case (.dict(let dict), .string(let name)):
            if let value = dict[name] { return value }
        case (.list(let items), _), (.tuple(let items), _):
            if let index = key.integerValue {
                let resolved = index < 0 ? index + items.count : index
                if items.indices.contains(resolved) { return items[resolved] }
                return .undefined("\(objectDescription) has no element \(index)")
            }
        case (.string(let s), _):
            if let index = key.integerValue {
                let scalars = PythonString.scalars(s)
                let resolved = index < 0 ? index + scalars.count : index
                if scalars.indices.contains(resolved) { return .string(String(scalars[resolved])) }
                return .undefined("\(objectDescription) has no element \(index)")
            }
        default: break
        }
        if case .string(let name) = key { return try attribute(name) }
        return .undefined("\(objectDescription) has no element \(key.pythonRepr)")
    }

    func sliced(start: Int?, stop: Int?, step: Int?) throws -> Value {
        switch self {
        case .undefined(let u): throw u.failure()
        case .string(let s):
            let scalars = PythonString.scalars(s)
            let indices = try pythonSliceIndices(count: scalars.count, start: start, stop: stop, step: step)
            return .string(PythonString.string(indices.map { scalars[$0] }))
        case .list(let items):
            return .list(try pythonSliceIndices(count: items.count, start: start, stop: stop, step: step).map { items[$0] })
        case .tuple(let items):
            return .tuple(try pythonSliceIndices(count: items.count, start: start, stop: stop, step: step).map { items[$0] })
        default: throw TemplateError.runtime("'\(typeName)' object is not subscriptable")
        }
    }
}
