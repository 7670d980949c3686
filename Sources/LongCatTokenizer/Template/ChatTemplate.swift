/// A Jinja chat template (the `chat_template` of a `tokenizer_config.json`), rendered the way transformers'
/// `apply_chat_template` renders it: jinja2 with `trim_blocks` and `lstrip_blocks`, the loop-controls extension,
/// a `tojson` that keeps key order and non-ASCII text, and the globals `raise_exception` and `strftime_now`.
///
/// It implements the subset of Jinja that real chat templates use; unsupported tags (`include`, `extends`,
/// `filter` blocks, recursive loops) are reported when the template is compiled.
public struct ChatTemplate: Sendable {
    public let source: String
    private let nodes: [Node]

    /// Compiles the template; throws a `TemplateError` of kind `.syntax` naming the line and the construct.
    public init(_ source: String) throws {
        self.source = source
        nodes = try Parser.parse(source)
    }

    /// Renders a conversation the way `apply_chat_template` does: each message loses its null-valued keys
    /// (OpenAI clients send `"content": null` beside `tool_calls`), and a message with reasoning under
    /// `reasoning_content`, `thinking` or `reasoning` gets it under `thinking` and `reasoning_content` too.
    /// The template sees `messages`, `tools` (none when nil), `documents` (none unless given in `extra`) and
    /// `add_generation_prompt`; `extra` supplies the rest, e.g. `bos_token`, `eos_token` or switches such as
    /// `enable_thinking`.
    public func render(
        messages: [JSONValue], tools: [JSONValue]? = nil, addGenerationPrompt: Bool, extra: [String: JSONValue] = [:]
    ) throws -> String {
        var context = extra
        context["messages"] = .array(try messages.map(ChatTemplate.prepared))
        context["tools"] = tools.map(JSONValue.array) ?? extra["tools"] ?? .null
        context["documents"] = extra["documents"] ?? .null
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        return try render(context: context)
    }

    /// Renders with exactly these variables.
    public func render(context: [String: JSONValue]) throws -> String {
        let builtins = Scope(parent: nil, variables: Globals.functions())
        let root = Scope(parent: builtins, variables: context.mapValues(Value.init))
        return try Interpreter(root: root).render(nodes)
    }

    private static let reasoningKeys = ["reasoning_content", "thinking", "reasoning"]

    /// transformers' `_normalize_chat_messages` and `_alias_reasoning_fields`, with their key order.
    private static func prepared(_ message: JSONValue) throws -> JSONValue {
        guard case .object(let object) = message else {
            throw TemplateError.runtime("chat messages must be JSON objects, got \(message.dumps())")
        }
        let present = JSONObject(object.filter { $0.value != .null }.map { ($0.key, $0.value) })
        guard let reasoning = reasoningKeys.lazy.compactMap({ present[$0] }).first else { return .object(present) }
        var aliased: JSONObject = ["thinking": reasoning]
        for (key, value) in present { aliased[key] = value }
        aliased["reasoning_content"] = reasoning
        return .object(aliased)
    }
}
