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
public struct ParsedToolCalls: Equatable, Sendable {
    /// The text outside the tags, joined and with surrounding whitespace trimmed.
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
        var content = ""
        var calls: [ToolCall] = []
        var rest = output[...]
        while let open = rest.range(of: Self.openTag) {
            content += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: Self.closeTag) else {
                rest = rest[open.lowerBound...]
                break
            }
            if let call = Self.call(from: rest[open.upperBound..<close.lowerBound]) {
                calls.append(call)
            } else {
                content += rest[open.lowerBound..<close.upperBound]
            }
            rest = rest[close.upperBound...]
        }
        content += rest
        self.init(content: PythonString.strip(content, characters: nil), calls: calls)
    }

    private static func call(from body: Substring) -> ToolCall? {
        guard case .object(let object)? = try? JSONValue.parse(String(body)),
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
