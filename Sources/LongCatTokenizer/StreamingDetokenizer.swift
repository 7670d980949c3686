/// Turns a stream of token ids into text deltas that are always complete UTF-8: a character whose bytes
/// arrive over several byte-level tokens is emitted once, whole, when its last byte arrives.
///
/// It decodes a short window of recent tokens (from `prefixOffset`) and compares with what the same window
/// decoded to before the newest tokens (up to `readOffset`), the way vLLM and transformers' streamers do;
/// decoders that act on the start of text (Metaspace's leading space) therefore behave as in a full decode.
public struct StreamingDetokenizer {
    public let tokenizer: Tokenizer
    public let skipSpecialTokens: Bool
    private var ids: [Int] = []
    private var prefixOffset = 0
    private var readOffset = 0
    /// Everything emitted so far.
    public private(set) var text = ""

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one token; returns the new complete text (possibly empty while a character is incomplete).
    public mutating func append(_ id: Int) -> String {
        ids.append(id)
        let before = tokenizer.decode(Array(ids[prefixOffset..<readOffset]), skipSpecialTokens: skipSpecialTokens)
        let now = tokenizer.decode(Array(ids[prefixOffset...]), skipSpecialTokens: skipSpecialTokens)
        // A trailing U+FFFD means the last character's bytes are still arriving.
        guard now.unicodeScalars.last != "\u{FFFD}" else { return "" }
        let delta = Self.suffix(of: now, after: before)
        prefixOffset = readOffset
        readOffset = ids.count
        text += delta
        return delta
    }

    /// The end of the text (call it where a generation ends): whatever is still held back, less an incomplete
    /// character at the very end, which is dropped rather than shown as U+FFFD (a generation cut by its token
    /// limit inside a character did not produce that character). Invalid bytes before it decode as U+FFFD, as in a
    /// full decode. `text` then equals `tokenizer.decode(ids, dropIncompleteTail: true)`.
    public mutating func flush() -> String {
        guard readOffset < ids.count else { return "" }
        let before = tokenizer.decode(Array(ids[prefixOffset..<readOffset]), skipSpecialTokens: skipSpecialTokens)
        let now = tokenizer.decode(Array(ids[prefixOffset...]), skipSpecialTokens: skipSpecialTokens, dropIncompleteTail: true)
        let delta = Self.suffix(of: now, after: before)
        prefixOffset = ids.count
        readOffset = ids.count
        text += delta
        return delta
    }

    /// `now` minus its leading `before` part, counted in Unicode scalars (grapheme boundaries may shift
    /// as combining scalars arrive; scalars do not).
    static func suffix(of now: String, after before: String) -> String {
        String(String.UnicodeScalarView(now.unicodeScalars.dropFirst(before.unicodeScalars.count)))
    }
}
