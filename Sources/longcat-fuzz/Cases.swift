import Foundation
import LongCatModel
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
    /// Checkpoints the safetensors cases start from: F32, FP8 with block scales, and q8 blocks.
    let models: [ModelBase]
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
        let fp32 = ModelBase(name: "tiny-fp32", config: configTree, image: try SafeTensorsImage(data("tiny-fp32/model.safetensors")), vocab: 320)
        let fp8 = ModelBase(
            name: "small-fp8", config: try FJ.parse(data("small-fp8/config.json")),
            image: try SafeTensorsImage(data("small-fp8/model.safetensors")), vocab: 1000)
        models = [fp32, fp8, try Self.quantized(root.appendingPathComponent("tiny-fp32"), vocab: 320)]
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

/// A checkpoint a safetensors case starts from.
struct ModelBase {
    let name: String
    let config: FJ
    let image: SafeTensorsImage
    let vocab: Int
}

extension Corpus {
    /// tiny-fp32 as `longcat quantize --format q8` writes it (I8 quants and F16 scales read in place), made once per
    /// process in a temporary folder.
    static func quantized(_ source: URL, vocab: Int) throws -> ModelBase {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-fuzz-q8-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            try QuantizedCheckpoint.write(from: Checkpoint(directory: source.path), to: dir.path, format: .q8)
            return ModelBase(
                name: "tiny-fp32 quantized to q8", config: try FJ.parse(Data(contentsOf: dir.appendingPathComponent("config.json"))),
                image: try SafeTensorsImage(Data(contentsOf: dir.appendingPathComponent("model.safetensors"))), vocab: vocab)
        } catch {
            throw FuzzError("cannot quantize \(source.path) for the q8 cases: \(error)")
        }
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
