import Foundation
import LongCatTokenizer

/// Typed access to the members of a JSON request object. Every mismatch becomes a 400 that names the field by
/// its full path (`messages[2].content`), so a client sees exactly what to fix. `null` counts as absent, as
/// OpenAI's API treats it.
struct Fields {
    let object: JSONObject
    /// Path of this object inside the request ("" at the top level).
    let path: String

    init(_ object: JSONObject, path: String = "") {
        self.object = object
        self.path = path
    }

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The raw value, nil when absent or null.
    func value(_ key: String) -> JSONValue? {
        guard let v = object[key], v != .null else { return nil }
        return v
    }

    func has(_ key: String) -> Bool { value(key) != nil }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw APIError.wrongType(name(key), expected: "a string", got: v) }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw APIError.wrongType(name(key), expected: "a boolean", got: v) }
        return b
    }

    /// Integers; a number with no fractional part (`16.0`) is accepted too, as Python clients may send one.
    func int(_ key: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let i = Self.integer(v) else { throw APIError.wrongType(name(key), expected: "an integer", got: v) }
        return i
    }

    func number(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        switch v {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: throw APIError.wrongType(name(key), expected: "a number", got: v)
        }
    }

    func array(_ key: String) throws -> [JSONValue]? {
        guard let v = value(key) else { return nil }
        guard case .array(let a) = v else { throw APIError.wrongType(name(key), expected: "a list", got: v) }
        return a
    }

    func object(_ key: String) throws -> Fields? {
        guard let v = value(key) else { return nil }
        guard case .object(let o) = v else { throw APIError.wrongType(name(key), expected: "an object", got: v) }
        return Fields(o, path: name(key))
    }

    static func integer(_ v: JSONValue) -> Int? {
        switch v {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9e15: return Int(d)
        default: return nil
        }
    }
}

extension JSONValue {
    /// The top-level request object, or a 400 that says what is wrong with the body.
    static func requestObject(_ bytes: [UInt8]) throws -> JSONObject {
        let value: JSONValue
        do {
            value = try JSONValue.parse(Data(bytes))
        } catch let error as JSONParseError {
            // The parser's message gives the position and, for bad bytes, says "invalid UTF-8".
            let code = error.message.contains("UTF-8") ? "invalid_utf8" : "invalid_json"
            throw APIError.invalid("the request body is not valid JSON: \(error)", param: nil, code: code)
        }
        guard case .object(let object) = value else {
            throw APIError.invalid("the request body must be a JSON object, got \(value.typeName)", param: nil, code: "invalid_json")
        }
        return object
    }
}
