import Foundation
import LongCatTokenizer

/// The four kinds of input file, in the order case indices cycle through them.
enum CaseKind: String, CaseIterable {
    case config, safetensors, tokenizer, template

    static func of(index: Int) -> CaseKind { allCases[index % allCases.count] }
}

/// One generated case: what was done to the input (for the report) and how to run the program on it.
struct FuzzCase {
    let index: Int
    let kind: CaseKind
    var mutations: [String] = []
    /// Runs the case in `directory` (an empty scratch folder); returns a note on success (e.g. "loaded, 2 steps").
    var execute: (URL) throws -> String = { _ in "" }

    var description: String { mutations.isEmpty ? "unmutated" : mutations.joined(separator: "; ") }
}

/// The real input files the cases start from (Tests/Fixtures), read once per process.
final class Corpus {
    let root: URL
    let configTree: FJ
    let safetensors: SafeTensorsImage
    let tokenizerTree: FJ
    let tokenizerConfigTree: FJ
    let templates: [String]
    let conversations: [(messages: [JSONValue], tools: [JSONValue]?)]

    init(fixtures root: URL) throws {
        self.root = root
        func data(_ path: String) throws -> Data {
            do {
                return try Data(contentsOf: root.appendingPathComponent(path))
            } catch {
                throw FuzzError("cannot read fixture \(root.appendingPathComponent(path).path): \(error.localizedDescription)")
            }
        }
        configTree = try FJ.parse(data("tiny-fp32/config.json"))
        safetensors = try SafeTensorsImage(data("tiny-fp32/model.safetensors"))
        tokenizerTree = try FJ.parse(data("tokenizer-bpe-qwenstyle/tokenizer.json"))
        tokenizerConfigTree = try FJ.parse(data("tokenizer-bpe-qwenstyle/tokenizer_config.json"))
        let expected = try JSONValue.parse(data("chat-templates/expected.json"))
        var templates: [String] = []
        if case .object(let named)? = expected["templates"] {
            templates = named.values.compactMap(\.stringValue)
        }
        if case .string(let template)? = tokenizerConfigTree["chat_template"] { templates.append(template) }
        self.templates = templates
        var conversations: [(messages: [JSONValue], tools: [JSONValue]?)] = []
        if case .array(let cases)? = expected["cases"] {
            for c in cases {
                guard case .array(let messages)? = c["messages"] else { continue }
                var tools: [JSONValue]?
                if case .array(let given)? = c["tools"] { tools = given }
                conversations.append((messages, tools))
            }
        }
        self.conversations = conversations
        guard !templates.isEmpty, !conversations.isEmpty else { throw FuzzError("chat-templates/expected.json has no templates or cases") }
    }

    /// The case at `index` of the run seeded with `seed`; generating it runs nothing.
    func makeCase(seed: UInt64, index: Int) -> FuzzCase {
        var rng = FuzzRandom(seed: seed, index: index)
        var c = FuzzCase(index: index, kind: CaseKind.of(index: index))
        switch c.kind {
        case .config: ConfigCases.make(&c, self, &rng)
        case .safetensors: SafeTensorsCases.make(&c, self, &rng)
        case .tokenizer: TokenizerCases.make(&c, self, &rng)
        case .template: TemplateCases.make(&c, self, &rng)
        }
        return c
    }
}

struct FuzzError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Data {
    func write(to directory: URL, _ name: String) throws {
        try write(to: directory.appendingPathComponent(name))
    }
}
