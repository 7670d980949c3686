import Foundation
import LongCatEngine
import LongCatModel
import XCTest

let fixturesRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("shared/fixtures")

final class GeneratorTests: XCTestCase {
    func expectedCase(_ name: String) throws -> (prompt: [Int], greedy: [Int]) {
        let data = try Data(contentsOf: fixturesRoot.appendingPathComponent("\(name)/expected.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let first = (json["cases"] as! [[String: Any]])[0]
        return (first["input_ids"] as! [Int], first["greedy_new_tokens"] as! [Int])
    }

    func testGreedyGenerationReproducesReference() throws {
        for name in ["tiny-fp32", "small-fp8"] {
            let model = try LongCatModel(directory: fixturesRoot.appendingPathComponent(name).path)
            let (prompt, greedy) = try expectedCase(name)
            var streamed: [Int] = []
            let result = try Generator(model: model).generate(
                prompt: prompt, options: GenerationOptions(maxTokens: greedy.count, ignoreEOS: true)) { streamed.append($0) }
            XCTAssertEqual(result.tokens, greedy, name)
            XCTAssertEqual(streamed, greedy, name)
            XCTAssertEqual(result.promptTokens, prompt.count)
            XCTAssertEqual(result.finishReason, .length)
            XCTAssertGreaterThan(result.ffnExpertsPerToken, 0)
            XCTAssertLessThanOrEqual(result.ffnExpertsPerToken, Double(model.config.topK))
        }
    }

    func testStopsAtEndOfSequenceUnlessIgnored() throws {
        // tiny-fp32's first case produces EOS (2) as its 12th greedy token.
        let model = try LongCatModel(directory: fixturesRoot.appendingPathComponent("tiny-fp32").path)
        let (prompt, greedy) = try expectedCase("tiny-fp32")
        let eosAt = try XCTUnwrap(greedy.firstIndex(of: 2))
        let result = try Generator(model: model).generate(prompt: prompt, options: GenerationOptions(maxTokens: 16))
        XCTAssertEqual(result.tokens, Array(greedy[...eosAt]))
        XCTAssertEqual(result.finishReason, .stop)
    }

    func testSeededSamplingIsReproducible() throws {
        let model = try LongCatModel(directory: fixturesRoot.appendingPathComponent("tiny-fp32").path)
        let generator = Generator(model: model)
        let options = GenerationOptions(maxTokens: 12, temperature: 1.5, topK: 50, topP: 0.95, seed: 1234, ignoreEOS: true)
        let a = try generator.generate(prompt: [9, 305, 233], options: options)
        let b = try generator.generate(prompt: [9, 305, 233], options: options)
        XCTAssertEqual(a.tokens, b.tokens)
        var other = options
        other.seed = 99
        var differs = false
        for seed in UInt64(1)...5 {
            other.seed = seed
            if try generator.generate(prompt: [9, 305, 233], options: other).tokens != a.tokens { differs = true }
        }
        XCTAssertTrue(differs, "different seeds should give different samples at temperature 1.5")
    }

    func testSamplerRespectsTopKAndTopP() {
        let logits: [Float] = [0, 5, 4.9, -3, 1]
        var topOne = Sampler(options: GenerationOptions(temperature: 1, topK: 1, seed: 3))
        for _ in 0..<20 { XCTAssertEqual(topOne.pick(logits), 1) }
        var nucleus = Sampler(options: GenerationOptions(temperature: 1, topP: 0.9, seed: 3))
        for _ in 0..<200 { XCTAssertTrue([1, 2].contains(nucleus.pick(logits))) }
        XCTAssertEqual(Sampler.argmax(logits), 1)
    }

    func testInvalidOptionsNameTheField() throws {
        let model = try LongCatModel(directory: fixturesRoot.appendingPathComponent("tiny-fp32").path)
        let generator = Generator(model: model)
        let bad: [(GenerationOptions, String)] = [
            (GenerationOptions(maxTokens: -1), "max_tokens"),
            (GenerationOptions(temperature: -0.5), "temperature"),
            (GenerationOptions(temperature: .nan), "temperature"),
            (GenerationOptions(topK: 0), "top_k"),
            (GenerationOptions(topP: 1.5), "top_p"),
        ]
        for (options, field) in bad {
            XCTAssertThrowsError(try generator.generate(prompt: [1, 2], options: options)) { error in
                guard case .invalidOption(let f, _) = error as? GenerationError else { return XCTFail("\(error)") }
                XCTAssertEqual(f, field)
            }
        }
    }

    func testGenerationStopsAtTheContextLimit() throws {
        let model = try LongCatModel(directory: fixturesRoot.appendingPathComponent("tiny-fp32").path)
        let context = model.config.maxPositionEmbeddings
        let prompt = [Int](repeating: 7, count: context - 3)
        let result = try Generator(model: model).generate(prompt: prompt, options: GenerationOptions(maxTokens: 10, ignoreEOS: true))
        // The last generated token needs no slot of its own: 3 free positions give 4 tokens.
        XCTAssertEqual(result.tokens.count, 4)
        XCTAssertEqual(result.finishReason, .length)
    }
}
