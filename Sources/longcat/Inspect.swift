import ArgumentParser
import Foundation
import LongCatModel
import LongCatTensor

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model: layers, experts, parameters (total and active per token), bytes, KV cache and memory.")

    @Option(name: .long, help: "A checkpoint directory or a config.json file (default: the built-in model).")
    var model: String?

    @Option(name: .long, help: "Context length for the memory estimate (default: max_position_embeddings).")
    var context: Int?

    @Flag(name: .long, help: "Print one JSON object on stdout.")
    var json = false

    func run() throws {
        let model = try self.model ?? DefaultModel.directory()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory) else {
            throw ValidationError("--model: no such file or directory: \(model)")
        }
        let config: ModelConfig
        var bytesByDType: [DType: Int]
        var bytesSource: String
        if isDirectory.boolValue {
            let checkpointConfig = URL(fileURLWithPath: model).appendingPathComponent("config.json").path
            config = try ModelConfig.load(path: checkpointConfig)
            if let checkpoint = try? Checkpoint(directory: model) {
                (bytesByDType, bytesSource) = (checkpoint.bytesByDType, "files")
            } else {
                (bytesByDType, bytesSource) = (config.estimatedBytesByDType, "estimate from config")
            }
        } else {
            config = try ModelConfig.load(path: model)
            (bytesByDType, bytesSource) = (config.estimatedBytesByDType, "estimate from config")
        }
        let context = self.context ?? config.maxPositionEmbeddings
        guard context >= 0 else { throw ValidationError("--context must not be negative") }
        let (total, activeMin, activeMax) = config.parameterCounts
        let weightBytes = bytesByDType.values.reduce(0, +)
        let memory = config.memoryEstimate(weightBytes: weightBytes, context: context)

        if json {
            try Console.printJSON([
                "layers": config.numLayers,
                "attention_sublayers": 2 * config.numLayers,
                "ffn_experts": config.numExperts,
                "zero_computation_experts": config.numZeroExperts,
                "top_k": config.topK,
                "total_parameters": total,
                "active_parameters_min": activeMin,
                "ngram_embedding_params": config.ngramParameters,
                "active_parameters_max": activeMax,
                "bytes_by_dtype": Dictionary(uniqueKeysWithValues: bytesByDType.map { ($0.key.rawValue, $0.value) }),
                "bytes_source": bytesSource,
                "weight_bytes": weightBytes,
                "kv_cache_bytes_per_token": config.kvCacheBytesPerToken,
                "context": context,
                "memory_estimate_bytes": memory.map { $0 as Any } ?? NSNull(),
                "path": URL(fileURLWithPath: model).standardizedFileURL.path,
            ])
            return
        }
        let c = config
        print("path:              \(URL(fileURLWithPath: model).standardizedFileURL.path)")
        print("layers:            \(c.numLayers) (each: 2 MLA + 2 dense MLP + 1 shortcut MoE)")
        print("hidden:            \(c.hiddenSize), \(c.numHeads) heads, q_lora \(c.qLoraRank), kv_lora \(c.kvLoraRank), vocab \(c.vocabSize)")
        print("experts:           \(c.numExperts) FFN + \(c.numZeroExperts) zero-computation (identity), top-\(c.topK) per token")
        print("parameters:        \(Formatting.count(total)) total (\(total))")
        if let ngram = c.ngram {
            print("N-gram embedding:  \(Formatting.count(c.ngramParameters)) (\(ngram.tableCount) tables of order 2-\(ngram.neighbors) and their projections; a token reads one row of each)")
        }
        print("active per token:  \(Formatting.count(activeMin)) (every pick an identity expert) to \(Formatting.count(activeMax)) (\(min(c.topK, c.numExperts)) FFN experts); one row of each embedding table counted")
        print("weights (\(bytesSource)):")
        for (dtype, bytes) in bytesByDType.sorted(by: { $0.value > $1.value }) {
            print("  \(dtype.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(Formatting.bytes(bytes))")
        }
        print("KV cache:          \(c.kvCacheBytesPerToken) bytes/token (latent \(c.kvLoraRank) + rope \(c.qkRopeHeadDim) floats x \(2 * c.numLayers) sublayers)")
        if let memory {
            print("memory at context \(context): \(Formatting.bytes(memory)) (weights \(Formatting.bytes(weightBytes)) + cache \(Formatting.bytes(memory - weightBytes)))")
        } else {
            print("memory at context \(context): more than 8 EiB (weights \(Formatting.bytes(weightBytes)) + the cache of \(context) positions)")
        }
    }
}
