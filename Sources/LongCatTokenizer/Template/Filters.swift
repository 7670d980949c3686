import Foundation

/// A filter: `value | name(arguments)`.
typealias Filter = @Sendable (_ value: Value, _ arguments: Arguments) throws -> Value

/// jinja2's built-in filters that chat templates use, plus transformers' `tojson` (insertion order,
/// `ensure_ascii=False`, no HTML escaping). Filters that jinja2 evaluates lazily (`map`, `select`, ...)
/// return lists here; in a template that only shows when such a result is printed without `| list`.
enum Filters {
    static let names = Set(table.keys)

    static let table: [String: Filter] = [
        "abs": { value, arguments in
            try noArguments(arguments, "abs")
            switch value {
            case .double(let d): return .double(Swift.abs(d))
            default:
                guard let i = value.integerValue, i != Int.min else {
                    throw TemplateError.runtime("bad operand type for abs(): '\(value.typeName)'")
                }
                return .int(Swift.abs(i))
            }
        },
        "capitalize": stringFilter("capitalize") { PythonString.capitalize($0) },
        "count": length,
        "default": defaultValue,
        "d": defaultValue,
        "first": { value, arguments in
            try noArguments(arguments, "first")
            return try value.iterated().first ?? .undefined("No first item, sequence was empty.")
        },
        "float": { value, arguments in
            let bound = try arguments.bind(["default"], function: "float")
            if case .undefined(let undefined) = value { throw undefined.failure() }
            return pythonFloat(value).map(Value.double) ?? bound[0] ?? .double(0)
        },
        "int": { value, arguments in
            let bound = try arguments.bind(["default", "base"], function: "int")
            let base = try bound[1].map { try integerArgument($0, "int") } ?? 10
            if case .undefined(let undefined) = value { throw undefined.failure() }
            return pythonInt(value, base: base).map(Value.int) ?? bound[0] ?? .int(0)
        },
        "items": { value, arguments in
            try noArguments(arguments, "items")
            switch value {
            case .undefined: return .list([])
            case .dict(let dict): return .list(dict.map { .tuple([.string($0.key), $0.value]) })
            default: throw TemplateError.runtime("Can only get item pairs from a mapping.")
            }
        },
        "join": { value, arguments in
            let bound = try arguments.bind(["d", "attribute"], function: "join")
            var items = try value.iterated()
            if let attribute = bound[1] { items = try items.map { try lookup($0, path: attribute) } }
            let pieces = items.map(\.pythonStr)
            let separator = bound[0]?.pythonStr ?? ""
            let bytes = pieces.reduce(0) { $0 + $1.utf8.count }
            try Limits.checkString(separator.utf8.count, times: max(pieces.count - 1, 0))
            try Limits.checkString(bytes + max(pieces.count - 1, 0) * separator.utf8.count, times: 1)
            return .string(pieces.joined(separator: separator))
        },
        "last": { value, arguments in
            try noArguments(arguments, "last")
            return try value.iterated().last ?? .undefined("No last item, sequence was empty.")
        },
        "length": length,
        "list": { value, arguments in
            try noArguments(arguments, "list")
            return .list(try value.iterated())
        },
        "lower": stringFilter("lower") { $0.lowercased() },
        "map": map,
        "reject": { value, arguments in try select(value, arguments, keep: false, byAttribute: false) },
        "rejectattr": { value, arguments in try select(value, arguments, keep: false, byAttribute: true) },
        "replace": { value, arguments in
            let bound = try arguments.bind(["old", "new", "count"], function: "replace")
            guard let old = bound[0], let new = bound[1] else {
                throw TemplateError.runtime("replace() needs the old and the new text")
            }
            let count = try bound[2].map { try integerArgument($0, "replace") } ?? -1
            return .string(try PythonString.replace(value.pythonStr, old.pythonStr, new.pythonStr, count: count))
        },
        "reverse": { value, arguments in
            try noArguments(arguments, "reverse")
            if case .string(let s) = value { return .string(PythonString.string(s.unicodeScalars.reversed())) }
            return .list(try value.iterated().reversed())
        },
        "round": round,
        "safe": { value, arguments in
            try noArguments(arguments, "safe")
            return value
        },
        "select": { value, arguments in try select(value, arguments, keep: true, byAttribute: false) },
        "selectattr": { value, arguments in try select(value, arguments, keep: true, byAttribute: true) },
        "sort": sort,
        "string": stringFilter("string") { $0 },
        "title": stringFilter("title") { title($0) },
        "tojson": toJSON,
        "trim": { value, arguments in
            let characters = try arguments.bind(["chars"], function: "trim")[0]
            return .string(PythonString.strip(value.pythonStr, characters: characters.map(\.pythonStr)))
        },
        "unique": unique,
        "upper": stringFilter("upper") { $0.uppercased() },
    ]

    /// Filters that take constant time whatever the value's size.
    private static let constantTime: Set<String> = [
        "abs", "count", "default", "d", "first", "float", "int", "last", "length", "round", "safe",
    ]

    /// Work units a filter costs on `value` (the render's budget): its size, for filters that walk or copy it.
    static func cost(_ name: String, _ value: Value) -> Int {
        guard !constantTime.contains(name) else { return 0 }
        switch value {
        case .string(let s): return s.utf8.count >> 8
        case .list(let items), .tuple(let items): return items.count
        case .dict(let dict): return dict.count
        default: return 0
        }
    }

    // MARK: Implementations

    private static func noArguments(_ arguments: Arguments, _ name: String) throws {
        _ = try arguments.bind([], function: name)
    }

    /// A filter that maps the value's `str()` to a new string.
    private static func stringFilter(_ name: String, _ transform: @escaping @Sendable (String) -> String) -> Filter {
        { value, arguments in
            try noArguments(arguments, name)
            return .string(transform(value.pythonStr))
        }
    }

    private static func integerArgument(_ value: Value, _ filter: String) throws -> Int {
        guard let i = value.integerValue else {
            throw TemplateError.runtime("\(filter): expected an integer argument, got \(value.typeName)")
        }
        return i
    }

    private static let length: Filter = { value, arguments in
        try noArguments(arguments, "length")
        return .int(try value.length())
    }

    /// `default(value='', boolean=false)`: replaces undefined, and with `boolean` every falsy value.
    private static let defaultValue: Filter = { value, arguments in
        let bound = try arguments.bind(["default_value", "boolean"], function: "default")
        let replace = value.isUndefined || ((bound[1]?.isTruthy ?? false) && !value.isTruthy)
        return replace ? bound[0] ?? .string("") : value
    }

    /// Python's `float(x)`; nil where Python raises.
    private static func pythonFloat(_ value: Value) -> Double? {
        switch value {
        case .string(let s):
            let text = PythonString.strip(s, characters: nil)
            guard !text.isEmpty, !text.lowercased().hasPrefix("0x") else { return nil }
            return Double(text)
        default: return value.numberValue
        }
    }

    /// jinja2's `int` filter: `int(x, base)` for strings, falling back to `int(float(x))`.
    private static func pythonInt(_ value: Value, base: Int) -> Int? {
        if let i = value.integerValue { return i }
        if case .string(let s) = value {
            var text = PythonString.strip(s, characters: nil).replacingOccurrences(of: "_", with: "")
            var sign = ""
            if let first = text.first, first == "-" || first == "+" {
                sign = String(first)
                text.removeFirst()
            }
            let prefixes = [16: "0x", 8: "0o", 2: "0b"]
            if let prefix = prefixes[base], text.lowercased().hasPrefix(prefix) { text.removeFirst(2) }
            if (2...36).contains(base), let parsed = Int(sign + text, radix: base) { return parsed }
        }
        guard let d = pythonFloat(value), d.isFinite, Swift.abs(d) < 9.2e18 else { return nil }
        return Int(d)
    }

    /// `round(precision=0, method='common')`: 'common' is Python's `round` (ties to even, on the exact binary
    /// value), 'floor'/'ceil' round in that direction. Integers stay integers with 'common', as in Python.
    private static let round: Filter = { value, arguments in
        let bound = try arguments.bind(["precision", "method"], function: "round")
        let precision = try bound[0].map { try integerArgument($0, "round") } ?? 0
        let method = bound[1]?.pythonStr ?? "common"
        guard ["common", "floor", "ceil"].contains(method) else {
            throw TemplateError.runtime("method must be common, ceil or floor")
        }
        guard let number = value.numberValue else {
            throw TemplateError.runtime("round: expected a number, got \(value.typeName)")
        }
        // Past 10^±300 a double is already rounded (n > 0) or rounds to zero (n < 0); the bound keeps pow() and
        // printf in range for any integer argument.
        let digits = Swift.min(Swift.max(precision, -300), 300)
        if method != "common" {
            guard number.isFinite, digits < 300 else { return .double(number) }
            guard digits > -300 else { return .double(number.sign == .minus ? -0.0 : 0.0) }
            let scale = pow(10, Double(digits))
            return .double((number * scale).rounded(method == "floor" ? .down : .up) / scale)
        }
        if let i = value.integerValue {
            guard digits < 0 else { return .int(i) }
            // round(i, -n): to a multiple of 10^n, ties to even, as an int.
            let factor = pow(10, Double(-digits))
            let rounded = (Double(i) / factor).rounded(.toNearestOrEven) * factor
            guard Swift.abs(rounded) < 9.2e18 else { throw TemplateError.runtime("integer overflow in round") }
            return .int(Int(rounded))
        }
        guard number.isFinite, digits < 300 else { return .double(number) }
        if digits <= -300 { return .double(number.sign == .minus ? -0.0 : 0.0) }
        if digits <= 0 {
            let factor = pow(10, Double(-digits))
            return .double((number / factor).rounded(.toNearestOrEven) * factor)
        }
        // printf rounds the exact binary value correctly, which is what CPython's round does.
        return .double(Double(String(format: "%.\(digits)f", number)) ?? number)
    }

    /// jinja2's `title`: upper-cases the first letter of each word, where words start after `-`, whitespace or an
    /// opening bracket, and lower-cases the rest.
    private static func title(_ text: String) -> String {
        var result = ""
        var atWordStart = true
        for scalar in text.unicodeScalars {
            if scalar.isPythonWhitespace || "-({[<".unicodeScalars.contains(scalar) {
                result.unicodeScalars.append(scalar)
                atWordStart = true
            } else {
                result += atWordStart ? String(scalar).uppercased() : String(scalar).lowercased()
                atWordStart = false
            }
        }
        return result
    }

    /// transformers' `tojson(ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
    private static let toJSON: Filter = { value, arguments in
        let bound = try arguments.bind(["ensure_ascii", "indent", "separators", "sort_keys"], function: "tojson")
        var separators: (item: String, key: String)?
        switch bound[2] {
        case .list(let pair)?, .tuple(let pair)?:
            guard pair.count == 2 else { throw TemplateError.runtime("tojson: separators must be a pair of strings") }
            separators = (pair[0].pythonStr, pair[1].pythonStr)
        case let given? where !given.isNone:
            throw TemplateError.runtime("tojson: separators must be a pair of strings")
        default: break
        }
        let indent = try bound[1].flatMap { $0.isNone ? nil : try integerArgument($0, "tojson") }
        if let indent, indent > Limits.maximumIndent {
            throw TemplateError.runtime("tojson: indent \(indent) is larger than \(Limits.maximumIndent)")
        }
        if let separators {
            try Limits.checkString(separators.item.utf8.count + separators.key.utf8.count, times: 1)
        }
        let json = try value.toJSON()
        guard let text = json.dumps(
            indent: indent, ensureASCII: bound[0]?.isTruthy ?? false, sortKeys: bound[3]?.isTruthy ?? false,
            separators: separators, maximumBytes: Limits.maximumStringBytes)
        else { throw TemplateError.runtime("tojson: the JSON text would be longer than \(Limits.maximumStringBytes) bytes") }
        RenderBudget.current?.charge(bytes: text.utf8.count)
        return .string(text)
    }

    /// `map('filter', args...)` applies a filter to each item; `map(attribute='a.b', default=x)` looks an
    /// attribute up in each.
    private static let map: Filter = { value, arguments in
        let items = try value.iterated()
        if arguments.positional.isEmpty {
            guard let attribute = arguments.keyword.first(where: { $0.name == "attribute" })?.value else {
                throw TemplateError.runtime("map requires a filter argument")
            }
            let bound = try arguments.bind(["attribute", "default"], function: "map")
            return .list(
                try items.map { item in
                    let found = try lookup(item, path: attribute)
                    return found.isUndefined ? bound[1] ?? found : found
                })
        }
        let name = arguments.positional[0].pythonStr
        guard let filter = table[name] else { throw TemplateError.runtime("unknown filter '\(name)'") }
        var rest = arguments
        rest.positional.removeFirst()
        let results = try items.map { try filter($0, rest) }
        // `[none]|map('default', ns, true)` would put a namespace in a list.
        for result in results { try Limits.checkStorable(result, in: "list") }
        return .list(results)
    }

    /// `select/reject(test, args...)` and `selectattr/rejectattr(attribute, test, args...)`; without a test
    /// the item's truthiness decides.
    private static func select(_ value: Value, _ arguments: Arguments, keep: Bool, byAttribute: Bool) throws -> Value {
        var rest = arguments
        var attribute: Value?
        if byAttribute {
            guard !rest.positional.isEmpty else { throw TemplateError.runtime("missing the attribute to test") }
            attribute = rest.positional.removeFirst()
        }
        var test: Predicate = { item, _ in item.isTruthy }
        if !rest.positional.isEmpty {
            let name = rest.positional.removeFirst().pythonStr
            guard let named = Predicates.table[name] else { throw TemplateError.runtime("unknown test '\(name)'") }
            test = named
        }
        return .list(
            try value.iterated().filter { item in
                let subject = try attribute.map { try lookup(item, path: $0) } ?? item
                return try test(subject, rest) == keep
            })
    }

    /// `sort(reverse=false, case_sensitive=false, attribute=none)`: a stable sort with Python's ordering.
    private static let sort: Filter = { value, arguments in
        let bound = try arguments.bind(["reverse", "case_sensitive", "attribute"], function: "sort")
        let reverse = bound[0]?.isTruthy ?? false
        let keys = try sortKeys(value.iterated(), caseSensitive: bound[1]?.isTruthy ?? false, attribute: bound[2])
        let sorted = try keys.enumerated().sorted { a, b in
            if try a.element.key.pythonCompare(.less, b.element.key) { return !reverse }
            if try b.element.key.pythonCompare(.less, a.element.key) { return reverse }
            return a.offset < b.offset
        }
        return .list(sorted.map(\.element.item))
    }

    /// `unique(case_sensitive=false, attribute=none)`: first occurrences, in order.
    private static let unique: Filter = { value, arguments in
        let bound = try arguments.bind(["case_sensitive", "attribute"], function: "unique")
        var seen: [Value] = []
        var result: [Value] = []
        for (key, item) in try sortKeys(value.iterated(), caseSensitive: bound[0]?.isTruthy ?? false, attribute: bound[1])
        where !seen.contains(where: { $0.pythonEquals(key) }) {
            seen.append(key)
            result.append(item)
        }
        return .list(result)
    }

    /// Each item with the key it is compared by: the attribute if one is given, lower-cased if it is a string
    /// and case does not matter.
    private static func sortKeys(_ items: [Value], caseSensitive: Bool, attribute: Value?) throws -> [(
        key: Value, item: Value
    )] {
        try items.map { item in
            var key = try attribute.map { try lookup(item, path: $0) } ?? item
            if !caseSensitive, case .string(let s) = key { key = .string(s.lowercased()) }
            return (key, item)
        }
    }

    /// jinja2's attribute getter: `"a.b.0"` looks up `a`, then `b`, then index 0, each like `x[part]`.
    static func lookup(_ item: Value, path: Value) throws -> Value {
        if let index = path.integerValue { return try item.item(.int(index)) }
        var current = item
        for part in path.pythonStr.split(separator: ".", omittingEmptySubsequences: false) {
            current = try current.item(Int(part).map(Value.int) ?? .string(String(part)))
        }
        return current
    }
}
