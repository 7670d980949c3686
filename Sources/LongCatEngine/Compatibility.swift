import LongCatModel
import LongCatTokenizer

/// A tokenizer and a model that do not belong together: ids one side has and the other lacks would be
/// generated as garbage or refused mid-stream, so they are refused up front.
public struct VocabularyMismatchError: Error, Equatable, CustomStringConvertible {
    public let tokenizerSize: Int
    public let modelSize: Int

    public var description: String {
        let problem = tokenizerSize > modelSize
            ? "the tokenizer has ids up to \(tokenizerSize - 1) but the model's vocab_size is \(modelSize)"
            : "the model's vocab_size is \(modelSize) but the tokenizer defines only \(tokenizerSize) ids (a padded vocabulary may exceed it by at most \(Self.allowedPadding(tokenizerSize)))"
        return "tokenizer.json does not belong to this model: \(problem); use the tokenizer files released with the checkpoint"
    }

    /// Releases pad the embedding table past the tokenizer (to a multiple of 64 or 128, or a few hundred reserved
    /// ids); a gap larger than this is another model's tokenizer.
    static func allowedPadding(_ tokenizerSize: Int) -> Int { max(1024, tokenizerSize / 8) }

    /// Throws when `tokenizer` cannot serve a model with `config`'s vocabulary.
    public static func check(_ tokenizer: Tokenizer, against config: ModelConfig) throws {
        let (t, m) = (tokenizer.vocabularySize, config.vocabSize)
        if t > m || m - t > allowedPadding(t) { throw VocabularyMismatchError(tokenizerSize: t, modelSize: m) }
    }
}
