import Foundation
import LongCatTokenizer
import LongCatTestSupport
import XCTest

/// Runs the built `longcat` executable (it sits next to the test bundle in the build directory).
final class CLITests: XCTestCase {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the binary; a generous watchdog ends a run that hangs (the test then fails on its status, not on time).
    func longcat(_ arguments: [String], environment: [String: String] = [:], input: String? = nil, watchdog: Double = 300) throws -> Output {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if dir.pathExtension == "xctest" || dir.lastPathComponent == "MacOS" {  // macOS bundle layout
            while dir.pathExtension != "xctest" { dir.deleteLastPathComponent() }
            dir.deleteLastPathComponent()
        }
        let binary = dir.appendingPathComponent("longcat")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            // `swift build --build-tests` (or `swift test`) builds it beside the tests: its absence is a failure.
            XCTFail("longcat executable not built at \(binary.path)")
            throw CocoaError(.fileNoSuchFile)
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe(), stdin = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin
        try process.run()
        DispatchQueue.global().asyncAfter(deadline: .now() + watchdog) { [weak process] in
            if process?.isRunning == true { process?.terminate() }
        }
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        let stderrData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
                      stderr: String(decoding: stderrData, as: UTF8.self))
    }

    func jsonObject(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    var tinyFP32: String { get throws { try Fixtures.path("tiny-fp32") } }

    func testGenerateJSONIsMachineCleanAndMatchesReference() throws {
        let r = try longcat(["generate", "--model", tinyFP32, "--prompt-ids", "183,244,31,29,307,197,281,13,71,237,7",
                             "--max-tokens", "16", "--temperature", "0", "--ignore-eos", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try jsonObject(r.stdout)
        XCTAssertEqual(json["tokens"] as? [Int], [45, 194, 194, 306, 277, 19, 286, 277, 277, 277, 173, 2, 255, 286, 205, 150])
        XCTAssertEqual(json["prompt_tokens"] as? Int, 11)
        XCTAssertNotNil(json["prefill_tokens_per_second"] as? Double)
        XCTAssertNotNil(json["decode_tokens_per_second"] as? Double)
    }

    func testLogitsJSONMatchesReference() throws {
        let data = try Fixtures.data("tiny-fp32/expected.json")
        let expected = (try JSONSerialization.jsonObject(with: data) as! [String: Any])["cases"] as! [[String: Any]]
        let ids = (expected[1]["input_ids"] as! [Int]).map(String.init).joined(separator: ",")
        let r = try longcat(["logits", "--model", tinyFP32, "--prompt-ids", ids, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let ours = try XCTUnwrap(try jsonObject(r.stdout)["logits"] as? [[Double]])
        let reference = expected[1]["logits"] as! [[Double]]
        XCTAssertEqual(ours.count, reference.count)
        let maxRef = reference.flatMap { $0 }.map(abs).max()!
        let maxErr = zip(ours.flatMap { $0 }, reference.flatMap { $0 }).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(maxErr, 1e-3 * maxRef)
    }

    /// `logits --mtp --json`: the MTP head's rows for every case of tiny-mtp, the last one drafted after the main
    /// model's greedy token, as the fixture computes them; a model without a head is refused with a clear error.
    func testLogitsMTPJSONMatchesReference() throws {
        let expected = try XCTUnwrap(try Fixtures.json("tiny-mtp/expected.json")["cases"] as? [[String: Any]])
        for c in expected {
            let ids = (c["input_ids"] as! [Int]).map(String.init).joined(separator: ",")
            let r = try longcat(["logits", "--model", try Fixtures.path("tiny-mtp"), "--prompt-ids", ids, "--mtp", "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let json = try jsonObject(r.stdout)
            for key in ["logits", "mtp_logits"] {
                let ours = try XCTUnwrap(json[key] as? [[Double]]).flatMap { $0 }, reference = (c[key] as! [[Double]]).flatMap { $0 }
                XCTAssertEqual(ours.count, reference.count, key)
                let maxErr = zip(ours, reference).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(maxErr, 1e-3 * reference.map(abs).max()!, key)
            }
        }
        let r = try longcat(["logits", "--model", tinyFP32, "--prompt-ids", "1,2", "--mtp"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("no multi-token-prediction head"), r.stderr)
    }

    func testInspectOfficialConfig() throws {
        let path = try Fixtures.path("official-configs/longcat-flash-chat.config.json")
        let r = try longcat(["inspect", "--model", path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try jsonObject(r.stdout)
        XCTAssertEqual(Double(json["total_parameters"] as! Int) / 1e9, 560.7, accuracy: 0.05)
        XCTAssertEqual(Double(json["active_parameters_min"] as! Int) / 1e9, 18.7, accuracy: 0.05)
        XCTAssertEqual(Double(json["active_parameters_max"] as! Int) / 1e9, 31.4, accuracy: 0.05)
        XCTAssertEqual(json["layers"] as? Int, 28)
        let text = try longcat(["inspect", "--model", path])
        XCTAssertTrue(text.stdout.contains("560.66B total"), text.stdout)
        XCTAssertTrue(text.stdout.contains("18.69B"), text.stdout)
    }

    func testInitThenGenerate() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-cli-init-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try Fixtures.path("tiny-yarn/config.json")
        let made = try longcat(["init", "--config", config, "--out", dir, "--dtype", "f32", "--seed", "3"])
        XCTAssertEqual(made.status, 0, made.stderr)
        let r = try longcat(["generate", "--model", dir, "--prompt-ids", "1,2,3", "--max-tokens", "4", "--ignore-eos", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual((try jsonObject(r.stdout)["tokens"] as? [Int])?.count, 4)
    }

    /// q8 at load time and from a `longcat quantize` checkpoint give the same tokens; bad formats are rejected.
    func testQuantizeAtLoadAndIntoACheckpoint() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-cli-quantize-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try longcat(["quantize", "--model", tinyFP32, "--out", dir, "--format", "q8"])
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertTrue(made.stderr.contains("kv_b_proj"), made.stderr)  // 16 columns: kept as stored, and said so
        let prompt = ["--prompt-ids", "183,244,31,29,307,197,281,13,71,237,7", "--max-tokens", "8", "--temperature", "0", "--ignore-eos", "--json"]
        let atLoad = try longcat(["generate", "--model", tinyFP32, "--quantize", "q8"] + prompt)
        let stored = try longcat(["generate", "--model", dir] + prompt)
        XCTAssertEqual(atLoad.status, 0, atLoad.stderr)
        XCTAssertEqual(stored.status, 0, stored.stderr)
        XCTAssertEqual(try jsonObject(atLoad.stdout)["tokens"] as? [Int], [45, 194, 194, 306, 277, 19, 286, 277])
        XCTAssertEqual(try jsonObject(stored.stdout)["tokens"] as? [Int], [45, 194, 194, 306, 277, 19, 286, 277])
        for bad in try [["generate", "--model", tinyFP32, "--quantize", "q3"] + prompt, ["quantize", "--model", tinyFP32, "--out", dir + "-2", "--format", "int4"]] {
            let r = try longcat(bad)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains("q8") && r.stderr.contains("q4"), r.stderr)
        }
    }

    var tokenizerDir: String { get throws { try Fixtures.path("tokenizer-bpe-qwenstyle") } }

    func testTokenizeEncodesAndDecodes() throws {
        let r = try longcat(["tokenize", "--tokenizer", tokenizerDir, "--text", "你好，世界！", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let ids = try XCTUnwrap(try jsonObject(r.stdout)["ids"] as? [Int])
        let data = try Fixtures.data("tokenizer-bpe-qwenstyle/expected.json")
        let cases = (try JSONSerialization.jsonObject(with: data) as! [String: Any])["cases"] as! [[String: Any]]
        XCTAssertEqual(ids, cases.first { $0["text"] as? String == "你好，世界！" }?["ids"] as? [Int])
        let back = try longcat(["tokenize", "--tokenizer", tokenizerDir, "--decode", ids.map(String.init).joined(separator: ",")])
        XCTAssertEqual(back.stdout, "你好，世界！\n")
        let missing = try longcat(["tokenize", "--tokenizer", "/nonexistent", "--text", "x"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("/nonexistent"), missing.stderr)
    }

    func testGenerateFromTextWhenTheModelHasATokenizer() throws {
        let dir = try tinyTextModel(withTokenizer: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let noTokenizer = try longcat(["generate", "--model", dir, "--prompt", "hello", "--max-tokens", "2"])
        XCTAssertNotEqual(noTokenizer.status, 0)
        XCTAssertTrue(noTokenizer.stderr.contains("tokenizer"), noTokenizer.stderr)
        try copyTokenizer(to: dir)
        let r = try longcat(["generate", "--model", dir, "--prompt", "Hello, world!", "--max-tokens", "5", "--ignore-eos", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try jsonObject(r.stdout)
        XCTAssertEqual(json["prompt_tokens"] as? Int, 6)
        XCTAssertEqual((json["tokens"] as? [Int])?.count, 5)
        XCTAssertNotNil(json["text"] as? String)
        let streamed = try longcat(["generate", "--model", dir, "--prompt", "Hello, world!", "--max-tokens", "5", "--ignore-eos"])
        XCTAssertEqual(streamed.status, 0, streamed.stderr)
        XCTAssertEqual(streamed.stdout.trimmingCharacters(in: .newlines), json["text"] as? String)
    }

    /// A tiny random model whose vocabulary matches the fixture tokenizer's 4006 ids, with that tokenizer
    /// beside it unless asked otherwise.
    func tinyTextModel(withTokenizer: Bool = true, vocabSize: Int = 4006) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-cli-text-\(UUID())").path
        var config = try JSONSerialization.jsonObject(with: Fixtures.data("tiny-fp32/config.json")) as! [String: Any]
        config["vocab_size"] = vocabSize
        let configPath = dir + ".config.json"
        defer { try? FileManager.default.removeItem(atPath: configPath) }
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        XCTAssertEqual(try longcat(["init", "--config", configPath, "--out", dir, "--dtype", "f32"]).status, 0)
        if withTokenizer { try copyTokenizer(to: dir) }
        return dir
    }

    func copyTokenizer(to dir: String) throws {
        for file in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: tokenizerDir + "/" + file, toPath: dir + "/" + file)
        }
    }

    func testChatTemplateCommandRendersLikeTransformers() throws {
        // Parsed with the order-keeping JSONValue: tool schemas must reach the template in file order.
        let fixture = try JSONValue.parse(Fixtures.data("chat-templates/expected.json"))
        guard case .array(let cases)? = fixture["cases"] else { return XCTFail("no cases") }
        var checked = 0
        for c in cases where c["template"] == .string("longcat_style") {  // the fixture tokenizer's chat_template
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-conv-\(UUID()).json")
            defer { try? FileManager.default.removeItem(at: file) }
            var conversation: JSONObject = ["messages": c["messages"]!]
            if let tools = c["tools"], tools != .null { conversation["tools"] = tools }
            try Data(JSONValue.object(conversation).dumps().utf8).write(to: file)
            var args = try ["chat-template", "--tokenizer", tokenizerDir, "--messages", file.path]
            if c["add_generation_prompt"] == .bool(true) { args.append("--add-generation-prompt") }
            let r = try longcat(args)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(.string(r.stdout), c["rendered"], "case \(checked)")
            checked += 1
        }
        XCTAssertEqual(checked, 6)
        let bad = try longcat(["chat-template", "--tokenizer", tokenizerDir, "--messages", "/nonexistent.json"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("cannot read"), bad.stderr)
    }

    func testInteractiveChatFollowsCommands() throws {
        let dir = try tinyTextModel()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = "Hello there\n/system Be brief.\n你好\n/bogus\n/reset\n/quit\nnever read\n"
        let r = try longcat(["chat", "--model", dir, "--max-tokens", "4"], input: script)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("(system prompt set, conversation cleared)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("unknown command /bogus"), r.stdout)
        XCTAssertTrue(r.stdout.contains("(conversation cleared)"), r.stdout)
        // Two replies, each with a figures line on stderr; the second prompt holds only the new turn.
        let figures = r.stderr.components(separatedBy: "\n").filter { $0.contains("prompt tokens") }
        XCTAssertEqual(figures.count, 2, r.stderr)
        let noTemplate = try longcat(["chat", "--model", tinyFP32], input: "/quit\n")
        XCTAssertNotEqual(noTemplate.status, 0)
        XCTAssertTrue(noTemplate.stderr.contains("tokenizer"), noTemplate.stderr)
    }

    func testLongcatAloneAnswersTheBuiltInPromptWithTheShippedModel() throws {
        let r = try longcat([], input: "")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("> What does hacker mean?\n"), r.stdout)
        XCTAssertGreaterThan(r.stdout.split(separator: " ").count, 8, "an answer in words: \(r.stdout)")
        XCTAssertTrue(r.stderr.contains("FFN experts/token"), r.stderr)
        let missing = try longcat(["inspect"], environment: ["LONGCAT_MODEL": "/nonexistent/model"])
        XCTAssertEqual(missing.status, 64)
        XCTAssertTrue(missing.stderr.contains("LONGCAT_MODEL=/nonexistent/model"), missing.stderr)
    }

    func testBadInputsGiveClearErrorsNotCrashes() throws {
        let cases: [([String], String)] = try [
            (["generate", "--model", tinyFP32, "--prompt-ids", "1,x"], "'x' is not a token id"),
            (["generate", "--model", tinyFP32], "exactly one of --prompt or --prompt-ids"),
            (["generate", "--model", tinyFP32, "--prompt-ids", "1,999"], "token id 999 is outside the vocabulary"),
            (["generate", "--model", tinyFP32, "--prompt-ids", "1", "--top-p", "1.5"], "top_p"),
            (["generate", "--model", "/nonexistent/model", "--prompt-ids", "1"], "/nonexistent/model"),
            (["inspect", "--model", "/nonexistent/config.json"], "no such file"),
            (["init", "--config", Fixtures.path("tiny-fp32/config.json"), "--out", "/tmp/x", "--dtype", "int3"], "--dtype"),
        ]
        for (args, message) in cases {
            let r = try longcat(args)
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssertLessThan(r.status, 128, "must exit with an error, not a signal: \(args)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
    }
}
