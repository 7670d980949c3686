import Foundation
import Hummingbird
import LongCatEngine
import LongCatModel
@testable import LongCatServer
import LongCatTestSupport
import LongCatTokenizer
import Logging
import ServiceLifecycle
import XCTest


/// A random-weight tiny LongCat-Flash (the tiny-fp32 fixture's shape, with the fixture tokenizer's vocabulary and a
/// 4096-token context, long enough that a generation can be kept running while a test looks at it) beside the fixture
/// BPE tokenizer, whose chat template renders tools. Written once per run; a failure fails each test that needs it.
enum TestModel {
    private static let written = Result { () throws -> (directory: String, tokenizer: Tokenizer, model: LongCatModel) in
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-server-tests-\(getpid())").path
        var config = try XCTUnwrap(JSONSerialization.jsonObject(with: Fixtures.data("tiny-fp32/config.json")) as? [String: Any])
        config["vocab_size"] = 4006
        config["max_position_embeddings"] = 4096
        try RandomCheckpoint.write(configJSON: JSONSerialization.data(withJSONObject: config), to: dir, weightType: .f32, seed: 5)
        for file in ["tokenizer.json", "tokenizer_config.json"] {
            try? FileManager.default.removeItem(atPath: dir + "/" + file)
            try FileManager.default.copyItem(atPath: Fixtures.path("tokenizer-bpe-qwenstyle/\(file)"), toPath: dir + "/" + file)
        }
        atexit { try? FileManager.default.removeItem(atPath: FileManager.default.temporaryDirectory.appendingPathComponent("longcat-server-tests-\(getpid())").path) }
        return (dir, try Tokenizer(path: dir), try LongCatModel(directory: dir))
    }

    static func directory() throws -> String { try written.get().directory }
    static func tokenizer() throws -> Tokenizer { try written.get().tokenizer }

    /// A fresh engine on the shared weights, so each test sees its own counters.
    static func loaded(_ configure: (inout EngineOptions) -> Void = { _ in }) throws -> LoadedModel {
        let (_, tokenizer, model) = try written.get()
        var options = EngineOptions()
        options.maxCacheTokens = 16384
        configure(&options)
        return LoadedModel(engine: Engine(model: model, tokenizer: tokenizer, options: options), tokenizer: tokenizer)
    }
}

/// Server state for a test: the test model (unless `loaded` is false) and the given configuration, on a free port.
func testState(loaded: Bool = true, engine: (inout EngineOptions) -> Void = { _ in }, _ configure: (inout ServerConfiguration) -> Void = { _ in }) throws -> ServerState {
    var config = ServerConfiguration()
    config.servedModelName = "test-model"
    config.port = 0
    configure(&config)
    return ServerState(configuration: config, model: loaded ? try TestModel.loaded(engine) : nil)
}

/// Runs `test` against a live server on a free loopback port; the server shuts down gracefully when the test returns.
func withServer(_ state: ServerState, _ test: @escaping @Sendable (TestClient) async throws -> Void) async throws {
    let (ports, listening) = AsyncStream<Int>.makeStream()
    let app = LongCatHTTPServer.application(state: state, onListening: { port in
        listening.yield(port)
        listening.finish()
    })
    let server = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "test-server")))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            defer { listening.finish() }
            try await server.run()
        }
        var next = ports.makeAsyncIterator()
        guard let port = await next.next() else {
            try await group.waitForAll()  // the server ended before it listened: its error
            throw TestClient.Failure(description: "the server stopped before listening")
        }
        var failure: Error?
        do { try await test(TestClient(port: port)) } catch { failure = error }
        await server.triggerGracefulShutdown()
        try await group.waitForAll()
        if let failure { throw failure }
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    func json(file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        do { return try JSONValue.parse(text) } catch {
            XCTFail("not JSON (\(status)): \(text)", file: file, line: line)
            throw error
        }
    }

    /// The `data:` payloads of a server-sent-event body, `[DONE]` included.
    var events: [String] {
        text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { event in
            event.hasPrefix("data: ") ? String(event.dropFirst(6)) : "NOT DATA: " + event
        }
    }
}

extension JSONValue {
    subscript(index: Int) -> JSONValue? {
        if case .array(let a) = self, a.indices.contains(index) { return a[index] }
        return nil
    }

    var intValue: Int? { if case .int(let i) = self { return i } else { return nil } }
    var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
}

/// Polls `condition` until it holds or `seconds` pass.
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(nanoseconds: 20_000_000)
    }
    return condition()
}

/// A real checkpoint whose weights make it a bigram model that answers any chat prompt with
/// `Let me check. <longcat_tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</longcat_tool_call>`.
/// Every attention output and FFN down projection is zero, so the last hidden state is the last token's embedding
/// (identity experts only rescale it; RMSNorm removes the scale). Each token of the planned reply gets a one-hot
/// embedding, and the lm_head row of its successor points there, so "after a comes b" wins by a wide margin. A
/// bigram cannot give a repeated token two successors, and JSON repeats quotes, so the call's JSON is three added
/// (non-special) tokens of this model's tokenizer.
enum ToolCallModel {
    static let pieces = [#"{"name": "get_weather", "#, #""arguments": {"city": "#, #""Paris"}}"#]

    static func loaded() throws -> LoadedModel {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-tool-model-\(getpid())-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }  // loaded below: mapped and read, the files can go
        let base = try TestModel.directory()
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + "/config.json"))) as! [String: Any]
        let baseVocab = 4006
        config["vocab_size"] = baseVocab + pieces.count
        try RandomCheckpoint.write(configJSON: JSONSerialization.data(withJSONObject: config), to: dir, weightType: .f32, seed: 9)
        try FileManager.default.copyItem(atPath: base + "/tokenizer_config.json", toPath: dir + "/tokenizer_config.json")
        var tokenizerJSON = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + "/tokenizer.json"))) as! [String: Any]
        var added = tokenizerJSON["added_tokens"] as! [[String: Any]]
        for (i, piece) in pieces.enumerated() {
            added.append(["id": baseVocab + i, "content": piece, "special": false, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false])
        }
        tokenizerJSON["added_tokens"] = added
        try JSONSerialization.data(withJSONObject: tokenizerJSON).write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        let tokenizer = try Tokenizer(path: dir)

        let promptEnd = try XCTUnwrap(try ChatFormatter(tokenizer: tokenizer).tokens(messages: [["role": "user", "content": "?"]]).last)
        let reply = tokenizer.encode("Let me check. ") + [4000] + (0..<pieces.count).map { baseVocab + $0 } + [4001]
        let sequence = [promptEnd] + reply + [2]
        var successor: [(Int, Int)] = []
        for (a, b) in zip(sequence, sequence.dropFirst()) {
            if let known = successor.first(where: { $0.0 == a }) {
                precondition(known.1 == b, "token \(a) would need two successors")
            } else {
                successor.append((a, b))
            }
        }
        try patchWeights(dir + "/model.safetensors", successor: successor, hidden: config["hidden_size"] as! Int)
        let model = try LongCatModel(directory: dir)
        return LoadedModel(engine: Engine(model: model, tokenizer: tokenizer), tokenizer: tokenizer)
    }

    /// Rewrites F32 tensors of a safetensors file in place.
    static func patchWeights(_ path: String, successor: [(Int, Int)], hidden: Int) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerSize = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerSize))) as! [String: Any]
        data.withUnsafeMutableBytes { raw in
            func floats(_ name: String) -> UnsafeMutableBufferPointer<Float> {
                let offsets = (header[name] as! [String: Any])["data_offsets"] as! [Int]
                let bytes = UnsafeMutableRawBufferPointer(rebasing: raw[(8 + headerSize + offsets[0])..<(8 + headerSize + offsets[1])])
                return bytes.bindMemory(to: Float.self)
            }
            for name in header.keys where name != "__metadata__" {
                if name.hasSuffix("o_proj.weight") || name.hasSuffix("down_proj.weight") {
                    floats(name).update(repeating: 0)
                } else if name.contains("layernorm") || name == "model.norm.weight" {
                    floats(name).update(repeating: 1)
                }
            }
            let embed = floats("model.embed_tokens.weight"), head = floats("lm_head.weight")
            for (slot, (a, _)) in successor.enumerated() {
                for j in 0..<hidden { embed[a * hidden + j] = j == slot ? 1 : 0 }
            }
            for b in Set(successor.map(\.1)) {
                let slots = Set(successor.enumerated().filter { $0.element.1 == b }.map(\.offset))
                for j in 0..<hidden { head[b * hidden + j] = slots.contains(j) ? 5 : 0 }
            }
        }
        try data.write(to: URL(fileURLWithPath: path))
    }
}
