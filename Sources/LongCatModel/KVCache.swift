/// The MLA cache of one sequence: for every attention sublayer (two per layer) and every position, only the
/// normalised latent `c_kv` (kv_lora_rank floats) and the rotated shared key `k_rope` (qk_rope_head_dim
/// floats). Keys and values per head are never stored; attention runs in the latent space.
public final class KVCache {
    public let latentWidth: Int
    public let ropeWidth: Int
    /// Longest sequence this cache accepts (the model's max_position_embeddings).
    public let capacity: Int
    /// Positions written by completed forward passes.
    public private(set) var count = 0
    var latents: [[Float]]
    var ropes: [[Float]]

    public init(config: ModelConfig) {
        latentWidth = config.kvLoraRank
        ropeWidth = config.qkRopeHeadDim
        capacity = config.maxPositionEmbeddings
        latents = Array(repeating: [], count: 2 * config.numLayers)
        ropes = Array(repeating: [], count: 2 * config.numLayers)
    }

    /// Bytes held for cached positions.
    public var byteCount: Int {
        latents.reduce(0) { $0 + $1.count * 4 } + ropes.reduce(0) { $0 + $1.count * 4 }
    }

    /// Drops every cached position.
    public func reset() {
        for i in latents.indices {
            latents[i].removeAll()
            ropes[i].removeAll()
        }
        count = 0
    }

    /// Sublayer `s` gains positions count..<count+n (latents n x latentWidth, ropes n x ropeWidth).
    func append(sublayer s: Int, latents newLatents: [Float], ropes newRopes: [Float]) {
        latents[s].append(contentsOf: newLatents)
        ropes[s].append(contentsOf: newRopes)
    }

    /// Marks n appended positions as part of the sequence, once every sublayer has them.
    func commit(_ n: Int) {
        count += n
        assert(latents.allSatisfy { $0.count == count * latentWidth })
    }

    /// Undoes appends of a forward pass that failed part-way.
    func rollback() {
        for i in latents.indices {
            latents[i].removeSubrange((count * latentWidth)...)
            ropes[i].removeSubrange((count * ropeWidth)...)
        }
    }
}
