import Foundation
import LongCatTokenizer

/// A JSON tree the mutators can bend out of shape: integers past Int64 and literals JSON forbids (NaN,
/// Infinity, 1e400) are kept as raw text, so the file written holds exactly what the case describes.
indirect enum FJ {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    /// Written verbatim (not valid JSON in general).
    case raw(String)
    case array([FJ])
    case object([(key: String, value: FJ)])

    init(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let items): self = .array(items.map(FJ.init))
        case .object(let object): self = .object(object.map { (key: $0.key, value: FJ($0.value)) })
        }
    }

    static func parse(_ data: Data) throws -> FJ { FJ(try JSONValue.parse(data)) }

    subscript(key: String) -> FJ? {
        get {
            guard case .object(let pairs) = self else { return nil }
            return pairs.last { $0.key == key }?.value
        }
        set {
            guard case .object(var pairs) = self else { return }
            if let newValue {
                if let i = pairs.lastIndex(where: { $0.key == key }) { pairs[i].value = newValue } else { pairs.append((key, newValue)) }
            } else {
                pairs.removeAll { $0.key == key }
            }
            self = .object(pairs)
        }
    }

    var keys: [String] {
        guard case .object(let pairs) = self else { return [] }
        return pairs.map(\.key)
    }

    // MARK: Writing

    var text: String {
        var out = ""
        write(into: &out)
        return out
    }

    var data: Data { Data(text.utf8) }

    func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-1e400" : "1e400" } else {
                // Swift prints 1e-05 and 5.0, both valid JSON.
                out += "\(d)"
            }
        case .string(let s): FJ.writeString(s, into: &out)
        case .raw(let r): out += r
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(into: &out)
            }
            out += "]"
        case .object(let pairs):
            out += "{"
            for (i, pair) in pairs.enumerated() {
                if i > 0 { out += "," }
                FJ.writeString(pair.key, into: &out)
                out += ":"
                pair.value.write(into: &out)
            }
            out += "}"
        }
    }

    static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// A short description for case reports (values cut to 60 characters).
    var brief: String {
        let t = text
        return t.count > 60 ? String(t.prefix(57)) + "..." : t
    }

    // MARK: Paths

    enum Step { case key(String), index(Int) }

    /// Every node's path (the root included), in document order.
    func paths(prefix: [Step] = [], into out: inout [[Step]]) {
        out.append(prefix)
        switch self {
        case .array(let items): for (i, item) in items.enumerated() { item.paths(prefix: prefix + [.index(i)], into: &out) }
        case .object(let pairs): for pair in pairs { pair.value.paths(prefix: prefix + [.key(pair.key)], into: &out) }
        default: break
        }
    }

    func at(_ path: ArraySlice<Step>) -> FJ? {
        guard let step = path.first else { return self }
        switch (self, step) {
        case (.array(let items), .index(let i)) where items.indices.contains(i): return items[i].at(path.dropFirst())
        case (.object, .key(let k)): return self[k]?.at(path.dropFirst())
        default: return nil
        }
    }

    /// Replaces (or with nil removes) the node at `path`.
    mutating func set(_ path: ArraySlice<Step>, _ value: FJ?) {
        guard let step = path.first else {
            self = value ?? .null
            return
        }
        switch (self, step) {
        case (.array(var items), .index(let i)) where items.indices.contains(i):
            if path.count == 1 {
                if let value { items[i] = value } else { items.remove(at: i) }
            } else {
                items[i].set(path.dropFirst(), value)
            }
            self = .array(items)
        case (.object, .key(let k)):
            if path.count == 1 {
                self[k] = value
            } else if var child = self[k] {
                child.set(path.dropFirst(), value)
                self[k] = child
            }
        default: break
        }
    }

    static func describe(_ path: [Step]) -> String {
        if path.isEmpty { return "(root)" }
        let text = path.map { step -> String in
            switch step {
            case .key(let k): return "." + k
            case .index(let i): return "[\(i)]"
            }
        }.joined()
        return text.hasPrefix(".") ? String(text.dropFirst()) : text
    }
}

/// Values chosen to break readers: every JSON type, integers at the edges of Int32/Int64/UInt64 and beyond,
/// huge and fractional numbers, the literals JSON forbids, numbers as strings, and nested garbage.
enum Weird {
    static let integers: [Int] = [
        0, -1, 1, 2, 3, 7, 31, 1 << 20, Int(Int32.max), Int(Int32.max) + 1, 1 << 32, (1 << 53) + 1, 1 << 62, Int.max,
        Int.min, -(1 << 62), 1_000_000_000, 1_000_000_000_000, 1_000_000_000_000_000_000,
    ]

    static let rawNumbers: [String] = [
        "9223372036854775808", "18446744073709551615", "18446744073709551616", "-9223372036854775809",
        "1e400", "-1e400", "1e308", "1E3", "64.0", "6.4e1", "2.5", "0.5", "-0.5", "1e-300", "-0.0", "4.9e-324",
        "NaN", "Infinity", "-Infinity", "nan", "0x40", "+1", "01", "1.", ".5", "1e", "99999999999999999999999999999999",
    ]

    static let strings: [String] = [
        "", "64", "-1", "NaN", "inf", "1e400", "true", "null", "😀", "\u{0}", "\u{FFFD}", "a\"b\\c", "  64  ", "0x40",
        String(repeating: "x", count: 10_000),
    ]

    static func number(_ rng: inout FuzzRandom) -> FJ {
        switch rng.below(4) {
        case 0, 1: return .int(rng.pick(integers))
        case 2: return .raw(rng.pick(rawNumbers))
        default:
            // A power of two up to 2^63 - 1, maybe negative, maybe fractional.
            let shift = rng.below(64)
            var n = shift == 63 ? Int.max : 1 << shift
            if rng.chance(0.3) { n = -n }
            return rng.chance(0.2) ? .double(Double(n) + 0.5) : .int(n)
        }
    }

    static func value(_ rng: inout FuzzRandom, depth: Int = 0) -> FJ {
        switch rng.below(depth > 2 ? 6 : 9) {
        case 0, 1: return number(&rng)
        case 2: return .string(rng.pick(strings))
        case 3: return .bool(rng.chance(0.5))
        case 4: return .null
        case 5:
            // Now and then a value that breaks the whole document (most cases should get past the JSON parser).
            if rng.chance(0.15) { return .raw(rng.pick(["", "[", "{", "}", "]", ",", "\"", "tru", "nul", "'x'", "{\"a\" 1}", "[1,]", "{,}"])) }
            return .array([.string(rng.pick(strings)), number(&rng)])
        case 6: return .array((0..<rng.below(4)).map { _ in value(&rng, depth: depth + 1) })
        case 7: return .object((0..<rng.below(4)).map { i in (key: rng.pick(["a", "", "type", "id", "\(i)"]), value: value(&rng, depth: depth + 1)) })
        default: return nested(&rng)
        }
    }

    /// Deeply nested arrays or objects (some past any parser's depth limit).
    static func nested(_ rng: inout FuzzRandom) -> FJ {
        let depth = rng.pick([3, 50, 600, 5_000])
        var value: FJ = rng.chance(0.5) ? .int(1) : .string("x")
        let objects = rng.chance(0.5)
        for _ in 0..<depth { value = objects ? .object([(key: "a", value: value)]) : .array([value]) }
        return value
    }

    /// A change of a number's type, sign or magnitude, or of a value's type.
    static func bend(_ value: FJ, _ rng: inout FuzzRandom) -> (FJ, String) {
        switch (value, rng.below(6)) {
        case (.int(let i), 0): return (.int(i == Int.min ? i : -i), "negated")
        case (.int(let i), 1):
            let shift = rng.int(1...62)
            let (product, overflow) = i.multipliedReportingOverflow(by: 1 << shift)
            return overflow ? (.raw("\(i)e\(shift)"), "scaled past Int64") : (.int(product), "scaled by 2^\(shift)")
        case (.int(let i), 2): return (.string(String(i)), "as a string")
        case (.int(let i), 3): return (.double(Double(i) + 0.25), "made fractional")
        case (.double(let d), 0): return (.double(-d), "negated")
        case (.double(let d), 1): return (.string(String(d)), "as a string")
        case (.string(let s), 0): return (.array([.string(s)]), "wrapped in a list")
        case (.array(let items), 0): return (items.first ?? .null, "unwrapped")
        case (.object(let pairs), 0): return (.array(pairs.map(\.value)), "object made a list")
        default:
            let replacement = Weird.value(&rng)
            return (replacement, "replaced by \(replacement.brief)")
        }
    }

    /// One random structural mutation somewhere in the tree; returns its description.
    static func mutateAnywhere(_ tree: inout FJ, _ rng: inout FuzzRandom) -> String {
        var paths: [[FJ.Step]] = []
        tree.paths(into: &paths)
        let path = rng.pick(paths)
        guard let node = tree.at(path[...]) else { return "nothing" }
        let name = FJ.describe(path)
        switch rng.below(4) {
        case 0 where !path.isEmpty:
            tree.set(path[...], nil)
            return "removed \(name)"
        case 1:
            let (bent, how) = bend(node, &rng)
            tree.set(path[...], bent)
            return "\(name) \(how)"
        case 2:
            if case .object = node {
                var copy = node
                copy[rng.pick(["type", "", "__proto__", "x", "id"])] = value(&rng)
                tree.set(path[...], copy)
                return "added a key to \(name)"
            }
            if case .array(let items) = node {
                tree.set(path[...], .array(items + [value(&rng)]))
                return "appended to \(name)"
            }
            fallthrough
        default:
            let replacement = value(&rng)
            tree.set(path[...], replacement)
            return "\(name) = \(replacement.brief)"
        }
    }
}

/// Byte-level damage to a serialized file.
enum ByteDamage {
    static func apply(_ data: inout Data, _ rng: inout FuzzRandom) -> String {
        guard !data.isEmpty else { return "empty file" }
        let at = rng.below(data.count)
        switch rng.below(7) {
        case 0:
            data = data.prefix(at)
            return "cut at byte \(at)"
        case 1:
            data[at] = UInt8(truncatingIfNeeded: rng.next())
            return "byte \(at) randomized"
        case 2:
            let bytes: [UInt8] = rng.pick([[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x00], [0xE2, 0x82]])
            data.insert(contentsOf: bytes, at: at)
            return "invalid UTF-8 \(bytes) inserted at byte \(at)"
        case 3:
            data.insert(contentsOf: [0xEF, 0xBB, 0xBF], at: 0)
            return "UTF-8 byte order mark prepended"
        case 4:
            data.append(contentsOf: Array(rng.pick(["garbage", "}", "]", "\u{0}", " {}"]).utf8))
            return "trailing garbage"
        case 5:
            let depth = rng.pick([100, 10_000, 200_000])
            data = Data(String(repeating: "[", count: depth).utf8) + data + Data(String(repeating: "]", count: depth).utf8)
            return "wrapped in \(depth) arrays"
        default:
            let length = min(rng.int(1...64), data.count - at)
            data.removeSubrange(at..<at + length)
            return "\(length) bytes removed at \(at)"
        }
    }
}
