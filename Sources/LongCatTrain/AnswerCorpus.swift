import Foundation

/// Texts the simulated assistant gives as answers to requests no tool fits, so the model learns to answer in a chat
/// (not only to continue text): sayings (English fortunes), Chinese poems and sayings, and Jargon File entries.
public struct AnswerCorpus: Sendable {
    public var sayings: [String] = []
    public var chinese: [String] = []
    public var entries: [(term: String, definition: String)] = []

    /// Records longer than this (UTF-8 bytes) are left out, so a dialogue stays within a training window.
    static let maxBytes = 700

    public init(sayings: [String] = [], chinese: [String] = [], entries: [(term: String, definition: String)] = []) {
        self.sayings = sayings
        self.chinese = chinese
        self.entries = entries
    }

    /// Reads fortune files (records with CJK text count as Chinese) and Jargon File text (entries `:term: pos.`).
    public init(files: [String]) throws {
        for path in files {
            let text = try TrainingData.readText(path)
            if TrainingData.detect(text) == .fortune {
                for record in TrainingData.fortunes(text) where record.utf8.count <= Self.maxBytes {
                    if record.unicodeScalars.contains(where: { (0x4E00...0x9FFF).contains($0.value) }) { chinese.append(record) } else { sayings.append(record) }
                }
            } else {
                entries += Self.jargonEntries(text).filter { $0.definition.utf8.count <= Self.maxBytes }
            }
        }
        guard !sayings.isEmpty || !chinese.isEmpty || !entries.isEmpty else {
            throw TrainingError.badData("no answers (fortune records or Jargon File entries) in \(files.joined(separator: ", "))")
        }
    }

    /// Entries of the Jargon File's text: a line `:term: pos.` and the paragraphs up to the next entry.
    static func jargonEntries(_ text: String) -> [(term: String, definition: String)] {
        var out: [(String, String)] = []
        var term: String?, paragraphs: [String] = [], paragraph: [String] = []
        func endParagraph() {
            if !paragraph.isEmpty { paragraphs.append(paragraph.joined(separator: " ")) }
            paragraph = []
        }
        func endEntry() {
            endParagraph()
            if let term, !paragraphs.isEmpty { out.append((term, paragraphs.joined(separator: "\n\n"))) }
            paragraphs = []
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix(":"), let end = trimmed.dropFirst().firstIndex(of: ":"), end > trimmed.index(after: trimmed.startIndex) {
                endEntry()
                term = String(trimmed[trimmed.index(after: trimmed.startIndex)..<end])
            } else if trimmed.isEmpty {
                endParagraph()
            } else if term != nil {
                paragraph.append(trimmed)
            }
        }
        endEntry()
        return out
    }

    /// A request and its answer.
    func turn(rng: inout SplitMix64) -> (String, String) {
        var kinds: [Int] = []
        if !sayings.isEmpty { kinds += [0, 0, 0] }
        if !chinese.isEmpty { kinds += [1] }
        if !entries.isEmpty { kinds += [2, 2] }
        switch rng.pick(kinds) {
        case 0:
            return (rng.pick(["Tell me a fortune.", "Give me a quote.", "Say something wise.", "Tell me a joke.",
                              "Tell me something funny.", "Share a saying with me.", "I could use some cheering up."]), rng.pick(sayings))
        case 1:
            return (rng.pick(["给我一首诗。", "讲一句名言。", "来一段中文。", "Tell me a Chinese poem.", "Say something in Chinese."]), rng.pick(chinese))
        default:
            let (term, definition) = rng.pick(entries)
            return (rng.pick(["What does \(term) mean?", "What is \(term)?", "Define \(term).", "Tell me about \(term) in hacker slang."]),
                    definition)
        }
    }
}
