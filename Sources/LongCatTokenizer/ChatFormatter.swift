import Foundation

/// Turns a conversation into prompt tokens with the tokenizer's chat template, as transformers'
/// `apply_chat_template(..., tokenize=True)` does (the rendered text is encoded without adding BOS/EOS:
/// templates write their own special tokens).
public struct ChatFormatter: Sendable {
    public enum Failure: Error, CustomStringConvertible {
        case noTemplate

        public var description: String { "the tokenizer has no chat_template (tokenizer_config.json); use a plain prompt" }
    }

    public let tokenizer: Tokenizer
    public let template: ChatTemplate

    public init(tokenizer: Tokenizer) throws {
        guard let source = tokenizer.chatTemplate else { throw Failure.noTemplate }
        self.tokenizer = tokenizer
        template = try ChatTemplate(source)
    }

    /// The rendered prompt text.
    public func render(messages: [JSONValue], tools: [JSONValue]? = nil, addGenerationPrompt: Bool = true) throws -> String {
        var extra: [String: JSONValue] = [:]
        if let bos = tokenizer.bosToken { extra["bos_token"] = .string(bos) }
        if let eos = tokenizer.eosToken { extra["eos_token"] = .string(eos) }
        return try template.render(messages: messages, tools: tools, addGenerationPrompt: addGenerationPrompt, extra: extra)
    }

    /// The prompt's token ids.
    public func tokens(messages: [JSONValue], tools: [JSONValue]? = nil, addGenerationPrompt: Bool = true) throws -> [Int] {
        tokenizer.encode(try render(messages: messages, tools: tools, addGenerationPrompt: addGenerationPrompt))
    }
}
