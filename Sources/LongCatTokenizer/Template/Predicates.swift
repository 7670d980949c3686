/// A jinja2 test: `value is name(arguments)`.
typealias Predicate = @Sendable (_ value: Value, _ arguments: Arguments) throws -> Bool

/// jinja2's built-in tests.
enum Predicates {
    static let names = Set(table.keys)

    static let table: [String: Predicate] = [
        "defined": kind { !$0.isUndefined },
        "undefined": kind { $0.isUndefined },
        "none": kind { $0.isNone },
        "boolean": kind { if case .bool = $0 { true } else { false } },
        "true": kind { if case .bool(true) = $0 { true } else { false } },
        "false": kind { if case .bool(false) = $0 { true } else { false } },
        "integer": kind { if case .int = $0 { true } else { false } },
        "float": kind { if case .double = $0 { true } else { false } },
        "number": kind { $0.numberValue != nil },
        "string": kind { if case .string = $0 { true } else { false } },
        "mapping": kind { if case .dict = $0 { true } else { false } },
        // jinja2 asks "has a length and items": Undefined qualifies, like strings, lists and dicts.
        "sequence": kind { value in
            switch value {
            case .string, .list, .tuple, .dict, .undefined: true
            default: false
            }
        },
        "iterable": kind { value in
            switch value {
            case .string, .list, .tuple, .dict, .undefined: true
            default: false
            }
        },
        "callable": kind { value in
            switch value {
            case .macro, .function: true
            default: false
            }
        },
        "lower": kind { isCased($0.pythonStr, upper: false) },
        "upper": kind { isCased($0.pythonStr, upper: true) },
        "filter": kind { Filters.names.contains($0.pythonStr) },
        "test": kind { Predicates.names.contains($0.pythonStr) },
        "odd": { value, arguments in
            _ = try arguments.bind([], function: "odd")
            return try Value.binary(.modulo, value, .int(2)).pythonEquals(.int(1))
        },
        "even": { value, arguments in
            _ = try arguments.bind([], function: "even")
            return try Value.binary(.modulo, value, .int(2)).pythonEquals(.int(0))
        },
        "divisibleby": { value, arguments in
            try Value.binary(.modulo, value, argument(arguments, "divisibleby")).pythonEquals(.int(0))
        },
        "sameas": { value, arguments in
            let other = try argument(arguments, "sameas")
            switch (value, other) {
            case (.none, .none): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            default: return false
            }
        },
        "in": { value, arguments in try argument(arguments, "in").pythonContains(value) },
        "eq": equal, "equalto": equal, "==": equal,
        "ne": { value, arguments in try !value.pythonEquals(argument(arguments, "ne")) },
        "!=": { value, arguments in try !value.pythonEquals(argument(arguments, "!=")) },
        "lt": order(.less), "lessthan": order(.less), "<": order(.less),
        "le": order(.lessEqual), "<=": order(.lessEqual),
        "gt": order(.greater), "greaterthan": order(.greater), ">": order(.greater),
        "ge": order(.greaterEqual), ">=": order(.greaterEqual),
    ]

    /// A test about the value alone.
    private static func kind(_ check: @escaping @Sendable (Value) -> Bool) -> Predicate {
        { value, arguments in
            _ = try arguments.bind([], function: "test")
            return check(value)
        }
    }

    private static func argument(_ arguments: Arguments, _ name: String) throws -> Value {
        guard let value = try arguments.bind(["other"], function: name)[0] else {
            throw TemplateError.runtime("test '\(name)' needs an argument")
        }
        return value
    }

    private static let equal: Predicate = { value, arguments in
        try value.pythonEquals(argument(arguments, "eq"))
    }

    private static func order(_ op: CompareOperator) -> Predicate {
        { value, arguments in try value.pythonCompare(op, argument(arguments, op.rawValue)) }
    }

    /// `str.islower()`/`isupper()`: at least one cased character, and none of the other case.
    private static func isCased(_ text: String, upper: Bool) -> Bool {
        var sawCased = false
        for scalar in text.unicodeScalars where scalar.isCased {
            if upper ? scalar.properties.isLowercase : scalar.properties.isUppercase { return false }
            sawCased = true
        }
        return sawCased
    }
}
