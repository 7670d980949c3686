import ArgumentParser
import Foundation
import LongCatEngine
import LongCatTokenizer

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode text to token ids, or decode ids to text, with a Hugging Face tokenizer.json.")

    @Option(name: .long, help: "Directory with tokenizer.json (and tokenizer_config.json), or a tokenizer.json path (default: the built-in model's).")
    var tokenizer: String?

    @Option(name: .long, help: "Text to encode.")
    var text: String?

    @Option(name: .long, help: "File whose contents to encode (UTF-8); the encode speed goes to stderr.")
    var file: String?

    @Option(name: .long, help: "Comma-separated token ids to decode.")
    var decode: String?

    @Flag(name: .long, help: "Add BOS/EOS as the tokenizer's post-processor describes.")
    var addSpecialTokens = false

    @Flag(name: .long, help: "When decoding, drop special tokens.")
    var skipSpecialTokens = false

    @Flag(name: .long, help: "Print one JSON object on stdout.")
    var json = false

    func validate() throws {
        let given = [text != nil, file != nil, decode != nil].filter { $0 }.count
        guard given == 1 else { throw ValidationError("give exactly one of --text, --file or --decode") }
    }

    func run() throws {
        let tok = try LongCatTokenizer.Tokenizer(path: tokenizer ?? DefaultModel.directory())
        if let decode {
            let ids = try parseTokenIds(decode, option: "--decode")
            let text = tok.decode(ids, skipSpecialTokens: skipSpecialTokens)
            if json { try Console.printJSON(["text": text]) } else { print(text) }
            return
        }
        let input: String
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("--file: cannot read \(file)") }
            guard let s = String(data: data, encoding: .utf8) else { throw ValidationError("--file: \(file) is not valid UTF-8") }
            input = s
        } else {
            input = text!
        }
        let start = DispatchTime.now()
        let ids = tok.encode(input, addSpecialTokens: addSpecialTokens)
        let seconds = secondsSince(start)
        if file != nil {
            let megabytes = Double(input.utf8.count) / 1e6
            Console.progress(String(format: "encoded %.2f MB into %d tokens in %.2f s: %.2f MB/s", megabytes, ids.count, seconds, megabytes / seconds))
        }
        // Written by hand: JSONSerialization takes seconds on millions of ids.
        let list = ids.map(String.init).joined(separator: json ? ", " : ",")
        let out = json ? "{\"count\": \(ids.count), \"ids\": [\(list)]}\n" : list + "\n"
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
