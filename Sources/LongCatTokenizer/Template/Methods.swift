/// The Python methods templates call on values: `text.strip()`, `text.split(',')`, `message.get('content')`, ...
/// Mutating methods (`list.append`, `dict.update`) are absent: transformers renders in jinja2's immutable sandbox.
enum Methods {
    /// `receiver.name` as a callable, or nil when the receiver's type has no such method.
    static func bound(_ receiver: Value, _ name: String) -> BuiltinFunction? {
        let implementation: ((Arguments) throws -> Value)?
        switch receiver {
        case .string(let text):
            implementation = stringMethod(text, name)
            // String methods scan the text: long texts pay for it in the render's budget.
            if implementation != nil { RenderBudget.current?.charge(bytes: text.utf8.count) }
        case .dict(let dict):
            implementation = dictMethod(dict, name)
            if implementation != nil, name != "get" { RenderBudget.current?.charge(dict.count) }
        default: implementation = nil
        }
        return implementation.map { BuiltinFunction(name: name, call: $0) }
    }

    private static func dictMethod(_ dict: OrderedDict<Value>, _ name: String) -> ((Arguments) throws -> Value)? {
        switch name {
        case "get":
            return { arguments in
                let bound = try arguments.bind(["key", "default"], function: "get")
                guard let key = bound[0] else { throw TemplateError.runtime("get() missing argument 'key'") }
                if case .string(let name) = key, let value = dict[name] { return value }
                return bound[1] ?? .none
            }
        case "items":
            return { arguments in
                _ = try arguments.bind([], function: "items")
                return .list(dict.map { .tuple([.string($0.key), $0.value]) })
            }
        case "keys":
            return { arguments in
                _ = try arguments.bind([], function: "keys")
                return .list(dict.keys.map(Value.string))
            }
        case "values":
            return { arguments in
                _ = try arguments.bind([], function: "values")
                return .list(dict.values)
            }
        default: return nil
        }
    }

    private static func stringMethod(_ text: String, _ name: String) -> ((Arguments) throws -> Value)? {
        switch name {
        case "strip", "lstrip", "rstrip":
            return { arguments in
                let characters = try optionalString(arguments.bind(["chars"], function: name)[0], name)
                return .string(
                    PythonString.strip(text, characters: characters, leading: name != "rstrip", trailing: name != "lstrip"))
            }
        case "split":
            return { arguments in
                let bound = try arguments.bind(["sep", "maxsplit"], function: name)
                let separator = try optionalString(bound[0], name)
                let maxSplit = try bound[1].map { try integer($0, name) } ?? -1
                return .list(try PythonString.split(text, separator: separator, maxSplit: maxSplit).map(Value.string))
            }
        case "startswith", "endswith":
            return { arguments in
                guard let affix = try arguments.bind(["prefix"], function: name)[0] else {
                    throw TemplateError.runtime("\(name)() takes exactly one argument (0 given)")
                }
                let candidates: [Value]
                switch affix {
                case .tuple(let items): candidates = items
                default: candidates = [affix]
                }
                let scalars = PythonString.scalars(text)
                for candidate in candidates {
                    guard case .string(let s) = candidate else {
                        throw TemplateError.runtime(
                            "\(name) first arg must be str or a tuple of str, not \(candidate.typeName)")
                    }
                    let affixScalars = PythonString.scalars(s)
                    let matched =
                        name == "startswith" ? scalars.starts(with: affixScalars)
                        : scalars.reversed().starts(with: affixScalars.reversed())
                    if matched { return .bool(true) }
                }
                return .bool(false)
            }
        case "upper", "lower", "title", "capitalize":
            return { arguments in
                _ = try arguments.bind([], function: name)
                switch name {
                case "upper": return .string(text.uppercased())
                case "lower": return .string(text.lowercased())
                case "title": return .string(PythonString.title(text))
                default: return .string(PythonString.capitalize(text))
                }
            }
        case "replace":
            return { arguments in
                let bound = try arguments.bind(["old", "new", "count"], function: name)
                guard let old = bound[0], let new = bound[1] else {
                    throw TemplateError.runtime("replace() takes at least 2 arguments")
                }
                let count = try bound[2].map { try integer($0, name) } ?? -1
                return .string(
                    try PythonString.replace(text, try string(old, name), try string(new, name), count: count))
            }
        case "find", "count":
            return { arguments in
                guard let needle = try arguments.bind(["sub"], function: name)[0] else {
                    throw TemplateError.runtime("\(name)() takes exactly one argument (0 given)")
                }
                let sub = try string(needle, name)
                if name == "find" { return .int(try PythonString.find(text, sub)) }
                if sub.isEmpty { return .int(text.unicodeScalars.count + 1) }
                return .int(try PythonString.split(text, separator: sub).count - 1)
            }
        case "join":
            return { arguments in
                guard let iterable = try arguments.bind(["iterable"], function: name)[0] else {
                    throw TemplateError.runtime("join() takes exactly one argument (0 given)")
                }
                let pieces = try iterable.iterated().enumerated().map { index, item in
                    guard case .string(let piece) = item else {
                        throw TemplateError.runtime(
                            "sequence item \(index): expected str instance, \(item.typeName) found")
                    }
                    return piece
                }
                let bytes = pieces.reduce(0) { $0 + $1.utf8.count }
                try Limits.checkString(text.utf8.count, times: max(pieces.count - 1, 0))
                try Limits.checkString(bytes + max(pieces.count - 1, 0) * text.utf8.count, times: 1)
                return .string(pieces.joined(separator: text))
            }
        case "format":
            return { arguments in .string(try format(text, arguments)) }
        default: return nil
        }
    }

    /// `str.format` with `{}`, `{0}`, `{name}` fields and `!s`/`!r` conversions; format specs are not supported.
    private static func format(_ template: String, _ arguments: Arguments) throws -> String {
        var result = ""
        defer { RenderBudget.current?.charge(bytes: result.utf8.count) }
        var nextIndex = 0
        var scalars = template.unicodeScalars[...]
        while let scalar = scalars.popFirst() {
            if scalar == "}" {
                guard scalars.popFirst() == "}" else {
                    throw TemplateError.runtime("Single '}' encountered in format string")
                }
                result += "}"
                continue
            }
            guard scalar == "{" else {
                result.unicodeScalars.append(scalar)
                continue
            }
            if scalars.first == "{" {
                scalars.removeFirst()
                result += "{"
                continue
            }
            guard let close = scalars.firstIndex(of: "}") else {
                throw TemplateError.runtime("Single '{' encountered in format string")
            }
            var field = String(scalars[..<close])
            scalars = scalars[scalars.index(after: close)...]
            var conversion = "s"
            if let bang = field.firstIndex(of: "!") {
                conversion = String(field[field.index(after: bang)...])
                field = String(field[..<bang])
            }
            guard !field.contains(":") else {
                throw TemplateError.runtime("format specifications are not supported in str.format")
            }
            let value: Value
            if field.isEmpty || Int(field) != nil {
                let index = Int(field) ?? nextIndex
                nextIndex = index + 1
                guard arguments.positional.indices.contains(index) else {
                    throw TemplateError.runtime("Replacement index \(index) out of range for positional args tuple")
                }
                value = arguments.positional[index]
            } else {
                guard let match = arguments.keyword.first(where: { $0.name == field }) else {
                    throw TemplateError.runtime("KeyError: '\(field)'")
                }
                value = match.value
            }
            switch conversion {
            case "s": result += value.pythonStr
            case "r": result += value.pythonRepr
            default: throw TemplateError.runtime("Unknown conversion specifier \(conversion)")
            }
            try Limits.checkString(bytes: result.utf8.count)
        }
        return result
    }

    private static func string(_ value: Value, _ function: String) throws -> String {
        guard case .string(let s) = value else {
            throw TemplateError.runtime("\(function)() argument must be str, not \(value.typeName)")
        }
        return s
    }

    private static func optionalString(_ value: Value?, _ function: String) throws -> String? {
        guard let value, !(value.isNone) else { return nil }
        return try string(value, function)
    }

    private static func integer(_ value: Value, _ function: String) throws -> Int {
        guard let i = value.integerValue else {
            throw TemplateError.runtime("\(function)() argument must be int, not \(value.typeName)")
        }
        return i
    }
}
