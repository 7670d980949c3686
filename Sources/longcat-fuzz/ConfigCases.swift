import Foundation
import LongCatModel
import LongCatTensor

/// config.json: fields bent in type, sign and magnitude (up to 2^63 and past it), keys dropped, wrong JSON
/// shapes, absurd sizes; then what `longcat inspect --model config.json` does with it.
enum ConfigCases {
    static let fields = [
        "hidden_size", "num_layers", "num_attention_heads", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
        "qk_rope_head_dim", "v_head_dim", "ffn_hidden_size", "expert_ffn_hidden_size", "n_routed_experts",
        "zero_expert_num", "moe_topk", "routed_scaling_factor", "rms_norm_eps", "vocab_size", "max_position_embeddings",
        "tie_word_embeddings", "mla_scale_q_lora", "mla_scale_kv_lora", "bos_token_id", "eos_token_id", "dtype",
        "torch_dtype", "rope_theta", "rope_parameters", "rope_scaling", "quantization_config", "zero_expert_type",
        "head_dim", "qk_head_dim", "num_key_value_heads", "attention_bias", "hidden_act", "architectures",
        "model_type", "intermediate_size", "moe_intermediate_size", "num_experts_per_tok",
    ]

    /// The sizes whose products make parameter counts and memory figures.
    static let sizes = [
        "hidden_size", "num_layers", "num_attention_heads", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
        "qk_rope_head_dim", "v_head_dim", "ffn_hidden_size", "expert_ffn_hidden_size", "n_routed_experts",
        "zero_expert_num", "vocab_size", "max_position_embeddings",
    ]

    static func make(_ c: inout FuzzCase, _ corpus: Corpus, _ rng: inout FuzzRandom) {
        var tree = corpus.configTree
        var rawDamage = false
        for _ in 0..<rng.int(1...3) {
            c.mutations.append(mutate(&tree, &rng, rawDamage: &rawDamage))
        }
        var data = tree.data
        if rawDamage { c.mutations.append(ByteDamage.apply(&data, &rng)) }
        let bytes = data
        c.execute = { dir in
            try bytes.write(to: dir, "config.json")
            let config = try ModelConfig.load(path: dir.appendingPathComponent("config.json").path)
            return Inspect.figures(config)
        }
    }

    static func mutate(_ tree: inout FJ, _ rng: inout FuzzRandom, rawDamage: inout Bool) -> String {
        switch rng.below(12) {
        case 0, 1, 2:
            let field = rng.pick(fields)
            let value = rng.chance(0.6) ? Weird.number(&rng) : Weird.value(&rng)
            tree[field] = value
            return "\(field) = \(value.brief)"
        case 3:
            // A size scaled by a power of two (often still a valid config, so inspect's arithmetic runs).
            let field = rng.pick(sizes)
            let shift = rng.int(1...62)
            let base: Int
            if case .int(let i)? = tree[field] { base = i } else { base = 1 }
            let (scaled, overflow) = base.multipliedReportingOverflow(by: 1 << shift)
            tree[field] = overflow ? .int(1 << 62) : .int(scaled)
            return "\(field) scaled by 2^\(shift)"
        case 4 where !tree.keys.isEmpty:
            let field = rng.pick(tree.keys)
            tree[field] = nil
            return "dropped \(field)"
        case 5:
            let (field, value): (String, FJ) = rng.pick([
                ("num_layers", .int(1_000_000_000)), ("hidden_size", .int(1_000_000_000)), ("vocab_size", .int(1 << 62)),
                ("n_routed_experts", .int(1_000_000_000)), ("max_position_embeddings", .int(1 << 62)),
                ("architectures", .array([.string("MysteryForCausalLM")])), ("architectures", .string("LongcatFlash")),
                ("architectures", .array([])), ("architectures", .int(5)), ("model_type", .string("llama")),
                ("eos_token_id", .array([.int(Int.max), .int(-1), .raw("1e400")])), ("eos_token_id", .array([.string("2")])),
                ("zero_expert_num", .int(Int.max)), ("moe_topk", .int(Int.max)), ("qk_rope_head_dim", .int(1 << 62)),
                ("kv_lora_rank", .int(Int.max - 1)), ("expert_ffn_hidden_size", .int(1 << 40)),
            ])
            tree[field] = value
            return "\(field) = \(value.brief)"
        case 6:
            let (scaling, description) = ropeVariant(&rng)
            tree[rng.pick(["rope_parameters", "rope_scaling"])] = scaling
            return "rope: \(description)"
        case 7:
            let block: FJ = rng.pick([
                .array([.int(0), .int(0)]), .array([.int(1 << 62), .int(1)]), .array([.int(-128), .int(128)]),
                .array([.int(128)]), .array([.raw("1e400"), .int(1)]), .string("128x128"), .array([.int(1), .int(1)]),
            ])
            var q: FJ = .object([("quant_method", .string(rng.pick(["fp8", "longcat", "gptq", ""]))), ("weight_block_size", block)])
            if rng.chance(0.3) { q["format"] = .string(rng.pick(["q8", "q4", "q2"])) }
            if rng.chance(0.3) { q["block_size"] = Weird.number(&rng) }
            tree["quantization_config"] = q
            return "quantization_config = \(q.brief)"
        case 8:
            let replacement: FJ = rng.pick([
                .array([tree]), .array([]), .string("config"), .int(1), .null, .bool(true), Weird.nested(&rng),
                .object([("config", tree)]),
            ])
            tree = replacement
            return "whole document replaced by \(replacement.brief)"
        case 9:
            rawDamage = true
            return "raw bytes damaged"
        default:
            return Weird.mutateAnywhere(&tree, &rng)
        }
    }

    static func ropeVariant(_ rng: inout FuzzRandom) -> (FJ, String) {
        var rope: FJ = .object([("rope_type", .string(rng.pick(["yarn", "default", "linear", "dynamic", ""]))), ("rope_theta", Weird.number(&rng))])
        for key in ["factor", "original_max_position_embeddings", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "attention_factor"]
        where rng.chance(0.5) {
            rope[key] = Weird.number(&rng)
        }
        if rng.chance(0.2) { rope["truncate"] = Weird.value(&rng) }
        return (rope, rope.brief)
    }
}

/// What `longcat inspect` computes from a config, through the same model-module functions it calls.
enum Inspect {
    static func figures(_ config: ModelConfig) -> String {
        let context = config.maxPositionEmbeddings
        let (total, activeMin, activeMax) = config.parameterCounts
        let weightBytes = config.estimatedBytesByDType.values.reduce(0, +)
        let memory = config.memoryEstimate(weightBytes: weightBytes, context: context).map { "\($0) bytes" } ?? "more than 8 EiB"
        return "\(total) parameters (\(activeMin)-\(activeMax) active), \(memory) at context \(context)"
    }
}
