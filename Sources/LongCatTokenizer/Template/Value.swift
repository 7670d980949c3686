/// A value while a template renders: JSON data (with Python's types) plus what only exists inside a template.
enum Value {
    case undefined(Undefined)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([Value])
    case tuple([Value])
    case dict(OrderedDict<Value>)
    case namespace(Namespace)
    case loop(LoopContext)
    case macro(Macro)
    case function(BuiltinFunction)
}

/// jinja2's default `Undefined`: prints as "", is falsy and iterates as empty; any other use is an error that
/// says why the value is undefined.
struct Undefined {
    /// e.g. "'foo' is undefined", "'dict object' has no attribute 'x'".
    let reason: String

    func failure() -> TemplateError { .runtime(reason) }
}

/// `namespace(...)`: the one mutable object templates have, so a value set inside a loop survives the loop.
final class Namespace {
    var attributes: OrderedDict<Value>

    init(_ attributes: OrderedDict<Value>) { self.attributes = attributes }

    /// transformers refuses underscore names on namespaces, to keep templates away from Python internals.
    static func checkName(_ name: String) throws {
        guard name.hasPrefix("_") else { return }
        throw TemplateError.runtime(
            "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(name)'. "
                + "Please rename the attribute.")
    }
}

/// The `loop` variable inside a `for` block (recursive loops are not supported, so `depth` is always 1).
final class LoopContext {
    let items: [Value]
    var index0 = 0

    init(items: [Value]) { self.items = items }

    func attribute(_ name: String) -> Value? {
        let length = items.count
        switch name {
        case "index0": return .int(index0)
        case "index": return .int(index0 + 1)
        case "revindex0": return .int(length - index0 - 1)
        case "revindex": return .int(length - index0)
        case "first": return .bool(index0 == 0)
        case "last": return .bool(index0 == length - 1)
        case "length": return .int(length)
        case "depth": return .int(1)
        case "depth0": return .int(0)
        case "previtem":
            return index0 > 0 ? items[index0 - 1] : .undefined(Undefined(reason: "there is no previous item"))
        case "nextitem":
            return index0 + 1 < length ? items[index0 + 1] : .undefined(Undefined(reason: "there is no next item"))
        case "cycle":
            let index0 = index0
            return .function(
                BuiltinFunction(name: "loop.cycle") { arguments in
                    guard !arguments.positional.isEmpty else {
                        throw TemplateError.runtime("loop.cycle() needs at least one argument")
                    }
                    return arguments.positional[index0 % arguments.positional.count]
                })
        default: return nil
        }
    }
}

/// A `{% macro %}` (or the body of a `{% call %}` block, seen by the macro as `caller`).
final class Macro {
    let definition: MacroDefinition
    /// Weak so that a scope holding its own macros is not a reference cycle; scopes outlive every call in practice.
    weak var scope: Scope?

    init(definition: MacroDefinition, scope: Scope) {
        self.definition = definition
        self.scope = scope
    }
}

/// A global function (`range`, `namespace`, ...) or a method bound to its receiver (`text.strip`).
struct BuiltinFunction {
    let name: String
    let call: (Arguments) throws -> Value
}

/// Evaluated call arguments, bound to parameter names the way Python binds them.
struct Arguments {
    var positional: [Value] = []
    var keyword: [(name: String, value: Value)] = []

    /// One entry per parameter, `nil` where the call did not pass it.
    func bind(_ parameters: [String], function: String) throws -> [Value?] {
        guard positional.count <= parameters.count else {
            throw TemplateError.runtime(
                "\(function)() takes at most \(parameters.count) argument(s) (\(positional.count) given)")
        }
        var bound: [Value?] = positional.map { $0 } + Array(repeating: nil, count: parameters.count - positional.count)
        for (name, value) in keyword {
            guard let index = parameters.firstIndex(of: name) else {
                throw TemplateError.runtime("\(function)() got an unexpected keyword argument '\(name)'")
            }
            guard bound[index] == nil else {
                throw TemplateError.runtime("\(function)() got multiple values for argument '\(name)'")
            }
            bound[index] = value
        }
        return bound
    }
}

// MARK: - Conversions and Python semantics

extension Value {
    init(_ json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let elements): self = .list(elements.map(Value.init))
        case .object(let object): self = .dict(OrderedDict(object.map { ($0.key, Value($0.value)) }))
        }
    }

    /// What Python's `json.dumps` accepts; anything else is the TypeError it raises. At most
    /// `Limits.maximumElements` elements (shared lists can make a value exponentially large when written out).
    func toJSON() throws -> JSONValue {
        var elements = 0
        return try toJSON(elements: &elements)
    }

    private func toJSON(elements: inout Int) throws -> JSONValue {
        elements += 1
        guard elements <= Limits.maximumElements else {
            throw TemplateError.runtime("value is too large to serialize (more than \(Limits.maximumElements) elements)")
        }
        try RenderBudget.current?.chargeOrThrow(1)
        switch self {
        case .none: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .list(let items), .tuple(let items): return .array(try items.map { try $0.toJSON(elements: &elements) })
        case .dict(let dict):
            return .object(OrderedDict(try dict.map { ($0.key, try $0.value.toJSON(elements: &elements)) }))
        default: throw TemplateError.runtime("Object of type \(typeName) is not JSON serializable")
        }
    }

    static func undefined(_ reason: String) -> Value { .undefined(Undefined(reason: reason)) }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    var isNone: Bool {
        if case .none = self { return true }
        return false
    }

    /// Python truthiness (jinja2's Undefined is falsy).
    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let items), .tuple(let items): return !items.isEmpty
        case .dict(let dict): return !dict.isEmpty
        case .namespace, .loop, .macro, .function: return true
        }
    }

    /// Python's type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .loop: return "LoopContext"
        case .macro: return "Macro"
        case .function: return "builtin_function_or_method"
        }
    }

    /// Python's `int` view of a value: bools are integers.
    var integerValue: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    var numberValue: Double? {
        if case .double(let d) = self { return d }
        return integerValue.map(Double.init)
    }
}
