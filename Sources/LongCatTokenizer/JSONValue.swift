import Foundation

/// A JSON value as Python's `json` module sees it.
///
/// Integers and floating-point numbers are distinct cases (`1` and `1.0` print differently in Python), and objects
/// keep their keys in file order: chat templates serialize tool schemas with `json.dumps` without `sort_keys`,
/// so the model sees keys in the order they were given.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// A JSON object: string keys in insertion order.
public typealias JSONObject = OrderedDict<JSONValue>

extension JSONValue {
    /// The member `key` of an object, `nil` for other values or a missing key.
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(OrderedDict(elements))
    }
}

// MARK: - Ordered dictionary

/// A string-keyed dictionary that remembers insertion order, like a Python `dict`.
///
/// Assigning to an existing key keeps its position. Equality ignores order, as Python's `dict` does.
public struct OrderedDict<Value> {
    public private(set) var keys: [String] = []
    private var storage: [String: Value] = [:]

    public init() {}

    /// Later duplicates overwrite earlier values but keep the first position (what `dict(pairs)` does).
    public init<S: Sequence>(_ pairs: S) where S.Element == (String, Value) {
        for (key, value) in pairs { self[key] = value }
    }

    public subscript(key: String) -> Value? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }
    public var values: [Value] { keys.map { storage[$0]! } }

    /// The address of the hash table, the same for copies that share it (a dict's identity while it is unchanged;
    /// templates use it to visit a shared value once).
    var storageIdentity: UnsafeRawPointer? {
        withUnsafeBytes(of: storage) { $0.load(as: UnsafeRawPointer?.self) }
    }
}

extension OrderedDict: Sequence {
    public struct Iterator: IteratorProtocol {
        fileprivate let dict: OrderedDict
        fileprivate var index = 0

        public mutating func next() -> (key: String, value: Value)? {
            guard index < dict.keys.count else { return nil }
            defer { index += 1 }
            let key = dict.keys[index]
            return (key, dict.storage[key]!)
        }
    }

    public func makeIterator() -> Iterator { Iterator(dict: self) }
}

extension OrderedDict: Equatable where Value: Equatable {
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.storage == rhs.storage }
}

extension OrderedDict: Sendable where Value: Sendable {}

extension OrderedDict: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, Value)...) { self.init(elements) }
}

// MARK: - Parsing

/// Why a JSON document was rejected, and where (1-based line and column in bytes, 0-based byte offset).
public struct JSONParseError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public let offset: Int
    public let line: Int
    public let column: Int

    public var description: String {
        "invalid JSON at line \(line), column \(column) (byte \(offset)): \(message)"
    }
}

extension JSONValue {
    /// Nesting deeper than this is rejected instead of risking a stack overflow on hostile input.
    public static let maximumDepth = 512

    /// Parses one strict RFC 8259 document: UTF-8 only, no comments, no trailing commas, no NaN/Infinity,
    /// nothing but whitespace after the value. Duplicate keys: the last value wins, at the first key's position.
    public static func parse(_ data: Data) throws -> JSONValue {
        var parser = JSONParser(bytes: [UInt8](data))
        return try parser.parseDocument()
    }

    public static func parse(_ text: String) throws -> JSONValue {
        try parse(Data(text.utf8))
    }
}

private struct JSONParser {
    let bytes: [UInt8]
    var position = 0
    var depth = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func parseDocument() throws -> JSONValue {
        try validateUTF8()
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        if position < bytes.count { throw error("unexpected \(describeCurrent()) after the JSON value") }
        return value
    }

    /// Validating up front lets string decoding below assume well-formed UTF-8.
    private mutating func validateUTF8() throws {
        var iterator = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput: return
            case .error:
                position = offset
                throw error("invalid UTF-8 byte 0x\(String(bytes[offset], radix: 16, uppercase: true))")
            }
        }
    }

    private mutating func parseValue() throws -> JSONValue {
        guard position < bytes.count else { throw error("unexpected end of input, expected a value") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try parseLiteral("true", .bool(true))
        case UInt8(ascii: "f"): return try parseLiteral("false", .bool(false))
        case UInt8(ascii: "n"): return try parseLiteral("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected \(describeCurrent()), expected a value")
        }
    }

    private mutating func enterContainer() throws {
        depth += 1
        if depth > JSONValue.maximumDepth {
            throw error("nesting deeper than \(JSONValue.maximumDepth) levels")
        }
        position += 1  // the opening bracket
    }

    private mutating func parseObject() throws -> JSONValue {
        try enterContainer()
        defer { depth -= 1 }
        var object = JSONObject()
        skipWhitespace()
        if consume(UInt8(ascii: "}")) { return .object(object) }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw error("unexpected \(describeCurrent()), expected a string key")
            }
            let key = try parseString()
            skipWhitespace()
            guard consume(UInt8(ascii: ":")) else {
                throw error("unexpected \(describeCurrent()), expected ':' after an object key")
            }
            skipWhitespace()
            object[key] = try parseValue()
            skipWhitespace()
            if consume(UInt8(ascii: "}")) { return .object(object) }
            guard consume(UInt8(ascii: ",")) else {
                throw error("unexpected \(describeCurrent()), expected ',' or '}' in an object")
            }
        }
    }

    private mutating func parseArray() throws -> JSONValue {
        try enterContainer()
        defer { depth -= 1 }
        var elements: [JSONValue] = []
        skipWhitespace()
        if consume(UInt8(ascii: "]")) { return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            if consume(UInt8(ascii: "]")) { return .array(elements) }
            guard consume(UInt8(ascii: ",")) else {
                throw error("unexpected \(describeCurrent()), expected ',' or ']' in an array")
            }
        }
    }

    private mutating func parseLiteral(_ word: String, _ value: JSONValue) throws -> JSONValue {
        let expected = Array(word.utf8)
        guard bytes.count - position >= expected.count,
            bytes[position..<position + expected.count].elementsEqual(expected)
        else { throw error("invalid literal, expected '\(word)'") }
        position += expected.count
        return value
    }

    private mutating func parseNumber() throws -> JSONValue {
        let start = position
        var isInteger = true
        _ = consume(UInt8(ascii: "-"))
        if consume(UInt8(ascii: "0")) {
            if position < bytes.count, isDigit(bytes[position]) {
                throw error("leading zeros are not allowed in numbers")
            }
        } else {
            try digits(after: "'-'")
        }
        if consume(UInt8(ascii: ".")) {
            isInteger = false
            try digits(after: "the decimal point")
        }
        if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            position += 1
            if !consume(UInt8(ascii: "+")) { _ = consume(UInt8(ascii: "-")) }
            try digits(after: "the exponent mark")
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        // Python keeps integers of any size exact; beyond Int's range the closest double is the best we can do.
        if isInteger, let value = Int(text) { return .int(value) }
        return .double(Double(text)!)
    }

    private mutating func digits(after what: String) throws {
        guard position < bytes.count, isDigit(bytes[position]) else {
            throw error("unexpected \(describeCurrent()), expected a digit after \(what)")
        }
        while position < bytes.count, isDigit(bytes[position]) { position += 1 }
    }

    private mutating func parseString() throws -> String {
        let start = position
        position += 1  // opening quote
        var buffer: [UInt8] = []
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return String(decoding: buffer, as: UTF8.self)
            case UInt8(ascii: "\\"):
                position += 1
                try parseEscape(into: &buffer)
            case 0..<0x20:
                throw error("unescaped control character 0x\(String(byte, radix: 16)) in a string")
            default:
                buffer.append(byte)
                position += 1
            }
        }
        position = start
        throw error("unterminated string")
    }

    private mutating func parseEscape(into buffer: inout [UInt8]) throws {
        guard position < bytes.count else { throw error("unterminated string") }
        let byte = bytes[position]
        position += 1
        let simple: [UInt8: UInt8] = [
            UInt8(ascii: "\""): 0x22, UInt8(ascii: "\\"): 0x5C, UInt8(ascii: "/"): 0x2F, UInt8(ascii: "b"): 0x08,
            UInt8(ascii: "f"): 0x0C, UInt8(ascii: "n"): 0x0A, UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09,
        ]
        if let replacement = simple[byte] {
            buffer.append(replacement)
            return
        }
        guard byte == UInt8(ascii: "u") else {
            position -= 1
            throw error("invalid escape '\\\(describeCurrent(quoted: false))'")
        }
        var code = try hex4()
        if (0xD800..<0xDC00).contains(code) {
            // A high surrogate must be followed by an escaped low surrogate; together they are one scalar.
            guard bytes.count - position >= 6, bytes[position] == UInt8(ascii: "\\"),
                bytes[position + 1] == UInt8(ascii: "u")
            else { throw error("unpaired surrogate in \\u escape") }
            position += 2
            let low = try hex4()
            guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate in \\u escape") }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
        } else if (0xDC00..<0xE000).contains(code) {
            throw error("unpaired surrogate in \\u escape")
        }
        buffer.append(contentsOf: Array(String(Unicode.Scalar(code)!).utf8))
    }

    private mutating func hex4() throws -> UInt32 {
        guard bytes.count - position >= 4 else { throw error("expected four hex digits after \\u") }
        var value: UInt32 = 0
        for byte in bytes[position..<position + 4] {
            guard let digit = Character(UnicodeScalar(byte)).hexDigitValue else {
                throw error("expected four hex digits after \\u")
            }
            value = value * 16 + UInt32(digit)
        }
        position += 4
        return value
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    private func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    private func describeCurrent(quoted: Bool = true) -> String {
        guard position < bytes.count else { return "end of input" }
        let byte = bytes[position]
        let text = (0x21..<0x7F).contains(byte) ? String(UnicodeScalar(byte)) : "0x" + String(byte, radix: 16)
        return quoted ? "'\(text)'" : text
    }

    private func error(_ message: String) -> JSONParseError {
        var line = 1
        var lineStart = 0
        for (index, byte) in bytes[..<min(position, bytes.count)].enumerated() where byte == 0x0A {
            line += 1
            lineStart = index + 1
        }
        return JSONParseError(message: message, offset: position, line: line, column: position - lineStart + 1)
    }
}

// MARK: - Serialization

extension JSONValue {
    /// Serializes exactly like Python's `json.dumps(value, ensure_ascii=..., indent=..., separators=...,
    /// sort_keys=...)`. The defaults give `json.dumps(value, ensure_ascii=False)`: `", "` and `": "` separators,
    /// non-ASCII text as is. With an `indent`, each element goes on its own line and the item separator
    /// defaults to `","` (Python's rule). NaN and infinities print as `NaN`/`Infinity` (Python's `allow_nan`).
    public func dumps(
        indent: Int? = nil, ensureASCII: Bool = false, sortKeys: Bool = false,
        separators: (item: String, key: String)? = nil
    ) -> String {
        dumps(indent: indent, ensureASCII: ensureASCII, sortKeys: sortKeys, separators: separators, maximumBytes: nil)!
    }

    /// `dumps`, or nil as soon as the text grows past `maximumBytes` (an indent repeats per level and per line, so
    /// a small value can print as a huge text).
    func dumps(
        indent: Int?, ensureASCII: Bool, sortKeys: Bool, separators: (item: String, key: String)?, maximumBytes: Int?
    ) -> String? {
        var writer = JSONWriter(
            indent: indent.map { String(repeating: " ", count: max($0, 0)) }, ensureASCII: ensureASCII,
            sortKeys: sortKeys,
            itemSeparator: separators?.item ?? (indent == nil ? ", " : ","),
            keySeparator: separators?.key ?? ": ", maximumBytes: maximumBytes ?? Int.max)
        writer.write(self, level: 0)
        return writer.overflowed ? nil : writer.output
    }
}

private struct JSONWriter {
    let indent: String?
    let ensureASCII: Bool
    let sortKeys: Bool
    let itemSeparator: String
    let keySeparator: String
    let maximumBytes: Int
    var output = ""
    var overflowed = false

    mutating func write(_ value: JSONValue, level: Int) {
        if overflowed { return }
        if output.utf8.count > maximumBytes {
            overflowed = true
            return
        }
        switch value {
        case .null: output += "null"
        case .bool(let b): output += b ? "true" : "false"
        case .int(let i): output += String(i)
        case .double(let d):
            if d.isNaN {
                output += "NaN"
            } else if d.isInfinite {
                output += d < 0 ? "-Infinity" : "Infinity"
            } else {
                output += pythonFloatRepr(d)
            }
        case .string(let s): writeString(s)
        case .array(let elements):
            writeContainer("[", "]", elements, level: level) { writer, element in
                writer.write(element, level: level + 1)
            }
        case .object(let object):
            let keys = sortKeys ? object.keys.sorted(by: codePointLess) : object.keys
            writeContainer("{", "}", keys, level: level) { writer, key in
                writer.writeString(key)
                writer.output += writer.keySeparator
                writer.write(object[key]!, level: level + 1)
            }
        }
    }

    private mutating func writeContainer<T>(
        _ open: String, _ close: String, _ items: [T], level: Int, writeItem: (inout JSONWriter, T) -> Void
    ) {
        output += open
        guard !items.isEmpty else { return output += close }
        let innerBreak = indent.map { "\n" + String(repeating: $0, count: level + 1) } ?? ""
        for (index, item) in items.enumerated() {
            if overflowed { return }
            if index > 0 { output += itemSeparator }
            output += innerBreak
            writeItem(&self, item)
        }
        if let indent { output += "\n" + String(repeating: indent, count: level) }
        output += close
    }

    private mutating func writeString(_ s: String) {
        output += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case _ where scalar.value < 0x20 || (ensureASCII && scalar.value >= 0x7F):
                // Python escapes astral characters as a surrogate pair.
                for unit in String(scalar).utf16 { output += "\\u" + hex4(unit) }
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }

    private func hex4(_ unit: UInt16) -> String {
        let digits = String(unit, radix: 16)
        return String(repeating: "0", count: 4 - digits.count) + digits
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the decimal exponent is in
/// [-4, 16), otherwise scientific with a signed, at-least-two-digit exponent (`1e-05`, `1e+16`).
func pythonFloatRepr(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
    // Swift's description also prints the shortest round-trip digits; only the layout differs from Python's.
    let text = abs(value).description
    let mantissa: Substring
    var exponent = 0
    if let e = text.firstIndex(of: "e") {
        mantissa = text[..<e]
        exponent = Int(text[text.index(after: e)...])!
    } else {
        mantissa = text[...]
    }
    let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
    var digits = Array(parts[0] + (parts.count > 1 ? parts[1] : ""))
    var pointPosition = parts[0].count + exponent  // value = 0.digits * 10^pointPosition
    while digits.first == "0" {
        digits.removeFirst()
        pointPosition -= 1
    }
    while digits.last == "0" { digits.removeLast() }

    let sign = value < 0 ? "-" : ""
    if pointPosition > -4 && pointPosition <= 16 {
        if pointPosition <= 0 {
            return sign + "0." + String(repeating: "0", count: -pointPosition) + String(digits)
        }
        if pointPosition >= digits.count {
            return sign + String(digits) + String(repeating: "0", count: pointPosition - digits.count) + ".0"
        }
        return sign + String(digits[..<pointPosition]) + "." + String(digits[pointPosition...])
    }
    let decimalExponent = pointPosition - 1
    let exponentDigits = String(abs(decimalExponent))
    var result = sign + String(digits[0])
    if digits.count > 1 { result += "." + String(digits[1...]) }
    result += "e" + (decimalExponent < 0 ? "-" : "+")
    result += (exponentDigits.count < 2 ? "0" : "") + exponentDigits
    return result
}

/// Python orders strings by code point; Swift's `<` on `String` does not promise that.
func codePointLess(_ a: String, _ b: String) -> Bool {
    a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
}
