import LongCatModel
import LongCatTestSupport
import XCTest

/// The engine reproduces Hugging Face transformers on every model fixture: logits at every position,
/// greedy tokens decoded with the KV cache, and the router's choices.
final class ReferenceTests: XCTestCase {
    func testLogitsMatchReferenceOnEveryFixture() throws {
        for name in Fixtures.modelNames {
            let model = try LongCatModel(directory: Fixtures.path(name))
            let expected = try Fixtures.expected(name)
            for (i, c) in expected.cases.enumerated() {
                let cache = KVCache(config: model.config)
                let logits = try model.forward(tokens: c.inputIds, cache: cache, logits: .all)
                let reference = c.logits.flatMap { $0 }
                XCTAssertEqual(logits.count, reference.count, "\(name) case \(i)")
                let maxRef = reference.map(abs).max()!
                let maxErr = zip(logits, reference).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(maxErr, 1e-3 * maxRef, "\(name) case \(i): max error \(maxErr), max |ref| \(maxRef)")
            }
        }
    }

    /// YaRN with an explicit factor (2) unlike max_position_embeddings / original_max_position_embeddings (4): the
    /// same checkpoint gives the reference's logits whether its config spells `rope_parameters{rope_type}` or the
    /// older `rope_scaling{type}` with `rope_theta` at the top level.
    func testYarnExplicitFactorInBothSpellings() throws {
        let name = "tiny-yarn-explicit-factor"
        var config = try Fixtures.json(name + "/config.json")
        var scaling = try XCTUnwrap(config.removeValue(forKey: "rope_parameters") as? [String: Any])
        config["rope_theta"] = scaling.removeValue(forKey: "rope_theta")
        scaling["type"] = scaling.removeValue(forKey: "rope_type")
        config["rope_scaling"] = scaling
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-yarn-scaling-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: Fixtures.url(name + "/model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))

        let original = try LongCatModel(directory: Fixtures.path(name)), respelled = try LongCatModel(directory: dir.path)
        XCTAssertEqual(respelled.config.rope, original.config.rope)
        XCTAssertEqual(respelled.config.rope.factor, 2)
        let c = try Fixtures.expected(name).cases[0]
        let logits = try respelled.forward(tokens: c.inputIds, cache: KVCache(config: respelled.config), logits: .all)
        let reference = c.logits.flatMap { $0 }
        let maxErr = zip(logits, reference).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(maxErr, 1e-3 * reference.map(abs).max()!)
    }

    func testGreedyDecodingWithCacheMatchesReference() throws {
        for name in Fixtures.modelNames {
            let model = try LongCatModel(directory: Fixtures.path(name))
            for (i, c) in try Fixtures.expected(name).cases.enumerated() {
                let cache = KVCache(config: model.config)
                var logits = try model.forward(tokens: c.inputIds, cache: cache)
                var generated: [Int] = []
                while generated.count < c.greedy.count {
                    let next = logits.indices.max { logits[$0] < logits[$1] }!
                    generated.append(next)
                    logits = try model.forward(tokens: [next], cache: cache)
                }
                XCTAssertEqual(generated, c.greedy, "\(name) case \(i)")
                XCTAssertEqual(cache.count, c.inputIds.count + c.greedy.count)
            }
        }
    }

    func testRouterChoicesMatchReference() throws {
        for name in Fixtures.modelNames {
            let model = try LongCatModel(directory: Fixtures.path(name))
            let expected = try Fixtures.expected(name)
            let recorder = RoutingRecorder(keepChoices: true)
            _ = try model.forward(tokens: expected.cases[0].inputIds, cache: KVCache(config: model.config), routing: recorder)
            XCTAssertEqual(recorder.choices.count, expected.router.count, name)
            for layer in expected.router {
                let ours = recorder.choices[layer.layer]
                XCTAssertEqual(ours.count, layer.indices.count, "\(name) layer \(layer.layer)")
                for (t, choice) in ours.enumerated() {
                    XCTAssertEqual(choice.experts.sorted(), layer.indices[t], "\(name) layer \(layer.layer) token \(t)")
                    // The reference lists weights in its own order; compare them as sorted lists.
                    for (a, b) in zip(choice.weights.sorted(), layer.weights[t].sorted()) {
                        XCTAssertEqual(a, b, accuracy: 1e-4, "\(name) layer \(layer.layer) token \(t)")
                    }
                }
            }
        }
    }
}
