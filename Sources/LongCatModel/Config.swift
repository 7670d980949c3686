import Foundation
import LongCatTensor

/// Rotary embedding settings: plain RoPE or YaRN, following transformers' `rope_parameters` rules.
public struct RopeConfig: Equatable, Sendable {
    public enum Kind: String, Sendable { case `default`, yarn }
    public var kind: Kind
    public var theta: Double
    // YaRN only
    public var factor: Double = 1
    public var originalMaxPositions: Int?
    public var betaFast: Double = 32
    public var betaSlow: Double = 1
    public var mscale: Double?
    public var mscaleAllDim: Double?
    public var attentionFactor: Double?
    public var truncate: Bool = true
}

/// LongCat-Flash-Lite's N-gram input embedding: m = k(n-1) hashed tables beside the word embedding
/// (`emb_neighbor_num` n, `emb_split_num` k, `ngram_vocab_size_ratio`); math in Tests/Fixtures/tiny-ngram/README.md.
public struct NgramConfig: Equatable, Sendable {
    /// n: a table of order o reads the current token and o - 1 before it, o = 2...n.
    public var neighbors: Int
    /// k: tables per order.
    public var splits: Int
    /// ratio x vocab_size, the base row count of every table.
    public var baseRows: Int

    public init(neighbors: Int, splits: Int, baseRows: Int) {
        self.neighbors = neighbors
        self.splits = splits
        self.baseRows = baseRows
    }

    /// m = k(n-1) tables.
    public var tableCount: Int { splits * (neighbors - 1) }
    /// Rows of table i: ratio x V + 2i + 1.
    public func rows(table i: Int) -> Int { baseRows + 2 * i + 1 }
    /// How many tokens table i hashes: the current one and order - 1 before it.
    public func order(table i: Int) -> Int { 2 + i / splits }
}

/// A LongCat-Flash model shape, read from config.json in either spelling seen in the wild: the official
/// release (`rope_theta` at top level, `zero_expert_type`, `mla_scale_*_lora`, `quantization_config`) or
/// transformers' (`rope_parameters`, `head_dim`, aliases such as `num_experts_per_tok`).
public struct ModelConfig: Equatable, Sendable {
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var qLoraRank: Int
    public var kvLoraRank: Int
    public var qkNopeHeadDim: Int
    public var qkRopeHeadDim: Int
    public var vHeadDim: Int
    public var ffnHiddenSize: Int
    public var expertFFNHiddenSize: Int
    public var numExperts: Int
    public var numZeroExperts: Int
    public var topK: Int
    public var routedScalingFactor: Float
    public var rmsNormEps: Float
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    public var mlaScaleQLora: Bool
    public var mlaScaleKVLora: Bool
    public var rope: RopeConfig
    /// FP8 block shape from `quantization_config.weight_block_size`, when the release is FP8.
    public var fp8BlockSize: [Int]?
    /// q8/q4 blocks of a checkpoint written by `longcat quantize` (`quantization_config.quant_method = "longcat"`).
    public var blockQuantization: WeightMatrix.Quantization?
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    /// `torch_dtype` / `dtype` as written (informational: actual dtypes come from the weight files).
    public var declaredDType: String?
    /// LongCat-Flash-Lite (`LongcatFlashNgramForCausalLM`) only.
    public var ngram: NgramConfig?
    /// `num_nextn_predict_layers`: multi-token-prediction layers (0 or 1) that `init` writes. A loaded checkpoint has an
    /// MTP head when its files hold `model.mtp.*`, whatever this says (the official configs leave the key out).
    public var mtpLayers: Int

    public var qkHeadDim: Int { qkNopeHeadDim + qkRopeHeadDim }
    public var totalExperts: Int { numExperts + numZeroExperts }
    /// Epsilon of the MLA-internal norms (q_a_layernorm, kv_a_layernorm), fixed by the reference.
    public var latentNormEps: Float { 1e-6 }

    public static func load(path: String) throws -> ModelConfig {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigError.unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw ConfigError.unreadable(path: path, reason: "not valid JSON")
        }
        guard let object = json as? [String: Any] else {
            throw ConfigError.unreadable(path: path, reason: "top level is not a JSON object")
        }
        return try ModelConfig(json: object)
    }

    public init(json: [String: Any]) throws {
        let r = FieldReader(json)
        hiddenSize = try r.positiveInt("hidden_size")
        numLayers = try r.positiveInt("num_layers")
        numHeads = try r.positiveInt("num_attention_heads")
        if json["q_lora_rank"] is NSNull {
            throw ConfigError.invalidValue(field: "q_lora_rank", reason: "is null (no query LoRA), which LongCat-Flash never uses and this engine does not support")
        }
        qLoraRank = try r.positiveInt("q_lora_rank")
        kvLoraRank = try r.positiveInt("kv_lora_rank")
        qkNopeHeadDim = try r.positiveInt("qk_nope_head_dim")
        qkRopeHeadDim = try r.positiveInt("qk_rope_head_dim")
        vHeadDim = try r.positiveInt("v_head_dim")
        ffnHiddenSize = try r.positiveInt("ffn_hidden_size", aliases: ["intermediate_size"])
        expertFFNHiddenSize = try r.positiveInt("expert_ffn_hidden_size", aliases: ["moe_intermediate_size"])
        numExperts = try r.positiveInt("n_routed_experts")
        numZeroExperts = try r.optionalInt("zero_expert_num") ?? 0
        topK = try r.positiveInt("moe_topk", aliases: ["num_experts_per_tok"])
        routedScalingFactor = Float(try r.optionalDouble("routed_scaling_factor") ?? 1)
        rmsNormEps = Float(try r.optionalDouble("rms_norm_eps") ?? 1e-5)
        vocabSize = try r.positiveInt("vocab_size")
        maxPositionEmbeddings = try r.positiveInt("max_position_embeddings")
        tieWordEmbeddings = try r.optionalBool("tie_word_embeddings") ?? false
        mlaScaleQLora = try r.optionalBool("mla_scale_q_lora") ?? true
        mlaScaleKVLora = try r.optionalBool("mla_scale_kv_lora") ?? true
        bosTokenId = try r.optionalInt("bos_token_id")
        eosTokenIds = try r.intOrIntList("eos_token_id")
        declaredDType = (json["torch_dtype"] as? String) ?? (json["dtype"] as? String)
        rope = try Self.parseRope(r)
        ngram = try Self.parseNgram(r, vocabSize: vocabSize, hiddenSize: hiddenSize)
        mtpLayers = try r.optionalInt("num_nextn_predict_layers") ?? 0
        (fp8BlockSize, blockQuantization) = try Self.parseQuantization(json["quantization_config"])
        try validate(r)
    }

    /// Checks the fields against each other and rejects features this engine does not implement.
    private func validate(_ r: FieldReader) throws {
        if numZeroExperts < 0 { throw ConfigError.invalidValue(field: "zero_expert_num", reason: "must not be negative") }
        if !(0...1).contains(mtpLayers) {
            throw ConfigError.invalidValue(field: "num_nextn_predict_layers", reason: "is \(mtpLayers); LongCat-Flash has 0 or 1 multi-token-prediction layers")
        }
        try checkSizes()  // first: the checks below add and multiply fields
        if let type = r.json["zero_expert_type"], !(type is NSNull) {
            guard let s = type as? String else { throw ConfigError.wrongType(field: "zero_expert_type", expected: "a string") }
            guard s == "identity" else {
                throw ConfigError.invalidValue(field: "zero_expert_type", reason: "is '\(s)'; only 'identity' is defined")
            }
        }
        if topK > totalExperts {
            throw ConfigError.invalidValue(field: "moe_topk", reason: "is \(topK) but there are only \(totalExperts) experts (n_routed_experts + zero_expert_num)")
        }
        if let headDim = try r.optionalInt("head_dim"), headDim != qkRopeHeadDim {
            throw ConfigError.invalidValue(field: "head_dim", reason: "is \(headDim) but the rotary dimension qk_rope_head_dim is \(qkRopeHeadDim)")
        }
        if let qkHead = try r.optionalInt("qk_head_dim"), qkHead != qkHeadDim {
            throw ConfigError.invalidValue(field: "qk_head_dim", reason: "is \(qkHead) but qk_nope_head_dim + qk_rope_head_dim is \(qkHeadDim)")
        }
        if let kvHeads = try r.optionalInt("num_key_value_heads"), kvHeads != numHeads {
            throw ConfigError.invalidValue(field: "num_key_value_heads", reason: "is \(kvHeads); MLA needs it equal to num_attention_heads (\(numHeads))")
        }
        if qkRopeHeadDim % 2 != 0 {
            throw ConfigError.invalidValue(field: "qk_rope_head_dim", reason: "must be even (rotary pairs)")
        }
        if try r.optionalBool("attention_bias") == true {
            throw ConfigError.invalidValue(field: "attention_bias", reason: "is true; LongCat-Flash has no attention bias and this engine does not support it")
        }
        if let act = r.json["hidden_act"] as? String, act != "silu" {
            throw ConfigError.invalidValue(field: "hidden_act", reason: "is '\(act)'; only 'silu' is supported")
        }
        if !(rmsNormEps > 0) { throw ConfigError.invalidValue(field: "rms_norm_eps", reason: "must be positive") }
        if !routedScalingFactor.isFinite {
            throw ConfigError.invalidValue(field: "routed_scaling_factor", reason: "must be a finite number")
        }
        for (field, id) in [("bos_token_id", bosTokenId)] + eosTokenIds.map({ ("eos_token_id", $0) }) {
            if let id, !(0..<vocabSize).contains(id) {
                throw ConfigError.invalidValue(field: field, reason: "is \(id), outside the vocabulary 0..<\(vocabSize) (vocab_size)")
            }
        }
        try Self.checkArchitecture(r)
    }

    /// The architectures this engine runs, as config.json's `architectures` names them.
    public static let supportedArchitectures = ["LongcatFlashForCausalLM", "LongcatFlashNgramForCausalLM"]

    /// Whether the config describes LongCat-Flash-Lite: by `architectures`, else by `model_type`.
    static func isNgram(_ json: [String: Any]) -> Bool {
        if let names = json["architectures"] as? [Any] { return names.contains { $0 as? String == "LongcatFlashNgramForCausalLM" } }
        return json["model_type"] as? String == "longcat_flash_ngram"
    }

    private static func parseNgram(_ r: FieldReader, vocabSize: Int, hiddenSize: Int) throws -> NgramConfig? {
        guard isNgram(r.json) else { return nil }
        let n = try r.positiveInt("emb_neighbor_num"), k = try r.positiveInt("emb_split_num")
        guard let ratio = try r.optionalDouble("ngram_vocab_size_ratio") else { throw ConfigError.missingField("ngram_vocab_size_ratio") }
        guard n >= 2 else { throw ConfigError.invalidValue(field: "emb_neighbor_num", reason: "must be at least 2, got \(n)") }
        guard ratio > 0, ratio * Double(vocabSize) < maxParameters else {
            throw ConfigError.invalidValue(field: "ngram_vocab_size_ratio", reason: "must be positive and keep the tables addressable")
        }
        guard Double(k) * Double(n - 1) <= 4096 else {
            throw ConfigError.invalidValue(field: "emb_split_num", reason: "times emb_neighbor_num - 1 must be at most 4096 tables")
        }
        let config = NgramConfig(neighbors: n, splits: k, baseRows: Int(ratio * Double(vocabSize)))
        guard hiddenSize % config.tableCount == 0 else {
            throw ConfigError.invalidValue(
                field: "emb_split_num", reason: "times emb_neighbor_num - 1 (\(config.tableCount) tables) must divide hidden_size \(hiddenSize)")
        }
        return config
    }

    /// `architectures` (or, without it, `model_type`) must name LongCat-Flash: another model's config would
    /// otherwise load as far as its field names happen to match.
    private static func checkArchitecture(_ r: FieldReader) throws {
        if let value = r.json["architectures"], !(value is NSNull) {
            guard let names = value as? [Any], !names.isEmpty, names.allSatisfy({ $0 is String }) else {
                throw ConfigError.wrongType(field: "architectures", expected: "a non-empty list of strings")
            }
            let given = names.compactMap { $0 as? String }
            guard given.contains(where: supportedArchitectures.contains) else {
                throw ConfigError.unsupportedArchitecture(found: given.joined(separator: ", "), supported: supportedArchitectures)
            }
        } else if let type = try r.optionalString("model_type"), !["longcat_flash", "longcat_flash_ngram"].contains(type) {
            throw ConfigError.unsupportedArchitecture(found: "model_type '\(type)'", supported: supportedArchitectures)
        }
    }

    /// Largest parameter count accepted: four bytes a parameter must still fit in a 64-bit size, so every size
    /// computed from the config (counts, bytes, offsets) is exact and cannot overflow.
    public static let maxParameters = Double(1 << 60)

    /// Checks, in floating point (which cannot overflow), that every tensor's size and the total stay below
    /// `maxParameters`, before any of them is computed in integers.
    private func checkSizes() throws {
        let dims: [(String, Double)] = [
            ("num_attention_heads x (qk_nope_head_dim + qk_rope_head_dim)", Double(numHeads) * (Double(qkNopeHeadDim) + Double(qkRopeHeadDim))),
            ("num_attention_heads x (qk_nope_head_dim + v_head_dim)", Double(numHeads) * (Double(qkNopeHeadDim) + Double(vHeadDim))),
            ("kv_lora_rank + qk_rope_head_dim", Double(kvLoraRank) + Double(qkRopeHeadDim)),
            ("n_routed_experts + zero_expert_num", Double(numExperts) + Double(numZeroExperts)),
            ("num_layers x n_routed_experts", Double(numLayers) * Double(numExperts)),
            ("vocab_size x hidden_size", Double(vocabSize) * Double(hiddenSize)),
            ("n_routed_experts x expert_ffn_hidden_size x hidden_size", Double(numExperts) * Double(expertFFNHiddenSize) * Double(hiddenSize)),
            ("num_layers x hidden_size x ffn_hidden_size", Double(numLayers) * Double(hiddenSize) * Double(ffnHiddenSize)),
            ("num_layers x (kv_lora_rank + qk_rope_head_dim)", Double(numLayers) * (Double(kvLoraRank) + Double(qkRopeHeadDim))),
        ]
        for (what, value) in dims where value > Self.maxParameters {
            throw ConfigError.tooLarge(detail: "\(what) = \(String(format: "%.3g", value))")
        }
        // Now the integer shapes exist without overflow; the groups' totals are checked the same way.
        var total = 0.0
        for (spec, count) in tensorGroups {
            let elements = spec.shape.reduce(1.0) { $0 * Double($1) } * Double(count)
            total += elements
            if elements > Self.maxParameters || total > Self.maxParameters {
                throw ConfigError.tooLarge(detail: "\(String(format: "%.3g", total)) parameters by \(spec.name) \(spec.shape) x \(count)")
            }
        }
    }

    private static func parseRope(_ r: FieldReader) throws -> RopeConfig {
        // transformers: rope_parameters{rope_type, rope_theta, ...}; official/older: rope_theta (+ rope_scaling).
        var params: [String: Any] = [:]
        var field = "rope_parameters"
        if let p = r.json["rope_parameters"], !(p is NSNull) {
            guard let d = p as? [String: Any] else { throw ConfigError.wrongType(field: "rope_parameters", expected: "an object") }
            params = d
        } else if let p = r.json["rope_scaling"], !(p is NSNull) {
            guard let d = p as? [String: Any] else { throw ConfigError.wrongType(field: "rope_scaling", expected: "an object") }
            params = d
            field = "rope_scaling"
        }
        let pr = FieldReader(params, prefix: field + ".")
        let theta = try pr.optionalDouble("rope_theta") ?? r.optionalDouble("rope_theta")
        guard let theta else { throw ConfigError.missingField("rope_theta") }
        guard theta > 0 else { throw ConfigError.invalidValue(field: "rope_theta", reason: "must be positive") }
        let typeName = try pr.optionalString("rope_type", aliases: ["type"]) ?? "default"
        guard let kind = RopeConfig.Kind(rawValue: typeName) else {
            throw ConfigError.invalidValue(field: field + ".rope_type", reason: "is '\(typeName)'; supported: default, yarn")
        }
        var rope = RopeConfig(kind: kind, theta: theta)
        guard kind == .yarn else { return rope }
        guard let factor = try pr.optionalDouble("factor") else { throw ConfigError.missingField(field + ".factor") }
        guard factor >= 1 else { throw ConfigError.invalidValue(field: field + ".factor", reason: "must be at least 1") }
        rope.factor = factor
        rope.originalMaxPositions = try pr.optionalInt("original_max_position_embeddings")
        if let o = rope.originalMaxPositions, o <= 0 {
            throw ConfigError.invalidValue(field: field + ".original_max_position_embeddings", reason: "must be positive")
        }
        rope.betaFast = try pr.optionalDouble("beta_fast") ?? 32
        rope.betaSlow = try pr.optionalDouble("beta_slow") ?? 1
        rope.mscale = try pr.optionalDouble("mscale")
        rope.mscaleAllDim = try pr.optionalDouble("mscale_all_dim")
        rope.attentionFactor = try pr.optionalDouble("attention_factor")
        rope.truncate = try pr.optionalBool("truncate") ?? true
        return rope
    }

    private static func parseQuantization(_ value: Any?) throws -> (fp8Block: [Int]?, blocks: WeightMatrix.Quantization?) {
        guard let value, !(value is NSNull) else { return (nil, nil) }
        guard let q = value as? [String: Any] else { throw ConfigError.wrongType(field: "quantization_config", expected: "an object") }
        let qr = FieldReader(q, prefix: "quantization_config.")
        let method = try qr.optionalString("quant_method") ?? "fp8"
        if method == "longcat" { return (nil, try parseBlockQuantization(qr)) }
        guard method == "fp8" else {
            throw ConfigError.invalidValue(
                field: "quantization_config.quant_method",
                reason: "is '\(method)'; supported: 'fp8' (FP8 releases), 'longcat' (written by longcat quantize)")
        }
        if let fmt = try qr.optionalString("fmt"), fmt != "e4m3" {
            throw ConfigError.invalidValue(field: "quantization_config.fmt", reason: "is '\(fmt)'; only 'e4m3' is supported")
        }
        guard let block = SafeTensorsFile.intArray(q["weight_block_size"] ?? [128, 128]), block.count == 2, block.allSatisfy({ $0 > 0 }) else {
            throw ConfigError.invalidValue(field: "quantization_config.weight_block_size", reason: "must be two positive integers")
        }
        return (block, nil)
    }

    private static func parseBlockQuantization(_ qr: FieldReader) throws -> WeightMatrix.Quantization {
        guard let name = try qr.optionalString("format") else { throw ConfigError.missingField("quantization_config.format") }
        guard let format = WeightMatrix.Quantization(rawValue: name) else {
            throw ConfigError.invalidValue(field: "quantization_config.format", reason: "is '\(name)'; supported: q8, q4")
        }
        let blockSize = WeightMatrix.Quantization.blockSize
        if let block = try qr.optionalInt("block_size"), block != blockSize {
            throw ConfigError.invalidValue(field: "quantization_config.block_size", reason: "is \(block); only \(blockSize) is supported")
        }
        return format
    }
}

/// Typed access to config fields with errors that name the field.
struct FieldReader {
    let json: [String: Any]
    var prefix = ""

    init(_ json: [String: Any], prefix: String = "") {
        self.json = json
        self.prefix = prefix
    }

    private func lookup(_ key: String, _ aliases: [String]) -> (String, Any)? {
        for k in [key] + aliases {
            if let v = json[k], !(v is NSNull) { return (k, v) }
        }
        return nil
    }

    func optionalInt(_ key: String, aliases: [String] = []) throws -> Int? {
        guard let (k, v) = lookup(key, aliases) else { return nil }
        guard let n = Self.integer(v) else { throw ConfigError.wrongType(field: prefix + k, expected: "an integer") }
        return n
    }

    /// A whole number, from JSONSerialization's NSNumbers or from native Swift values (a dictionary built in
    /// code holds Int and Double, which do not cast to each other); never a boolean or a string.
    static func integer(_ v: Any) -> Int? {
        if v is String || isJSONBoolean(v) { return nil }
        if let n = v as? Int { return n }
        if let d = v as? Double { return Int(exactly: d) }
        return nil
    }

    /// A finite number, from NSNumbers or native Swift Int/Double/Float; never a boolean or a string.
    static func number(_ v: Any) -> Double? {
        if v is String || isJSONBoolean(v) { return nil }
        let d = (v as? Double) ?? (v as? Int).map(Double.init) ?? (v as? Float).map(Double.init)
        guard let d, d.isFinite else { return nil }
        return d
    }

    func positiveInt(_ key: String, aliases: [String] = []) throws -> Int {
        guard let n = try optionalInt(key, aliases: aliases) else { throw ConfigError.missingField(prefix + key) }
        guard n > 0 else {
            // Name the spelling the file actually uses (an alias such as intermediate_size), as wrongType does.
            let used = lookup(key, aliases)?.0 ?? key
            throw ConfigError.invalidValue(field: prefix + used, reason: "must be a positive integer, got \(n)")
        }
        return n
    }

    func optionalDouble(_ key: String) throws -> Double? {
        guard let (k, v) = lookup(key, []) else { return nil }
        guard let d = Self.number(v) else { throw ConfigError.wrongType(field: prefix + k, expected: "a number") }
        return d
    }

    /// A string field; a value of another type is an error, not a silent fallback to the default.
    func optionalString(_ key: String, aliases: [String] = []) throws -> String? {
        guard let (k, v) = lookup(key, aliases) else { return nil }
        guard let s = v as? String else { throw ConfigError.wrongType(field: prefix + k, expected: "a string") }
        return s
    }

    func optionalBool(_ key: String) throws -> Bool? {
        guard let (k, v) = lookup(key, []) else { return nil }
        guard let b = v as? Bool, !(v is String) else { throw ConfigError.wrongType(field: prefix + k, expected: "true or false") }
        return b
    }

    func intOrIntList(_ key: String) throws -> [Int] {
        guard let (k, v) = lookup(key, []) else { return [] }
        if let n = try? optionalInt(key) { return [n] }
        guard let list = SafeTensorsFile.intArray(v) else {
            throw ConfigError.wrongType(field: prefix + k, expected: "an integer or a list of integers")
        }
        return list
    }
}
