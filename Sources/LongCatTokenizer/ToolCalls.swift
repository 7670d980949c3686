/// One function call the model asked for, in the shape of OpenAI's `tool_calls[i].function`.
public struct ToolCall: Equatable, Sendable {
    public var name: String
    /// The arguments as a JSON string (OpenAI's `function.arguments`), serialized like Python's
    /// `json.dumps(arguments, ensure_ascii=False)`; arguments the model already gave as a string pass through.
    public var argumentsJSON: String

    public init(name: String, argumentsJSON: String) {
        self.name = name
        self.argumentsJSON = argumentsJSON
    }
}

/// A LongCat completion split into its text and its tool calls.
///
/// LongCat writes each call as `<longcat_tool_call>{"name": ..., "arguments": {...}}</longcat_tool_call>`,
/// possibly several, possibly with text around them. A tag whose content is not a JSON object with a string
/// `name` (and object or string `arguments`), or that is never closed, is not a call: its text stays in `content`.
///
/// The whole reply is parsed by `ToolCallStream`, the parser a streamed reply goes through, so a streamed reply's
/// content deltas add up to exactly this `content` (see `ToolCallStream` for the whitespace rule).
public struct ParsedToolCalls: Equatable, Sendable {
    /// The text outside the calls, less the whitespace that only separated it from them (`ToolCallStream`); the
    /// whole text, untouched, when there are no calls.
    public var content: String
    public var calls: [ToolCall]

    public static let openTag = "<longcat_tool_call>"
    public static let closeTag = "</longcat_tool_call>"

    public init(content: String, calls: [ToolCall]) {
        self.content = content
        self.calls = calls
    }

    /// Never fails: malformed calls are kept as text.
    public init(parsing output: String) {
        var stream = ToolCallStream()
        var content = ""
        var calls: [ToolCall] = []
        for event in stream.push(output) + stream.finish() {
            switch event {
            case .content(let text): content += text
            case .call(let call): calls.append(call)
            }
        }
        self.init(content: content, calls: calls)
    }

    /// The call a tag's body describes, or nil when it is not one.
    static func call(from body: String) -> ToolCall? {
        guard case .object(let object)? = try? JSONValue.parse(body),
            case .string(let name)? = object["name"], !name.isEmpty
        else { return nil }
        switch object["arguments"] {
        case nil, .null?: return ToolCall(name: name, argumentsJSON: "{}")
        case .string(let serialized)?: return ToolCall(name: name, argumentsJSON: serialized)
        case .object(let arguments)?: return ToolCall(name: name, argumentsJSON: JSONValue.object(arguments).dumps())
        default: return nil
        }
    }
}

/// Splits completion text, fed in pieces as it is generated, into content and whole LongCat tool calls
/// (`delta.content` and `delta.tool_calls` of a streamed chat completion); `ParsedToolCalls` runs a whole reply
/// through it, so both paths follow one rule.
///
/// Text that might be the start of an opening tag is held back until it is clearly not one; a call is released
/// once its closing tag arrives. A tag whose content is not a valid call, or that is never closed, is released
/// as content. Works on Unicode scalars, so grapheme clustering never hides a tag.
///
/// Whitespace that only separates text from a call is not content: the whitespace directly before a call, at
/// the start of the content when a call came first, and at the end of a reply that made calls (so
/// `Let me check. <call>` has the content `Let me check.`). Whitespace at the start of a reply that begins with
/// text is kept, as in a reply without calls: a stream cannot take back what it sent before a call turned up.
/// To follow this rule as it streams, a run of whitespace is held back until the text after it shows whether a
/// call follows.
public struct ToolCallStream: Sendable {
    public enum Event: Equatable, Sendable {
        case content(String)
        case call(ToolCall)
    }

    private static let open = Array(ParsedToolCalls.openTag.unicodeScalars)
    private static let close = Array(ParsedToolCalls.closeTag.unicodeScalars)
    /// Text not yet released: a possible start of a tag, or a call whose closing tag has not arrived.
    private var pending: [Unicode.Scalar] = []
    private var insideCall = false
    /// Content whitespace held back until it is known whether a call follows it.
    private var heldWhitespace: [Unicode.Scalar] = []
    private var wroteContent = false
    public private(set) var callCount = 0

    public init() {}

    public mutating func push(_ text: String) -> [Event] {
        pending.append(contentsOf: text.unicodeScalars)
        var events: [Event] = []
        while true {
            if insideCall {
                guard let end = Self.find(Self.close, in: pending, from: Self.open.count) else { break }
                let segment = Array(pending[..<(end + Self.close.count)])
                let body = String(String.UnicodeScalarView(pending[Self.open.count..<end]))
                pending.removeFirst(end + Self.close.count)
                insideCall = false
                if let call = ParsedToolCalls.call(from: body) {
                    heldWhitespace = []  // it only separated the text before from this call
                    callCount += 1
                    events.append(.call(call))
                } else {
                    content(segment, into: &events)
                }
            } else if let start = Self.find(Self.open, in: pending, from: 0) {
                content(pending[..<start], into: &events)
                pending.removeFirst(start)
                insideCall = true
            } else {
                // Keep the longest tail that could still grow into the opening tag.
                let held = (1..<Self.open.count).reversed().first { n in
                    n <= pending.count && pending.suffix(n).elementsEqual(Self.open.prefix(n))
                } ?? 0
                let ready = pending.count - held
                content(pending[..<ready], into: &events)
                pending.removeFirst(ready)
                break
            }
        }
        return events
    }

    /// The end of the text: whatever is held back is content, except whitespace after the last text of a reply
    /// that made calls.
    public mutating func finish() -> [Event] {
        var events: [Event] = []
        content(pending, into: &events)
        pending = []
        insideCall = false
        if callCount == 0 && !heldWhitespace.isEmpty { events.append(.content(String(String.UnicodeScalarView(heldWhitespace)))) }
        heldWhitespace = []
        return events
    }

    /// Releases text that is content, holding back its trailing whitespace (a call may follow it).
    private mutating func content(_ scalars: some Collection<Unicode.Scalar>, into events: inout [Event]) {
        var text = heldWhitespace + scalars
        if !wroteContent && callCount > 0 {
            text = Array(text.drop { $0.isPythonWhitespace })  // content that starts after a call
        }
        let end = (text.lastIndex { !$0.isPythonWhitespace } ?? -1) + 1
        heldWhitespace = Array(text[end...])
        if end > 0 {
            events.append(.content(String(String.UnicodeScalarView(text[..<end]))))
            wroteContent = true
        }
    }

    private static func find(_ needle: [Unicode.Scalar], in haystack: [Unicode.Scalar], from: Int) -> Int? {
        guard haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
        for i in from...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        }
        return nil
    }
}
