/// Python's text behaviour, which jinja2 inherits: how values print, what counts as whitespace, and the `str`
/// methods templates call. Strings are handled as Unicode scalars (Python code points), not Swift characters.

extension Value {
    /// Python's `str()`: what `{{ value }}` and `~` produce.
    var pythonStr: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return pythonRepr
        }
    }

    /// Python's `repr()`, used for the elements of printed lists and dicts.
    ///
    /// Shared lists can make a value whose printed form is exponentially long (`[l, l]` doubled in a loop), so
    /// printing charges the render's budget per element and stops, with the text cut short, once the budget or
    /// the string size limit is spent; the interpreter then fails the render (the cut text is never seen).
    var pythonRepr: String {
        var out = ""
        writeRepr(into: &out, budget: RenderBudget.current)
        return out
    }

    private func writeRepr(into out: inout String, budget: RenderBudget?) {
        if let budget, !budget.charge(1) { return }
        if out.utf8.count > Limits.maximumStringBytes {
            budget?.charge(Limits.maximumWork)
            return
        }
        switch self {
        case .undefined: out += "Undefined"
        case .none: out += "None"
        case .bool(let b): out += b ? "True" : "False"
        case .int(let i): out += String(i)
        case .double(let d): out += pythonFloatRepr(d)
        case .string(let s):
            budget?.charge(bytes: s.utf8.count)
            out += pythonStringRepr(s)
        case .list(let items):
            out += "["
            Self.writeItems(items, into: &out, budget: budget)
            out += "]"
        case .tuple(let items):
            out += "("
            Self.writeItems(items, into: &out, budget: budget)
            out += items.count == 1 ? ",)" : ")"
        case .dict(let dict): Self.writeDict(dict, into: &out, budget: budget)
        case .namespace(let namespace):
            out += "<Namespace "
            Self.writeDict(namespace.attributes, into: &out, budget: budget)
            out += ">"
        case .loop(let loop): out += "<LoopContext \(loop.index0 + 1)/\(loop.items.count)>"
        case .macro(let macro): out += "<Macro '\(macro.definition.name)'>"
        case .function(let function): out += "<built-in function \(function.name)>"
        }
    }

    private static func writeItems(_ items: [Value], into out: inout String, budget: RenderBudget?) {
        for (index, item) in items.enumerated() {
            if budget?.isExhausted == true { return }
            if index > 0 { out += ", " }
            item.writeRepr(into: &out, budget: budget)
        }
    }

    private static func writeDict(_ dict: OrderedDict<Value>, into out: inout String, budget: RenderBudget?) {
        out += "{"
        for (index, entry) in dict.enumerated() {
            if budget?.isExhausted == true { return }
            if index > 0 { out += ", " }
            out += pythonStringRepr(entry.key) + ": "
            entry.value.writeRepr(into: &out, budget: budget)
        }
        out += "}"
    }
}

/// Python's `repr(str)`: single quotes unless the text has a single quote and no double quote; non-printable
/// characters escaped.
func pythonStringRepr(_ s: String) -> String {
    let quote: Unicode.Scalar = s.contains("'") && !s.contains("\"") ? "\"" : "'"
    var result = String(quote)
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\\": result += "\\\\"
        case quote: result += "\\" + String(quote)
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        case _ where !scalar.isPythonPrintable:
            let hex = String(scalar.value, radix: 16)
            let (prefix, width) = scalar.value < 0x100 ? ("\\x", 2) : scalar.value < 0x10000 ? ("\\u", 4) : ("\\U", 8)
            result += prefix + String(repeating: "0", count: width - hex.count) + hex
        default: result.unicodeScalars.append(scalar)
        }
    }
    result.unicodeScalars.append(quote)
    return result
}

extension Unicode.Scalar {
    /// `str.isspace()`: the characters Python's `strip()` and `split()` remove, and `\s` in its regexes.
    var isPythonWhitespace: Bool {
        switch value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default: return false
        }
    }

    /// `str.isprintable()` for one character: everything but control, format, unassigned, private-use and
    /// separator characters (the plain space excepted).
    var isPythonPrintable: Bool {
        if self == " " { return true }
        switch properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
            .spaceSeparator:
            return false
        default: return true
        }
    }

    var isCased: Bool { properties.isLowercase || properties.isUppercase || properties.generalCategory == .titlecaseLetter }
}

/// The `str` methods templates use, with Python's semantics.
enum PythonString {
    static func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }

    static func string<C: Collection>(_ scalars: C) -> String where C.Element == Unicode.Scalar {
        var result = String.UnicodeScalarView()
        result.append(contentsOf: scalars)
        return String(result)
    }

    /// `str.strip(chars)`, `lstrip`, `rstrip`: `chars == nil` strips whitespace.
    static func strip(_ s: String, characters: String?, leading: Bool = true, trailing: Bool = true) -> String {
        let set = characters.map { Set($0.unicodeScalars) }
        let remove = { (scalar: Unicode.Scalar) in set?.contains(scalar) ?? scalar.isPythonWhitespace }
        var view = Substring(s).unicodeScalars
        if leading { view = view.drop(while: remove) }
        if trailing {
            while let last = view.last, remove(last) { view.removeLast() }
        }
        return String(view)
    }

    /// `str.split(sep, maxsplit)`; `separator == nil` splits on runs of whitespace and drops empty pieces.
    static func split(_ s: String, separator: String?, maxSplit: Int = -1) throws -> [String] {
        let text = scalars(s)
        var pieces: [String] = []
        guard let separator else {
            var index = 0
            while true {
                while index < text.count, text[index].isPythonWhitespace { index += 1 }
                guard index < text.count else { return pieces }
                if maxSplit >= 0, pieces.count == maxSplit {
                    // Python keeps the remainder as is, trailing whitespace included.
                    pieces.append(string(text[index...]))
                    return pieces
                }
                let start = index
                while index < text.count, !text[index].isPythonWhitespace { index += 1 }
                pieces.append(string(text[start..<index]))
            }
        }
        let sep = scalars(separator)
        guard !sep.isEmpty else { throw TemplateError.runtime("empty separator") }
        let budget = RenderBudget.current
        var start = 0
        var index = 0
        while index + sep.count <= text.count, maxSplit < 0 || pieces.count < maxSplit {
            // The search is naive (text x separator); long texts pay for it in the render's budget.
            if let budget, !budget.charge(1 + sep.count >> 4) { try budget.check() }
            if text[index..<index + sep.count].elementsEqual(sep) {
                pieces.append(string(text[start..<index]))
                index += sep.count
                start = index
            } else {
                index += 1
            }
        }
        pieces.append(string(text[start...]))
        return pieces
    }

    /// `str.replace(old, new, count)`; an empty `old` inserts `new` between characters, as in Python.
    static func replace(_ s: String, _ old: String, _ new: String, count: Int = -1) throws -> String {
        guard !old.isEmpty else {
            // One copy of `new` around every character: check the size before building it.
            let copies = count < 0 ? s.unicodeScalars.count + 1 : min(count, s.unicodeScalars.count + 1)
            try Limits.checkString(new.utf8.count, times: copies)
            try Limits.checkString(s.utf8.count + copies * new.utf8.count, times: 1)
            var result = ""
            var inserted = 0
            for scalar in s.unicodeScalars {
                if count < 0 || inserted < count {
                    result += new
                    inserted += 1
                }
                result.unicodeScalars.append(scalar)
            }
            if count < 0 || inserted < count { result += new }
            return result
        }
        let pieces = try split(s, separator: old, maxSplit: count)
        try Limits.checkString(new.utf8.count, times: pieces.count - 1)
        try Limits.checkString(s.utf8.count + (pieces.count - 1) * new.utf8.count, times: 1)
        return pieces.joined(separator: new)
    }

    /// `str.find(sub)`: code-point index of the first occurrence, or -1.
    static func find(_ s: String, _ sub: String) throws -> Int {
        let text = scalars(s)
        let needle = scalars(sub)
        guard needle.count <= text.count else { return -1 }
        let budget = RenderBudget.current
        for index in 0...(text.count - needle.count) {
            if let budget, !budget.charge(1 + needle.count >> 4) { try budget.check() }
            if text[index..<index + needle.count].elementsEqual(needle) { return index }
        }
        return -1
    }

    /// `str.capitalize()`: first character upper case, the rest lower case.
    static func capitalize(_ s: String) -> String {
        guard let first = s.unicodeScalars.first else { return s }
        return String(first).uppercased() + string(s.unicodeScalars.dropFirst()).lowercased()
    }

    /// `str.title()`: a cased character is upper case after an uncased one, lower case otherwise.
    static func title(_ s: String) -> String {
        var result = ""
        var previousCased = false
        for scalar in s.unicodeScalars {
            result += previousCased ? String(scalar).lowercased() : String(scalar).uppercased()
            previousCased = scalar.isCased
        }
        return result
    }
}

/// The indices a Python slice `[start:stop:step]` selects from a sequence of `count` elements.
func pythonSliceIndices(count: Int, start: Int?, stop: Int?, step: Int?) throws -> StrideTo<Int> {
    let step = step ?? 1
    guard step != 0 else { throw TemplateError.runtime("slice step cannot be zero") }
    let (lower, upper) = step > 0 ? (0, count) : (-1, count - 1)
    func clamp(_ index: Int?, default value: Int) -> Int {
        guard var index else { return value }
        if index < 0 { index += count }
        return min(max(index, lower), upper)
    }
    let from = clamp(start, default: step > 0 ? lower : upper)
    let to = clamp(stop, default: step > 0 ? upper : lower)
    return stride(from: from, to: to, by: step)
}

extension PythonString {
    /// Python's `format % values`: `%s %r %d %i %f %e %g %x %o %c %%`, with `%(name)s` keys, flags, width and
    /// precision. A tuple supplies the values in order, a dict the named ones, anything else is the one value.
    static func percentFormat(_ format: String, _ values: Value) throws -> String {
        var positional: [Value] = [values]
        if case .tuple(let items) = values { positional = items }
        var mapping: OrderedDict<Value>?
        if case .dict(let dict) = values { mapping = dict }
        var nextValue = 0
        var result = ""
        var scalars = format.unicodeScalars[...]
        while let scalar = scalars.popFirst() {
            guard scalar == "%" else {
                result.unicodeScalars.append(scalar)
                continue
            }
            var key: String?
            if scalars.first == "(" {
                guard let close = scalars.firstIndex(of: ")") else { throw TemplateError.runtime("incomplete format key") }
                key = String(scalars[scalars.index(after: scalars.startIndex)..<close])
                scalars = scalars[scalars.index(after: close)...]
            }
            var spec = ""
            while let c = scalars.first, "-+ #0123456789.".unicodeScalars.contains(c) {
                spec.unicodeScalars.append(c)
                scalars.removeFirst()
            }
            // Width and precision are numbers printf takes as int; a huge one would allocate without bound.
            for number in spec.split(whereSeparator: { !$0.isNumber }) where Int(number).map({ $0 > Limits.maximumFormatWidth }) ?? true {
                throw TemplateError.runtime("format width or precision \(number) is larger than \(Limits.maximumFormatWidth)")
            }
            guard let conversion = scalars.popFirst() else { throw TemplateError.runtime("incomplete format") }
            if conversion == "%" {
                result += "%"
                continue
            }
            let value: Value
            if let key {
                guard let mapping else { throw TemplateError.runtime("format requires a mapping") }
                guard let found = mapping[key] else { throw TemplateError.runtime("KeyError: '\(key)'") }
                value = found
            } else {
                guard nextValue < positional.count else {
                    throw TemplateError.runtime("not enough arguments for format string")
                }
                value = positional[nextValue]
                nextValue += 1
            }
            result += try formatOne(value, spec: spec, conversion: conversion)
            try Limits.checkString(bytes: result.utf8.count)
        }
        RenderBudget.current?.charge(bytes: result.utf8.count)
        // CPython skips this check when the single value supports indexing (a list or a dict).
        var indexable = mapping != nil
        if case .list = values { indexable = true }
        if !indexable, nextValue < positional.count {
            throw TemplateError.runtime("not all arguments converted during string formatting")
        }
        return result
    }

    private static func formatOne(_ value: Value, spec: String, conversion: Unicode.Scalar) throws -> String {
        switch conversion {
        case "s", "r":
            let text = conversion == "s" ? value.pythonStr : value.pythonRepr
            let parts = spec.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
            let precision = parts.count > 1 ? Int(parts[1]) ?? 0 : nil
            let clipped = precision.map { string(text.unicodeScalars.prefix($0)) } ?? text
            let leftAlign = parts[0].contains("-")
            let width = Int(parts[0].filter(\.isNumber)) ?? 0
            let padding = String(repeating: " ", count: max(0, width - clipped.unicodeScalars.count))
            return leftAlign ? clipped + padding : padding + clipped
        case "d", "i", "u", "x", "X", "o", "c":
            guard let number = value.numberValue, number.isFinite else {
                throw TemplateError.runtime("%\(conversion) format: a real number is required, not \(value.typeName)")
            }
            guard value.integerValue != nil || Swift.abs(number) < 9.2e18 else {
                throw TemplateError.runtime("%\(conversion) format: \(pythonFloatRepr(number)) does not fit in a 64-bit integer")
            }
            let integer = value.integerValue ?? Int(number.rounded(.towardZero))
            if conversion == "c" {
                guard let character = Unicode.Scalar(UInt32(clamping: integer)) else {
                    throw TemplateError.runtime("%c arg not in range(0x110000)")
                }
                return String(character)
            }
            let cConversion = ["d": "ld", "i": "ld", "u": "ld", "x": "lx", "X": "lX", "o": "lo"][String(conversion)]!
            return String(format: "%" + spec + cConversion, integer)
        case "f", "F", "e", "E", "g", "G":
            guard let number = value.numberValue else {
                throw TemplateError.runtime("must be real number, not \(value.typeName)")
            }
            return String(format: "%" + spec + String(conversion), number)
        default:
            throw TemplateError.runtime("unsupported format character '\(conversion)'")
        }
    }
}
