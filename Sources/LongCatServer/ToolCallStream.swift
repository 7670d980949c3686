import LongCatTokenizer

/// Splits streamed completion text into plain content and whole LongCat tool calls
/// (`<longcat_tool_call>{"name": ..., "arguments": ...}</longcat_tool_call>`), for `delta.tool_calls`.
///
/// Text that might be the start of an opening tag is held back until it is clearly not one; a call is
/// released once its closing tag arrives, parsed by the same `ParsedToolCalls` as non-streamed replies. A
/// tag whose content is not a valid call, or that is never closed, is released as content, as the
/// non-streaming parser keeps it. Works on Unicode scalars, so grapheme clustering never hides a tag.
struct ToolCallStream {
    enum Event: Equatable {
        case content(String)
        case call(ToolCall)
    }

    private static let open = Array(ParsedToolCalls.openTag.unicodeScalars)
    private static let close = Array(ParsedToolCalls.closeTag.unicodeScalars)
    private var pending: [Unicode.Scalar] = []
    private var insideCall = false
    private(set) var callCount = 0

    mutating func push(_ text: String) -> [Event] {
        pending.append(contentsOf: text.unicodeScalars)
        var events: [Event] = []
        while true {
            if insideCall {
                guard let end = Self.find(Self.close, in: pending, from: Self.open.count) else { break }
                let segment = String(String.UnicodeScalarView(pending[..<(end + Self.close.count)]))
                pending.removeFirst(end + Self.close.count)
                insideCall = false
                let parsed = ParsedToolCalls(parsing: segment)
                if parsed.calls.count == 1 && parsed.content.isEmpty {
                    events.append(.call(parsed.calls[0]))
                    callCount += 1
                } else {
                    events.append(.content(segment))
                }
            } else if let start = Self.find(Self.open, in: pending, from: 0) {
                if start > 0 { events.append(.content(String(String.UnicodeScalarView(pending[..<start])))) }
                pending.removeFirst(start)
                insideCall = true
            } else {
                // Keep the longest tail that could still grow into the opening tag.
                let held = (1..<Self.open.count).reversed().first { n in
                    n <= pending.count && pending.suffix(n).elementsEqual(Self.open.prefix(n))
                } ?? 0
                let ready = pending.count - held
                if ready > 0 {
                    events.append(.content(String(String.UnicodeScalarView(pending[..<ready]))))
                    pending.removeFirst(ready)
                }
                break
            }
        }
        return events
    }

    /// The end of the text: whatever is held back is content.
    mutating func finish() -> [Event] {
        defer { pending = [] }
        return pending.isEmpty ? [] : [.content(String(String.UnicodeScalarView(pending)))]
    }

    private static func find(_ needle: [Unicode.Scalar], in haystack: [Unicode.Scalar], from: Int) -> Int? {
        guard haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
        for i in from...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        }
        return nil
    }
}
