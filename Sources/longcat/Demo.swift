import ArgumentParser
import Foundation
import LongCatEngine
import LongCatModel

/// What `longcat` does with no arguments: until a trained model ships, build (once) a small random-weight
/// LongCat-Flash in the cache directory and generate from it, so every part of the engine runs.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the built-in default: a small random-weight LongCat-Flash model (created once in the cache directory).")

    @Option(name: .long, help: "Tokens to generate.")
    var maxTokens: Int = 32

    static let defaultConfig: [String: Any] = [
        "architectures": ["LongcatFlashForCausalLM"], "model_type": "longcat_flash",
        "vocab_size": 4096, "hidden_size": 512, "num_layers": 4, "num_attention_heads": 8,
        "ffn_hidden_size": 1408, "expert_ffn_hidden_size": 256, "q_lora_rank": 256, "kv_lora_rank": 128,
        "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 32,
        "n_routed_experts": 16, "zero_expert_num": 8, "zero_expert_type": "identity", "moe_topk": 4,
        "routed_scaling_factor": 6.0, "max_position_embeddings": 4096, "rope_theta": 10000000.0,
        "rms_norm_eps": 1e-5, "mla_scale_q_lora": true, "mla_scale_kv_lora": true,
        "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    ]

    static var cacheDirectory: URL {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["LONGCAT_CACHE"] { return URL(fileURLWithPath: dir) }
        if let xdg = env["XDG_CACHE_HOME"] { return URL(fileURLWithPath: xdg).appendingPathComponent("longcat") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/longcat")
    }

    /// The default model's directory, created on first use (written aside, then renamed into place).
    static func ensureDefaultModel() throws -> String {
        let dir = cacheDirectory.appendingPathComponent("default-random-v1")
        let fm = FileManager.default
        if fm.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path) { return dir.path }
        Console.progress("creating the built-in default model in \(dir.path) (once)")
        let staging = cacheDirectory.appendingPathComponent("default-random-v1.partial-\(getpid())")
        try? fm.removeItem(at: staging)
        let json = try JSONSerialization.data(withJSONObject: defaultConfig, options: [.prettyPrinted, .sortedKeys])
        try RandomCheckpoint.write(configJSON: json, to: staging.path, weightType: .bf16, seed: 42)
        try? fm.removeItem(at: dir)
        try fm.moveItem(at: staging, to: dir)
        return dir.path
    }

    func run() async throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        let path = try Self.ensureDefaultModel()
        let model = try LongCatModel(directory: path)
        Console.progress("NOTE: the built-in default model has random, untrained weights: its tokens are meaningless.")
        Console.progress("      Point --model at a real LongCat-Flash checkpoint with `longcat generate --model DIR ...`.")
        Console.progress("model: \(model.config.summaryLine)")
        let prompt = [model.config.bosTokenId ?? 1, 100, 200, 300]
        print("prompt token ids: \(prompt.map(String.init).joined(separator: ","))")
        print("generated token ids:", terminator: " ")
        let engine = Engine(model: model, options: try .singleUser(model))
        var request = GenerationRequest(prompt: prompt, maxTokens: maxTokens)
        request.sampling.temperature = 0
        request.ignoreEOS = true
        let result = try await engine.generate(request) { chunk in
            print(chunk.tokens.map(String.init).joined(separator: " "), terminator: " ")
            fflush(stdout)
        }
        print()
        print(result.figuresLine(ffnExpertsPerToken: engine.metrics.ffnExpertsPerToken))
    }
}
