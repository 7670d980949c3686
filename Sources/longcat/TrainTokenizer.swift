import ArgumentParser
import Foundation
import LongCatTokenizer
import LongCatTrain

struct TrainTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-tokenizer",
        abstract: "Train a byte-level BPE on text files and write it as a Hugging Face tokenizer directory.",
        discussion: """
            Writes tokenizer.json (NFC, the Qwen-style regex split, byte-level BPE; <unk> <s> </s> <pad> first, LongCat's \
            tool and reasoning tags as added special tokens last) and tokenizer_config.json with a LongCat-style chat \
            template that renders tools, tool calls and tool results. `longcat init --tokenizer DIR` copies them into a model.
            """)

    @Option(name: .long, parsing: .upToNextOption, help: "Training text: plain text, fortune files or JSONL chats (message contents).")
    var data: [String] = []
    @Option(name: .long, help: "auto (by content), text, fortune or chat.")
    var dataFormat: DataFormat = .auto
    @Option(name: .long, help: "Total ids: special tokens, 256 bytes, merges and the added tags.")
    var vocabSize: Int
    @Option(name: .long, help: "Output directory.")
    var out: String

    func validate() throws {
        if data.isEmpty { throw ValidationError("give the training text with --data") }
    }

    func run() throws {
        let start = Date()
        let texts = try TrainingData.texts(files: data, format: dataFormat)
        let result = try BPETrainer(vocabSize: vocabSize).train(texts: texts)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try result.json.write(to: URL(fileURLWithPath: out + "/tokenizer.json"))
        let config: [String: Any] = [
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "add_bos_token": false,
            "add_eos_token": false, "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 131072,
            "chat_template": LongCatChatTemplate.text,
        ]
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: out + "/tokenizer_config.json"))
        Console.progress(String(format: "wrote %@: %d ids (%d merges) from %d texts, %d pieces (%d distinct) in %.1f s", out,
                                result.vocabSize, result.merges, texts.count, result.pieces, result.distinctPieces, Date().timeIntervalSince(start)))
    }
}
