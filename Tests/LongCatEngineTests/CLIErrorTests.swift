import Foundation
import LongCatTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Every command follows one exit-code convention (0 success, 64 usage, 65 bad input data, 1 anything else) and
/// says what was wrong and what to do. Each case here is a failure a user met once.
extension CLITests {
    /// A config.json beside nothing else: the tiny fixture's with `changes`.
    func configFile(_ changes: [String: Any]) throws -> String {
        var config = try Fixtures.json("tiny-fp32/config.json")
        for (key, value) in changes { config[key] = value }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-config-\(UUID()).json").path
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
        return path
    }

    func assertExit(_ args: [String], _ code: Int32, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try longcat(args, watchdog: 120)
        XCTAssertEqual(r.status, code, "\(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(r.stderr.contains(fragment), "\(args.joined(separator: " ")): expected '\(fragment)' in: \(r.stderr)", file: file, line: line)
        }
    }

    func testUsageErrorsExit64WithWhatWasWrong() throws {
        let model = try tinyFP32
        try assertExit(["generate", "--model", model, "--prompt-ids", "1", "--temperature", "-1"], 64, ["temperature must be a number in [0"])
        try assertExit(["generate", "--model", model, "--prompt-ids", "1", "--bogus"], 64, ["--bogus"])
        try assertExit(["generate", "--model", model, "--prompt-ids", "1,999"], 64, ["token id 999 is outside the vocabulary"])
        try assertExit(["serve", "--model", "/nonexistent/model"], 64, ["/nonexistent/model: no such directory"])
        try assertExit(["quantize", "--model", "/nonexistent/model", "--out", "/tmp/never", "--format", "q8"], 64, ["no such directory"])
        try assertExit(["inspect", "--model", "/nonexistent/config.json"], 64, ["no such file"])
    }

    func testBadInputDataExits65NamingTheProblem() throws {
        let huge = try configFile(["num_layers": 1_000_000_000, "hidden_size": 1_000_000_000])
        let vocab = try configFile(["vocab_size": 1 << 62])
        let llama = try configFile(["architectures": ["LlamaForCausalLM"]])
        let fraction = try configFile(["num_layers": 2.5])
        defer { for path in [huge, vocab, llama, fraction] { try? FileManager.default.removeItem(atPath: path) } }
        try assertExit(["inspect", "--model", huge], 65, ["too large", "num_layers"])
        try assertExit(["inspect", "--model", vocab], 65, ["too large", "vocab_size"])
        try assertExit(["inspect", "--model", llama], 65, ["LlamaForCausalLM", "LongcatFlashForCausalLM"])
        try assertExit(["inspect", "--model", fraction], 65, ["num_layers", "integer"])

        // Valid tiny weights under a config implying a million layers: named at once, not after a long hang.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-cli-layers-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.path("tiny-fp32/model.safetensors"), toPath: dir + "/model.safetensors")
        try FileManager.default.copyItem(atPath: configFile(["num_layers": 1_000_000]), toPath: dir + "/config.json")
        try assertExit(["logits", "--model", dir, "--prompt-ids", "1,2"], 65, ["model.layers.2.self_attn.0.q_a_proj.weight"])
        try FileManager.default.removeItem(atPath: dir + "/config.json")
        try assertExit(["generate", "--model", dir, "--prompt-ids", "1"], 65, ["no config.json"])
    }

    /// inspect counts a million layers by arithmetic.
    func testInspectOfAMillionLayersIsArithmetic() throws {
        let path = try configFile(["num_layers": 1_000_000])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try longcat(["inspect", "--model", path, "--json"], watchdog: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try jsonObject(r.stdout)
        XCTAssertEqual(json["layers"] as? Int, 1_000_000)
        XCTAssertGreaterThan(json["total_parameters"] as? Int ?? 0, 100_000_000_000)
    }

    /// A tokenizer from another model (vocabularies 32000 vs 4006, or 4000 vs 4006) is refused before generating.
    func testATokenizerThatDoesNotBelongToTheModelIsRefused() throws {
        for vocabulary in [32000, 4000] {
            let dir = try tinyTextModel(vocabSize: vocabulary)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try assertExit(["generate", "--model", dir, "--prompt", "hello"], 65, ["tokenizer.json does not belong to this model", "\(vocabulary)"])
            try assertExit(["serve", "--model", dir, "--port", "0"], 65, ["does not belong"])
        }
        let noTokenizer = try tinyTextModel(withTokenizer: false)
        defer { try? FileManager.default.removeItem(atPath: noTokenizer) }
        try assertExit(["serve", "--model", noTokenizer], 65, ["no tokenizer.json", "serve needs"])
    }

    /// A busy port is named with the way out, before the model is loaded.
    func testABusyPortSaysWhichAndHowToChooseAnother() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        XCTAssertTrue(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let dir = try tinyTextModel()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try longcat(["serve", "--model", dir, "--port", "\(port)"], watchdog: 60)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("port \(port) on 127.0.0.1 is already in use"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--port"), r.stderr)
        XCTAssertFalse(r.stderr.contains("loaded"), "nothing is loaded before the port is bound: \(r.stderr)")
    }

    /// A context of 2^40 positions would need a KV cache far beyond memory: the default is clamped, saying so, and the
    /// model still runs.
    func testAHugeContextIsClampedNotFatal() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-cli-context-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try configFile(["max_position_embeddings": 1 << 40])
        defer { try? FileManager.default.removeItem(atPath: config) }
        XCTAssertEqual(try longcat(["init", "--config", config, "--out", dir, "--dtype", "f32"]).status, 0)
        let r = try longcat(["generate", "--model", dir, "--prompt-ids", "1,2,3", "--max-tokens", "4", "--ignore-eos", "--json"], watchdog: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("context clamped to"), r.stderr)
        XCTAssertEqual((try jsonObject(r.stdout)["tokens"] as? [Int])?.count, 4)
    }

    func testVersion() throws {
        let r = try longcat(["--version"])
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.stdout.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil, r.stdout)
    }
}
