import Foundation
import LongCatModel
import LongCatTestSupport
import XCTest

/// config.json in both spellings seen in the wild parses to the right shape, and each kind of bad config is
/// rejected with an error naming the field at fault.
final class ConfigTests: XCTestCase {
    // MARK: Helpers

    func json(_ fixture: String) throws -> [String: Any] {
        let url = try Fixtures.url(fixture + "/config.json")
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    /// The tiny-fp32 config (transformers spelling) after `change`.
    func tiny(_ change: (inout [String: Any]) -> Void = { _ in }) throws -> [String: Any] {
        var j = try json("tiny-fp32")
        change(&j)
        return j
    }

    /// The small-fp8 config (official spelling) after `change`.
    func official(_ change: (inout [String: Any]) -> Void = { _ in }) throws -> [String: Any] {
        var j = try json("small-fp8")
        change(&j)
        return j
    }

    /// `json` written out as text and read back, so every value is what JSONSerialization produces (NSNumber,
    /// including for true/false) rather than a native Swift Int, Double or Bool.
    func roundTripped(_ json: [String: Any]) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: json)) as? [String: Any])
    }

    /// The ConfigError that parsing `json` throws (failing the test if it parses or throws something else).
    func configError(_ json: [String: Any], file: StaticString = #filePath, line: UInt = #line) -> ConfigError? {
        do {
            let config = try ModelConfig(json: json)
            XCTFail("expected a ConfigError, but parsed \(config)", file: file, line: line)
        } catch let error as ConfigError {
            return error
        } catch {
            XCTFail("expected a ConfigError, got \(error)", file: file, line: line)
        }
        return nil
    }

    /// The field an .invalidValue error names (nil, with a test failure, for any other error).
    func invalidField(_ json: [String: Any], file: StaticString = #filePath, line: UInt = #line) -> String? {
        let error = configError(json, file: file, line: line)
        guard case .invalidValue(let field, _)? = error else {
            XCTFail("expected .invalidValue, got \(String(describing: error))", file: file, line: line)
            return nil
        }
        return field
    }

    // MARK: Fixture configs parse

    /// transformers' spelling: rope_parameters, head_dim, qk_head_dim, num_key_value_heads, dtype.
    func testTransformersStyleConfig() throws {
        let c = try ModelConfig(json: json("tiny-fp32"))
        XCTAssertEqual(c.hiddenSize, 64)
        XCTAssertEqual(c.numLayers, 2)
        XCTAssertEqual(c.numHeads, 4)
        XCTAssertEqual(c.qLoraRank, 32)
        XCTAssertEqual(c.kvLoraRank, 16)
        XCTAssertEqual(c.qkNopeHeadDim, 16)
        XCTAssertEqual(c.qkRopeHeadDim, 8)
        XCTAssertEqual(c.qkHeadDim, 24)
        XCTAssertEqual(c.vHeadDim, 16)
        XCTAssertEqual(c.ffnHiddenSize, 96)
        XCTAssertEqual(c.expertFFNHiddenSize, 32)
        XCTAssertEqual(c.numExperts, 8)
        XCTAssertEqual(c.numZeroExperts, 4)
        XCTAssertEqual(c.totalExperts, 12)
        XCTAssertEqual(c.topK, 3)
        XCTAssertEqual(c.routedScalingFactor, 2.5)
        XCTAssertEqual(c.rmsNormEps, 1e-5)
        XCTAssertEqual(c.vocabSize, 320)
        XCTAssertEqual(c.maxPositionEmbeddings, 256)
        XCTAssertFalse(c.tieWordEmbeddings)
        XCTAssertTrue(c.mlaScaleQLora && c.mlaScaleKVLora)  // defaults
        XCTAssertEqual(c.rope.kind, .default)
        XCTAssertEqual(c.rope.theta, 10000)
        XCTAssertNil(c.fp8BlockSize)
        XCTAssertEqual(c.bosTokenId, 1)
        XCTAssertEqual(c.eosTokenIds, [2])
        XCTAssertEqual(c.declaredDType, "float32")
    }

    /// The official spelling: rope_theta at top level, zero_expert_type, mla_scale_*, quantization_config.
    func testOfficialStyleFP8Config() throws {
        let c = try ModelConfig(json: json("small-fp8"))
        XCTAssertEqual(c.hiddenSize, 256)
        XCTAssertEqual(c.qLoraRank, 128)
        XCTAssertEqual(c.kvLoraRank, 64)
        XCTAssertEqual(c.numExperts, 16)
        XCTAssertEqual(c.numZeroExperts, 8)
        XCTAssertEqual(c.topK, 4)
        XCTAssertEqual(c.vocabSize, 1000)
        XCTAssertEqual(c.rope.kind, .default)
        XCTAssertEqual(c.rope.theta, 10000)
        XCTAssertEqual(c.fp8BlockSize, [128, 128])
        XCTAssertEqual(c.declaredDType, "bfloat16")
        XCTAssertTrue(c.mlaScaleQLora && c.mlaScaleKVLora)
    }

    func testYarnConfig() throws {
        let c = try ModelConfig(json: json("tiny-yarn"))
        XCTAssertEqual(c.rope.kind, .yarn)
        XCTAssertEqual(c.rope.theta, 10000)
        XCTAssertEqual(c.rope.factor, 4)
        XCTAssertEqual(c.rope.originalMaxPositions, 64)
        XCTAssertEqual(c.rope.betaFast, 32)
        XCTAssertEqual(c.rope.betaSlow, 1)
        XCTAssertEqual(c.rope.mscale, 1)
        XCTAssertEqual(c.rope.mscaleAllDim, 1)
        XCTAssertNil(c.rope.attentionFactor)
        XCTAssertTrue(c.rope.truncate)
        // Everything else is the tiny-fp32 shape.
        let plain = try ModelConfig(json: json("tiny-fp32"))
        var same = c
        same.rope = plain.rope
        XCTAssertEqual(same, plain)
    }

    func testShardedFixtureConfig() throws {
        let c = try ModelConfig(json: json("tiny-bf16-sharded"))
        XCTAssertEqual(c.vocabSize, 300)
        XCTAssertEqual(c.declaredDType, "bfloat16")
    }

    /// The published LongCat-Flash-Chat shape: 560B parameters, 18.6B-31.3B active per token. The expected
    /// numbers are computed independently from the published architecture.
    func testOfficialLongCatFlashChatConfig() throws {
        let c = try ModelConfig.load(path: Fixtures.path("official-configs/longcat-flash-chat.config.json"))
        XCTAssertEqual(c.hiddenSize, 6144)
        XCTAssertEqual(c.numLayers, 28)
        XCTAssertEqual(c.numHeads, 64)
        XCTAssertEqual(c.qLoraRank, 1536)
        XCTAssertEqual(c.kvLoraRank, 512)
        XCTAssertEqual(c.qkHeadDim, 192)
        XCTAssertEqual(c.numExperts, 512)
        XCTAssertEqual(c.numZeroExperts, 256)
        XCTAssertEqual(c.topK, 12)
        XCTAssertEqual(c.routedScalingFactor, 6)
        XCTAssertEqual(c.vocabSize, 131_072)
        XCTAssertEqual(c.maxPositionEmbeddings, 131_072)
        XCTAssertEqual(c.rope.kind, .default)
        XCTAssertEqual(c.rope.theta, 10_000_000)
        XCTAssertNil(c.fp8BlockSize)
        let counts = c.parameterCounts
        XCTAssertEqual(counts.total, 560_664_980_480)
        // The published rule (official-configs/longcat-flash-lite.expected-counts.json, convention_check_on_chat):
        // lm_head whole and one row of embed_tokens.
        XCTAssertEqual(counts.activeMin, 18_693_800_960)
        XCTAssertEqual(counts.activeMax, 31_377_376_256)
    }

    // MARK: Missing fields and wrong types

    func testMissingRequiredField() throws {
        XCTAssertEqual(configError(try tiny { $0["hidden_size"] = nil }), .missingField("hidden_size"))
        let required = [
            "hidden_size", "num_layers", "num_attention_heads", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
            "qk_rope_head_dim", "v_head_dim", "ffn_hidden_size", "expert_ffn_hidden_size", "n_routed_experts",
            "moe_topk", "vocab_size", "max_position_embeddings",
        ]
        for field in required {
            // head_dim and qk_head_dim cross-check the head sizes; drop them so the missing field is what fails.
            let j = try tiny { $0[field] = nil; $0["head_dim"] = nil; $0["qk_head_dim"] = nil }
            XCTAssertEqual(configError(j), .missingField(field), field)
        }
        // null counts as missing.
        XCTAssertEqual(configError(try tiny { $0["vocab_size"] = NSNull() }), .missingField("vocab_size"))
        // No rope_theta anywhere.
        XCTAssertEqual(configError(try tiny { $0["rope_parameters"] = nil }), .missingField("rope_theta"))
        XCTAssertEqual(configError(try official { $0["rope_theta"] = nil }), .missingField("rope_theta"))
    }

    func testWrongTypes() throws {
        let cases: [(String, Any, String)] = [
            ("hidden_size", "64", "an integer"),
            ("hidden_size", 64.5, "an integer"),
            ("hidden_size", true, "an integer"),  // JSON true must not pass as 1
            ("hidden_size", [64], "an integer"),
            ("num_layers", ["n": 2], "an integer"),
            ("zero_expert_num", "4", "an integer"),
            ("bos_token_id", "1", "an integer"),
            ("rms_norm_eps", "1e-5", "a number"),
            ("rms_norm_eps", false, "a number"),
            ("routed_scaling_factor", [2.5], "a number"),
            ("tie_word_embeddings", "false", "true or false"),
            ("mla_scale_q_lora", "yes", "true or false"),
            ("attention_bias", "false", "true or false"),
            ("eos_token_id", "2", "an integer or a list of integers"),
            ("eos_token_id", [2, "3"], "an integer or a list of integers"),
            ("eos_token_id", true, "an integer or a list of integers"),
            ("rope_parameters", "default", "an object"),
            ("quantization_config", "fp8", "an object"),
        ]
        for (field, value, expected) in cases {
            // Both as native Swift values and as read from a file.
            let j = try tiny { $0[field] = value }
            XCTAssertEqual(configError(j), .wrongType(field: field, expected: expected), "\(field) = \(value)")
            XCTAssertEqual(configError(try roundTripped(j)), .wrongType(field: field, expected: expected), "\(field) = \(value) (from JSON)")
        }
        XCTAssertEqual(
            configError(try tiny { $0["rope_parameters"] = ["rope_theta": "10000", "rope_type": "default"] }),
            .wrongType(field: "rope_parameters.rope_theta", expected: "a number"))
        XCTAssertEqual(
            configError(try official { $0["rope_scaling"] = [1, 2] }),
            .wrongType(field: "rope_scaling", expected: "an object"))
        XCTAssertEqual(
            configError(try official { $0["zero_expert_type"] = 1 }),
            .wrongType(field: "zero_expert_type", expected: "a string"))
        // String settings of another type are errors, not a silent fallback to the default.
        XCTAssertEqual(
            configError(try tiny { $0["rope_parameters"] = ["rope_theta": 10000.0, "rope_type": 2] }),
            .wrongType(field: "rope_parameters.rope_type", expected: "a string"))
        XCTAssertEqual(
            configError(try official { $0["rope_scaling"] = ["type": ["yarn"], "factor": 2.0] }),
            .wrongType(field: "rope_scaling.type", expected: "a string"))
        XCTAssertEqual(
            configError(try official { $0["quantization_config"] = ["quant_method": 8] }),
            .wrongType(field: "quantization_config.quant_method", expected: "a string"))
        XCTAssertEqual(
            configError(try official { $0["quantization_config"] = ["quant_method": "fp8", "fmt": false] }),
            .wrongType(field: "quantization_config.fmt", expected: "a string"))
    }

    /// A whole number written as a float (64.0) is still an integer; eos_token_id may be a list.
    func testAcceptedSpellingsOfNumbers() throws {
        let c = try ModelConfig(json: try tiny { $0["hidden_size"] = 64.0; $0["eos_token_id"] = [2, 7]; $0["routed_scaling_factor"] = 3 })
        XCTAssertEqual(c.hiddenSize, 64)
        XCTAssertEqual(c.eosTokenIds, [2, 7])
        XCTAssertEqual(c.routedScalingFactor, 3)
        XCTAssertEqual(try ModelConfig(json: try tiny { $0["eos_token_id"] = nil }).eosTokenIds, [])
    }

    /// A config built in Swift (native Int, Double and Bool values, not NSNumbers) parses like the same file.
    func testNativeSwiftValues() throws {
        let native: [String: Any] = [
            "hidden_size": 64, "num_layers": 2, "num_attention_heads": 4, "q_lora_rank": 32, "kv_lora_rank": 16,
            "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16, "head_dim": 8, "qk_head_dim": 24,
            "num_key_value_heads": 4, "ffn_hidden_size": 96, "expert_ffn_hidden_size": 32, "n_routed_experts": 8,
            "zero_expert_num": 4, "moe_topk": 3, "routed_scaling_factor": 2.5, "rms_norm_eps": 1e-5, "vocab_size": 320,
            "max_position_embeddings": 256, "tie_word_embeddings": false, "attention_bias": false, "hidden_act": "silu",
            "bos_token_id": 1, "eos_token_id": 2, "dtype": "float32",
            "rope_parameters": ["rope_theta": 10000, "rope_type": "default"],
        ]
        let fromFile = try ModelConfig(json: json("tiny-fp32"))
        XCTAssertEqual(try ModelConfig(json: native), fromFile)
        XCTAssertEqual(try ModelConfig(json: roundTripped(native)), fromFile)
        // Whole numbers written as Double are integers; fractions are not.
        var doubles = native
        doubles["hidden_size"] = 64.0
        doubles["routed_scaling_factor"] = Float(2.5)
        XCTAssertEqual(try ModelConfig(json: doubles), fromFile)
        doubles["hidden_size"] = 64.5
        XCTAssertEqual(configError(doubles), .wrongType(field: "hidden_size", expected: "an integer"))
    }

    // MARK: Values that contradict each other or are unsupported

    func testTopKLargerThanAllExperts() throws {
        // 8 routed + 4 zero experts: 12 is the most that can be picked.
        XCTAssertEqual(invalidField(try tiny { $0["moe_topk"] = 13 }), "moe_topk")
        XCTAssertEqual(try ModelConfig(json: try tiny { $0["moe_topk"] = 12 }).topK, 12)
        // Without zero experts the limit drops to n_routed_experts.
        XCTAssertEqual(invalidField(try tiny { $0["zero_expert_num"] = 0; $0["moe_topk"] = 9 }), "moe_topk")
        // Also when spelled num_experts_per_tok.
        XCTAssertNotNil(invalidField(try tiny { $0["moe_topk"] = nil; $0["num_experts_per_tok"] = 13 }))
    }

    func testZeroExpertType() throws {
        XCTAssertEqual(invalidField(try official { $0["zero_expert_type"] = "other" }), "zero_expert_type")
        XCTAssertNoThrow(try ModelConfig(json: try official { $0["zero_expert_type"] = NSNull() }))
        XCTAssertNoThrow(try ModelConfig(json: try official { $0["zero_expert_type"] = "identity" }))
    }

    func testInconsistentHeadSizes() throws {
        XCTAssertEqual(invalidField(try tiny { $0["head_dim"] = 16 }), "head_dim")
        XCTAssertEqual(invalidField(try tiny { $0["qk_head_dim"] = 25 }), "qk_head_dim")
        XCTAssertEqual(invalidField(try tiny { $0["num_key_value_heads"] = 1 }), "num_key_value_heads")
        // Rotary dims come in pairs.
        XCTAssertEqual(invalidField(try tiny { $0["qk_rope_head_dim"] = 7; $0["head_dim"] = 7; $0["qk_head_dim"] = 23 }), "qk_rope_head_dim")
    }

    func testUnsupportedFeatures() throws {
        XCTAssertEqual(invalidField(try tiny { $0["attention_bias"] = true }), "attention_bias")
        XCTAssertEqual(invalidField(try tiny { $0["hidden_act"] = "gelu" }), "hidden_act")
        XCTAssertEqual(invalidField(try tiny { $0["q_lora_rank"] = NSNull() }), "q_lora_rank")
    }

    func testRopeSettings() throws {
        XCTAssertEqual(invalidField(try tiny { $0["rope_parameters"] = ["rope_theta": 10000.0, "rope_type": "linear"] }), "rope_parameters.rope_type")
        XCTAssertEqual(invalidField(try official { $0["rope_scaling"] = ["type": "dynamic", "factor": 2.0] }), "rope_scaling.rope_type")
        // YaRN needs a scaling factor of at least 1.
        var yarn = try json("tiny-yarn")
        var params = yarn["rope_parameters"] as! [String: Any]
        params["factor"] = nil
        yarn["rope_parameters"] = params
        XCTAssertEqual(configError(yarn), .missingField("rope_parameters.factor"))
        params["factor"] = 0.5
        yarn["rope_parameters"] = params
        XCTAssertEqual(invalidField(yarn), "rope_parameters.factor")
        params["factor"] = 4.0
        params["original_max_position_embeddings"] = 0
        yarn["rope_parameters"] = params
        XCTAssertEqual(invalidField(yarn), "rope_parameters.original_max_position_embeddings")
        // Official spelling with YaRN in rope_scaling, theta at top level.
        let c = try ModelConfig(json: try official { $0["rope_scaling"] = ["type": "yarn", "factor": 2.0, "original_max_position_embeddings": 128] })
        XCTAssertEqual(c.rope.kind, .yarn)
        XCTAssertEqual(c.rope.factor, 2)
        XCTAssertEqual(c.rope.theta, 10000)
        XCTAssertEqual(c.rope.originalMaxPositions, 128)
    }

    func testQuantizationConfig() throws {
        func withQuant(_ change: @escaping (inout [String: Any]) -> Void) throws -> [String: Any] {
            try official { j in
                var q = j["quantization_config"] as! [String: Any]
                change(&q)
                j["quantization_config"] = q
            }
        }
        XCTAssertEqual(invalidField(try withQuant { $0["quant_method"] = "gptq" }), "quantization_config.quant_method")
        XCTAssertEqual(invalidField(try withQuant { $0["fmt"] = "e5m2" }), "quantization_config.fmt")
        for block: Any in [[128], [0, 128], [128, -1], [128, 128, 128], "128", [128.5, 128], NSNull()] {
            XCTAssertEqual(invalidField(try withQuant { $0["weight_block_size"] = block }), "quantization_config.weight_block_size", "\(block)")
        }
        XCTAssertEqual(try ModelConfig(json: try withQuant { $0["weight_block_size"] = [64, 32] }).fp8BlockSize, [64, 32])
        XCTAssertEqual(try ModelConfig(json: try withQuant { $0["weight_block_size"] = nil }).fp8BlockSize, [128, 128])
        XCTAssertNil(try ModelConfig(json: try official { $0["quantization_config"] = NSNull() }).fp8BlockSize)
    }

    // MARK: Aliases

    /// transformers' alias names give the same config as the canonical ones.
    func testAliasesAccepted() throws {
        let canonical = try ModelConfig(json: json("tiny-fp32"))
        let aliased = try ModelConfig(json: try tiny { j in
            j["num_experts_per_tok"] = j.removeValue(forKey: "moe_topk")
            j["intermediate_size"] = j.removeValue(forKey: "ffn_hidden_size")
            j["moe_intermediate_size"] = j.removeValue(forKey: "expert_ffn_hidden_size")
        })
        XCTAssertEqual(aliased, canonical)
        // An alias of the wrong type is reported under the name actually used.
        XCTAssertEqual(
            configError(try tiny { $0["moe_topk"] = nil; $0["num_experts_per_tok"] = "3" }),
            .wrongType(field: "num_experts_per_tok", expected: "an integer"))
        XCTAssertEqual(
            configError(try tiny { $0["ffn_hidden_size"] = nil; $0["intermediate_size"] = 0 }),
            .invalidValue(field: "intermediate_size", reason: "must be a positive integer, got 0"))
    }

    // MARK: Zero and negative values

    func testZeroOrNegativeValuesRejected() throws {
        let positive = [
            "hidden_size", "num_layers", "num_attention_heads", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
            "qk_rope_head_dim", "v_head_dim", "ffn_hidden_size", "expert_ffn_hidden_size", "n_routed_experts",
            "moe_topk", "vocab_size", "max_position_embeddings",
        ]
        for field in positive {
            for value in [0, -4] {
                let j = try tiny { $0[field] = value; $0["head_dim"] = nil; $0["qk_head_dim"] = nil }
                XCTAssertEqual(
                    configError(j), .invalidValue(field: field, reason: "must be a positive integer, got \(value)"), "\(field) = \(value)")
            }
        }
        XCTAssertEqual(invalidField(try tiny { $0["zero_expert_num"] = -1 }), "zero_expert_num")
        XCTAssertNoThrow(try ModelConfig(json: try tiny { $0["zero_expert_num"] = 0 }))
        XCTAssertEqual(invalidField(try tiny { $0["rms_norm_eps"] = 0 }), "rms_norm_eps")
        XCTAssertEqual(invalidField(try tiny { $0["rms_norm_eps"] = -1e-5 }), "rms_norm_eps")
        XCTAssertEqual(invalidField(try tiny { $0["rope_parameters"] = ["rope_theta": 0.0] }), "rope_theta")
        XCTAssertEqual(invalidField(try official { $0["rope_theta"] = -10000.0 }), "rope_theta")
        // Finite as a Double, infinite as the Float the engine computes with.
        XCTAssertEqual(invalidField(try tiny { $0["routed_scaling_factor"] = 1e300 }), "routed_scaling_factor")
    }

    // MARK: Reading the file

    func testUnreadableConfigFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ConfigTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        let cases: [(String, Data?, String?)] = [
            ("invalid.json", Data("{\"hidden_size\": 64,".utf8), "not valid JSON"),
            ("empty.json", Data(), "not valid JSON"),
            ("garbage.json", Data("garbage".utf8), "not valid JSON"),
            ("list.json", Data("[1, 2]".utf8), "top level is not a JSON object"),
            ("missing.json", nil, nil),
        ]
        for (name, data, reason) in cases {
            let path = dir.appendingPathComponent(name).path
            if let data { try data.write(to: URL(fileURLWithPath: path)) }
            XCTAssertThrowsError(try ModelConfig.load(path: path), name) { error in
                guard case .unreadable(let p, let r)? = error as? ConfigError else { return XCTFail("\(name): got \(error)") }
                XCTAssertEqual(p, path)
                if let reason { XCTAssertEqual(r, reason, name) }
            }
        }
        // A directory is not a config file.
        XCTAssertThrowsError(try ModelConfig.load(path: dir.path)) { error in
            guard case .unreadable(dir.path, _)? = error as? ConfigError else { return XCTFail("got \(error)") }
        }
        // A valid file goes through the same field checks as ModelConfig(json:).
        let bad = dir.appendingPathComponent("bad.json")
        try JSONSerialization.data(withJSONObject: try tiny { $0["hidden_size"] = "64" }).write(to: bad)
        XCTAssertThrowsError(try ModelConfig.load(path: bad.path)) { error in
            XCTAssertEqual(error as? ConfigError, .wrongType(field: "hidden_size", expected: "an integer"))
        }
    }

    /// Error messages name the field.
    func testDescriptionsNameTheField() {
        XCTAssertTrue(ConfigError.missingField("hidden_size").description.contains("'hidden_size'"))
        XCTAssertTrue(ConfigError.wrongType(field: "hidden_size", expected: "an integer").description.contains("'hidden_size'"))
        XCTAssertTrue(ConfigError.invalidValue(field: "moe_topk", reason: "is 13").description.contains("'moe_topk'"))
    }
}
