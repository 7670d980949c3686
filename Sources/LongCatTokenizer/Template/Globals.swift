import Foundation

/// The functions every template can call: jinja2's `range`, `namespace`, `dict`, and transformers'
/// `raise_exception` and `strftime_now`.
enum Globals {
    /// jinja2's sandbox refuses larger ranges, which keeps a hostile template from exhausting memory.
    static let maximumRange = 100_000

    static func functions() -> [String: Value] {
        [
            "range": function("range", range),
            "namespace": function("namespace") { arguments in
                let attributes = try mapping(arguments, "namespace")
                try attributes.keys.forEach(Namespace.checkName)
                try Limits.checkNewContainer(attributes.values, kind: "namespace")
                return .namespace(Namespace(attributes))
            },
            "dict": function("dict") { arguments in
                let dict = try mapping(arguments, "dict")
                try Limits.checkNewContainer(dict.values, kind: "dict")
                return .dict(dict)
            },
            "raise_exception": function("raise_exception") { arguments in
                let message = try arguments.bind(["message"], function: "raise_exception")[0]
                throw TemplateError(kind: .raised, line: nil, message: message?.pythonStr ?? "")
            },
            "strftime_now": function("strftime_now") { arguments in
                guard let format = try arguments.bind(["format"], function: "strftime_now")[0] else {
                    throw TemplateError.runtime("strftime_now() missing argument 'format'")
                }
                return .string(strftimeNow(format.pythonStr))
            },
        ]
    }

    private static func function(_ name: String, _ call: @escaping (Arguments) throws -> Value) -> Value {
        .function(BuiltinFunction(name: name, call: call))
    }

    private static func range(_ arguments: Arguments) throws -> Value {
        guard arguments.keyword.isEmpty, (1...3).contains(arguments.positional.count) else {
            throw TemplateError.runtime("range() takes 1 to 3 positional integer arguments")
        }
        let numbers = try arguments.positional.map { value in
            guard let i = value.integerValue else {
                throw TemplateError.runtime("'\(value.typeName)' object cannot be interpreted as an integer")
            }
            return i
        }
        let (start, stop) = numbers.count == 1 ? (0, numbers[0]) : (numbers[0], numbers[1])
        let step = numbers.count == 3 ? numbers[2] : 1
        guard step != 0 else { throw TemplateError.runtime("range() arg 3 must not be zero") }
        // The length, computed without overflow (a stride's own count is no help: StrideTo reports 0, and mapping
        // range(-2**63, 2**63 - 1) would then run for ever).
        let (high, low) = step > 0 ? (stop, start) : (start, stop)
        // The distance fits in UInt (at most 2^64 - 1) even where it does not fit in Int.
        let count = high <= low ? 0 : (UInt(bitPattern: high &- low) - 1) / step.magnitude + 1
        guard count <= UInt(maximumRange) else {
            throw TemplateError.runtime("range too big: the sandbox allows at most \(maximumRange) items")
        }
        return .list(stride(from: start, to: stop, by: step).map(Value.int))
    }

    /// `dict(mapping, **kwargs)` and `namespace(mapping, **kwargs)`.
    private static func mapping(_ arguments: Arguments, _ name: String) throws -> OrderedDict<Value> {
        guard arguments.positional.count <= 1 else {
            throw TemplateError.runtime("\(name)() takes at most one positional argument")
        }
        var result = OrderedDict<Value>()
        if let initial = arguments.positional.first {
            guard case .dict(let dict) = initial else {
                throw TemplateError.runtime("\(name)() argument must be a mapping, not \(initial.typeName)")
            }
            result = dict
        }
        for (key, value) in arguments.keyword { result[key] = value }
        return result
    }

    /// `datetime.now().strftime(format)` in local time.
    private static func strftimeNow(_ format: String) -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 512)
        let count = strftime(&buffer, buffer.count, format, &parts)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
