/// One lexical token of a template: literal text between tags, tag delimiters, and the tokens inside tags.
enum TokenKind: Equatable {
    case text(String)
    case blockBegin, blockEnd, variableBegin, variableEnd
    case name(String)
    case string(String)
    case integer(Int)
    case float(Double)
    case op(String)
    case end
}

struct Token {
    let kind: TokenKind
    let line: Int
}

/// Splits a template into tokens the way jinja2's lexer does with transformers' settings
/// (`trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False`):
/// - `{%-`, `{{-`, `{#-` strip all whitespace before the tag; `-%}`, `-}}`, `-#}` strip all whitespace after it;
/// - trim_blocks: the first newline after a block or comment tag is removed (`+%}` keeps it);
/// - lstrip_blocks: spaces and tabs from the start of a line up to a block or comment tag are removed (`{%+`
///   keeps them); variable tags `{{ }}` are never affected by either;
/// - line endings become `\n` and one trailing newline of the template is dropped.
struct Lexer {
    private var source: [Unicode.Scalar]
    private var position = 0
    private var line = 1
    /// Whether the last thing consumed ended a line; lstrip_blocks applies at the very start of the template too.
    private var lineStarting = true
    private var tokens: [Token] = []

    private enum TagKind { case block, variable, comment, raw }

    static func tokenize(_ template: String) throws -> [Token] {
        var lexer = Lexer(source: normalizedSource(template))
        try lexer.run()
        return lexer.tokens
    }

    private init(source: [Unicode.Scalar]) { self.source = source }

    private static func normalizedSource(_ template: String) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        var iterator = template.unicodeScalars.makeIterator()
        var pending = iterator.next()
        while let scalar = pending {
            pending = iterator.next()
            if scalar == "\r" {
                if pending == "\n" { pending = iterator.next() }
                result.append("\n")
            } else {
                result.append(scalar)
            }
        }
        if result.last == "\n" { result.removeLast() }
        return result
    }

    private mutating func run() throws {
        while position < source.count {
            guard let (start, kind, sign) = nextTag() else {
                emitText(source[position...], line: line)
                line += newlines(in: source[position...])
                position = source.count
                break
            }
            var text = source[position..<start]
            if sign == "-" {
                while let last = text.last, last.isPythonWhitespace { text.removeLast() }
            } else if sign != "+" && kind != .variable {
                text = lstripLastLine(text)
            }
            emitText(text, line: line)
            line += newlines(in: source[position..<start])
            let tagLine = line
            position = start + 2 + (sign == nil ? 0 : 1)
            switch kind {
            case .comment: try skipComment(line: tagLine)
            case .raw: try lexRaw(tagStart: start, line: tagLine)
            case .block:
                tokens.append(Token(kind: .blockBegin, line: tagLine))
                try lexTagContent(variable: false, line: tagLine)
            case .variable:
                tokens.append(Token(kind: .variableBegin, line: tagLine))
                try lexTagContent(variable: true, line: tagLine)
            }
        }
        tokens.append(Token(kind: .end, line: line))
    }

    /// The next `{%`, `{{` or `{#` at or after `position`, with its whitespace-control sign.
    private func nextTag() -> (start: Int, kind: TagKind, sign: Unicode.Scalar?)? {
        var index = position
        while index + 1 < source.count {
            defer { index += 1 }
            guard source[index] == "{" else { continue }
            let kind: TagKind
            switch source[index + 1] {
            case "%": kind = rawTagEnd(from: index) != nil ? .raw : .block
            case "{": kind = .variable
            case "#": kind = .comment
            default: continue
            }
            let next = index + 2 < source.count ? source[index + 2] : nil
            return (index, kind, next == "-" || next == "+" ? next : nil)
        }
        return nil
    }

    /// lstrip_blocks: drops the spaces before a tag when nothing else precedes it on its line.
    private func lstripLastLine(_ text: ArraySlice<Unicode.Scalar>) -> ArraySlice<Unicode.Scalar> {
        let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? text.startIndex
        guard lineStart > text.startIndex || lineStarting, lineStart < text.endIndex,
            text[lineStart...].allSatisfy(\.isPythonWhitespace)
        else { return text }
        return text[..<lineStart]
    }

    private mutating func emitText(_ text: ArraySlice<Unicode.Scalar>, line: Int) {
        guard !text.isEmpty else { return }
        tokens.append(Token(kind: .text(PythonString.string(text)), line: line))
    }

    private func newlines(in text: ArraySlice<Unicode.Scalar>) -> Int { text.lazy.filter { $0 == "\n" }.count }

    private func matches(_ literal: String, at index: Int) -> Bool {
        var index = index
        for scalar in literal.unicodeScalars {
            guard index < source.count, source[index] == scalar else { return false }
            index += 1
        }
        return true
    }

    /// Where a closing delimiter (`%}`, `}}` or `#}`, optionally signed) at `index` ends, if there is one there:
    /// `-` takes the whitespace after it along, trim_blocks one newline after block and comment tags.
    private func tagEnd(_ delimiter: String, at index: Int, trimBlocks: Bool, allowPlus: Bool) -> Int? {
        if allowPlus && matches("+" + delimiter, at: index) { return index + 3 }
        if matches("-" + delimiter, at: index) {
            var end = index + 3
            while end < source.count, source[end].isPythonWhitespace { end += 1 }
            return end
        }
        guard matches(delimiter, at: index) else { return nil }
        let end = index + 2
        return trimBlocks && end < source.count && source[end] == "\n" ? end + 1 : end
    }

    private mutating func consumeTagEnd(_ delimiter: String, trimBlocks: Bool, allowPlus: Bool) -> Bool {
        guard let end = tagEnd(delimiter, at: position, trimBlocks: trimBlocks, allowPlus: allowPlus) else {
            return false
        }
        advance(to: end)
        return true
    }

    private mutating func advance(to end: Int) {
        line += newlines(in: source[position..<end])
        lineStarting = source[end - 1] == "\n"
        position = end
    }

    private mutating func skipComment(line tagLine: Int) throws {
        while position < source.count {
            if consumeTagEnd("#}", trimBlocks: true, allowPlus: true) { return }
            if source[position] == "\n" { line += 1 }
            position += 1
        }
        throw TemplateError.syntax("unclosed comment (missing '#}')", line: tagLine)
    }

    /// Where the `{% raw %}` tag starting at `index` ends, or nil if the block tag there is not `raw`.
    private func rawTagEnd(from index: Int) -> Int? {
        var i = index + 2
        if i < source.count, source[i] == "-" || source[i] == "+" { i += 1 }
        while i < source.count, source[i].isPythonWhitespace { i += 1 }
        guard matches("raw", at: i) else { return nil }
        i += 3
        while i < source.count, source[i].isPythonWhitespace { i += 1 }
        if matches("-%}", at: i) {
            i += 3
            while i < source.count, source[i].isPythonWhitespace { i += 1 }
            return i
        }
        return matches("%}", at: i) ? i + 2 : nil
    }

    /// `{% raw %}...{% endraw %}`: the content is text, whitespace control applies to both tags.
    private mutating func lexRaw(tagStart: Int, line tagLine: Int) throws {
        let contentStart = rawTagEnd(from: tagStart)!
        advance(to: contentStart)
        var index = contentStart
        while index + 1 < source.count {
            defer { index += 1 }
            guard source[index] == "{", source[index + 1] == "%" else { continue }
            var i = index + 2
            let sign = i < source.count && (source[i] == "-" || source[i] == "+") ? source[i] : nil
            if sign != nil { i += 1 }
            while i < source.count, source[i].isPythonWhitespace { i += 1 }
            guard matches("endraw", at: i) else { continue }
            i += 6
            while i < source.count, source[i].isPythonWhitespace { i += 1 }
            guard let end = tagEnd("%}", at: i, trimBlocks: true, allowPlus: true) else { continue }
            var content = source[contentStart..<index]
            if sign == "-" {
                while let last = content.last, last.isPythonWhitespace { content.removeLast() }
            } else if sign == nil {
                content = lstripLastLine(content)
            }
            emitText(content, line: line)
            advance(to: end)
            return
        }
        throw TemplateError.syntax("unclosed 'raw' (missing '{% endraw %}')", line: tagLine)
    }

    // MARK: Inside a tag

    private mutating func lexTagContent(variable: Bool, line tagLine: Int) throws {
        var brackets: [Unicode.Scalar] = []  // closers owed; the tag can only end when none are
        while true {
            guard position < source.count else {
                let (open, close) = variable ? ("{{", "}}") : ("{%", "%}")
                throw TemplateError.syntax("unclosed '\(open)' tag (missing '\(close)')", line: tagLine)
            }
            if brackets.isEmpty {
                let ended =
                    variable
                    ? consumeTagEnd("}}", trimBlocks: false, allowPlus: false)
                    : consumeTagEnd("%}", trimBlocks: true, allowPlus: true)
                if ended {
                    tokens.append(Token(kind: variable ? .variableEnd : .blockEnd, line: line))
                    return
                }
            }
            let scalar = source[position]
            if scalar.isPythonWhitespace {
                if scalar == "\n" { line += 1 }
                position += 1
            } else if let number = try lexNumber() {
                tokens.append(Token(kind: number, line: line))
            } else if scalar == "_" || scalar.properties.isXIDStart {
                let start = position
                while position < source.count, source[position] == "_" || source[position].properties.isXIDContinue {
                    position += 1
                }
                tokens.append(Token(kind: .name(PythonString.string(source[start..<position])), line: line))
            } else if scalar == "'" || scalar == "\"" {
                let stringLine = line
                let value = try lexString()
                tokens.append(Token(kind: .string(value), line: stringLine))
            } else {
                let op = try lexOperator()
                switch op {
                case "(": brackets.append(")")
                case "[": brackets.append("]")
                case "{": brackets.append("}")
                case ")", "]", "}":
                    guard let expected = brackets.popLast() else {
                        throw TemplateError.syntax("unexpected '\(op)'", line: line)
                    }
                    guard String(expected) == op else {
                        throw TemplateError.syntax("unexpected '\(op)', expected '\(expected)'", line: line)
                    }
                default: break
                }
                tokens.append(Token(kind: .op(op), line: line))
            }
        }
    }

    private static let operators = [
        "**", "//", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<",
        "=", ".", ":", "|", ",", ";",
    ]

    private mutating func lexOperator() throws -> String {
        for op in Lexer.operators where matches(op, at: position) {
            position += op.unicodeScalars.count
            return op
        }
        throw TemplateError.syntax("unexpected character '\(source[position])'", line: line)
    }

    /// jinja2's number syntax: decimal, `0x`/`0o`/`0b` integers and floats, all with optional `_` separators.
    private mutating func lexNumber() throws -> TokenKind? {
        let isDecimal: (Unicode.Scalar) -> Bool = { ("0"..."9").contains($0) }
        guard isDecimal(source[position]) else { return nil }
        let start = position
        func digitRun(_ index: inout Int, _ isDigit: (Unicode.Scalar) -> Bool) -> Bool {
            guard index < source.count, isDigit(source[index]) else { return false }
            while index < source.count {
                if isDigit(source[index]) {
                    index += 1
                } else if source[index] == "_", index + 1 < source.count, isDigit(source[index + 1]) {
                    index += 2
                } else {
                    break
                }
            }
            return true
        }

        // Prefixed integers.
        if source[start] == "0", start + 1 < source.count {
            let radixes: [Unicode.Scalar: (Int, String)] = [
                "x": (16, "0123456789abcdefABCDEF"), "X": (16, "0123456789abcdefABCDEF"), "o": (8, "01234567"),
                "O": (8, "01234567"), "b": (2, "01"), "B": (2, "01"),
            ]
            if let (radix, digits) = radixes[source[start + 1]] {
                var end = start + 2
                let isDigit: (Unicode.Scalar) -> Bool = { digits.unicodeScalars.contains($0) }
                if end < source.count, source[end] == "_" { end += 1 }
                if digitRun(&end, isDigit) {
                    position = end
                    return .integer(try integer(source[start + 2..<end], radix: radix))
                }
            }
        }

        // A float needs a fraction or an exponent; jinja2 never starts one right after a '.' (`a.0.1`).
        var end = start
        _ = digitRun(&end, isDecimal)
        let afterDot = start > 0 && source[start - 1] == "."
        var fractionEnd = end
        var hasFraction = false
        if !afterDot, end < source.count, source[end] == "." {
            var i = end + 1
            if digitRun(&i, isDecimal) {
                fractionEnd = i
                hasFraction = true
            }
        }
        var exponentEnd: Int?
        if !afterDot, fractionEnd < source.count, source[fractionEnd] == "e" || source[fractionEnd] == "E" {
            var i = fractionEnd + 1
            if i < source.count, source[i] == "+" || source[i] == "-" { i += 1 }
            if digitRun(&i, isDecimal) { exponentEnd = i }
        }
        if let floatEnd = exponentEnd ?? (hasFraction ? fractionEnd : nil) {
            position = floatEnd
            let text = PythonString.string(source[start..<floatEnd]).replacingOccurrences(of: "_", with: "")
            guard let value = Double(text) else {
                throw TemplateError.syntax("invalid number literal \(text)", line: line)
            }
            return .float(value)
        }
        // Decimal integers: no leading zeros except for zero itself (`0_0`).
        if source[start] == "0" {
            end = start + 1
            while true {
                if end < source.count, source[end] == "0" {
                    end += 1
                } else if end + 1 < source.count, source[end] == "_", source[end + 1] == "0" {
                    end += 2
                } else {
                    break
                }
            }
        }
        position = end
        return .integer(try integer(source[start..<end], radix: 10))
    }

    private func integer(_ digits: ArraySlice<Unicode.Scalar>, radix: Int) throws -> Int {
        let text = PythonString.string(digits).replacingOccurrences(of: "_", with: "")
        guard let value = Int(text, radix: radix) else {
            throw TemplateError.syntax("integer literal \(text) is too large", line: line)
        }
        return value
    }

    /// A quoted string with Python's escapes (`\n`, `\t`, `\xhh`, `\uXXXX`, ...); unknown escapes stay as written.
    private mutating func lexString() throws -> String {
        let quote = source[position]
        let startLine = line
        var index = position + 1
        var result = String.UnicodeScalarView()
        while index < source.count, source[index] != quote {
            let scalar = source[index]
            index += 1
            if scalar == "\n" { line += 1 }
            guard scalar == "\\", index < source.count else {
                result.append(scalar)
                continue
            }
            let escaped = source[index]
            index += 1
            switch escaped {
            case "\n": line += 1  // line continuation
            case "\\", "'", "\"": result.append(escaped)
            case "a": result.append("\u{07}")
            case "b": result.append("\u{08}")
            case "f": result.append("\u{0C}")
            case "n": result.append("\n")
            case "r": result.append("\r")
            case "t": result.append("\t")
            case "v": result.append("\u{0B}")
            case "0"..."7":
                var value = escaped.value - 48
                var count = 1
                while count < 3, index < source.count, ("0"..."7").contains(source[index]) {
                    value = value * 8 + source[index].value - 48
                    index += 1
                    count += 1
                }
                result.append(Unicode.Scalar(value)!)
            case "x", "u", "U":
                let width = escaped == "x" ? 2 : escaped == "u" ? 4 : 8
                guard index + width <= source.count,
                    let value = UInt32(PythonString.string(source[index..<index + width]), radix: 16),
                    source[index..<index + width].allSatisfy(\.properties.isASCIIHexDigit),
                    let decoded = Unicode.Scalar(value)
                else {
                    throw TemplateError.syntax("invalid \\\(escaped) escape in a string literal", line: line)
                }
                result.append(decoded)
                index += width
            default:
                result.append("\\")
                result.append(escaped)
            }
        }
        guard index < source.count else {
            throw TemplateError.syntax("unterminated string literal", line: startLine)
        }
        position = index + 1
        return String(result)
    }
}
