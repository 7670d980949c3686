/// The MLA cache of one sequence: for every attention sublayer (two per layer) and every position, only the
/// normalised latent `c_kv` (kv_lora_rank floats) and the rotated shared key `k_rope` (qk_rope_head_dim
/// floats). Keys and values per head are never stored; attention runs in the latent space.
public final class KVCache {
    /// One sublayer's rows: `width` floats per position, in a buffer that grows geometrically.
    final class Rows {
        let width: Int
        private(set) var pointer: UnsafeMutablePointer<Float>
        private(set) var capacity: Int
        var count = 0

        init(width: Int) {
            self.width = width
            capacity = 16
            pointer = .allocate(capacity: capacity * width)
        }

        deinit { pointer.deallocate() }

        func reserve(_ rows: Int) {
            guard rows > capacity else { return }
            let newCapacity = max(rows, capacity * 2)
            let grown = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * width)
            grown.update(from: pointer, count: count * width)
            pointer.deallocate()
            pointer = grown
            capacity = newCapacity
        }

        func append(_ values: UnsafePointer<Float>, rows: Int) {
            reserve(count + rows)
            (pointer + count * width).update(from: values, count: rows * width)
            count += rows
        }
    }

    public let latentWidth: Int
    public let ropeWidth: Int
    /// Most rows this cache accepts (the model's max_position_embeddings).
    public let capacity: Int
    /// Positions written by completed forward passes.
    public private(set) var count = 0
    /// The sequence position of the first cached row: 0, except for an MTP cache started after a reused prompt prefix
    /// (the head attends only to the rows it computed; rope still sees true positions).
    public let firstPosition: Int
    /// The token of each cached position: the history an N-gram embedding reads, kept with the positions (truncated
    /// and copied with them, so a reused prefix brings its own history).
    public private(set) var tokens: [Int] = []
    let latents: [Rows]
    let ropes: [Rows]

    /// The main model's cache: two attention sublayers per decoder layer.
    public convenience init(config: ModelConfig) {
        self.init(config: config, sublayers: 2 * config.numLayers)
    }

    /// The MTP head's cache: its one attention sublayer, one position behind the main model's; its first row is
    /// sequence position `firstPosition`.
    public static func mtp(config: ModelConfig, firstPosition: Int = 0) -> KVCache {
        KVCache(config: config, sublayers: 1, firstPosition: firstPosition)
    }

    init(config: ModelConfig, sublayers: Int, firstPosition: Int = 0) {
        self.firstPosition = firstPosition
        latentWidth = config.kvLoraRank
        ropeWidth = config.qkRopeHeadDim
        capacity = config.maxPositionEmbeddings
        latents = (0..<sublayers).map { _ in Rows(width: config.kvLoraRank) }
        ropes = (0..<sublayers).map { _ in Rows(width: config.qkRopeHeadDim) }
    }

    /// Attention sublayers with a cache (two per decoder layer).
    public var sublayers: Int { latents.count }

    /// Bytes per cached position (all sublayers).
    public var bytesPerPosition: Int { latents.count * (latentWidth + ropeWidth) * MemoryLayout<Float>.size }

    /// Bytes held for cached positions.
    public var byteCount: Int { count * bytesPerPosition }

    /// Drops every cached position.
    public func reset() {
        truncate(to: 0)
    }

    /// Keeps only the first `length` positions (for reusing a shared prefix).
    public func truncate(to length: Int) {
        precondition(length >= 0 && length <= count, "truncate beyond the cached positions")
        for r in latents + ropes { r.count = length }
        count = length
        tokens.removeLast(tokens.count - length)
    }

    /// Appends positions given as rows per sublayer (`latents[s]`: positions x latentWidth floats, `ropes[s]`:
    /// positions x ropeWidth), standing for `tokens` (a saved cache restored, or a long context made up for timing).
    public func append(latents newLatents: [[Float]], ropes newRopes: [[Float]], tokens newTokens: [Int]) {
        let positions = newTokens.count
        precondition(newLatents.count == latents.count && newRopes.count == ropes.count && count + positions <= capacity)
        for (rows, values) in zip(latents + ropes, newLatents + newRopes) {
            precondition(values.count == positions * rows.width, "rows of the wrong width")
            values.withUnsafeBufferPointer { rows.append($0.baseAddress!, rows: positions) }
        }
        count += positions
        tokens += newTokens
    }

    /// Copies positions `range` of `other` (same model) onto the end of this cache.
    public func append(positions range: Range<Int>, of other: KVCache) {
        precondition(other.latents.count == latents.count && range.upperBound <= other.count && count + range.count <= capacity)
        for (mine, theirs) in zip(latents + ropes, other.latents + other.ropes) {
            mine.append(theirs.pointer + range.lowerBound * theirs.width, rows: range.count)
        }
        count += range.count
        tokens += other.tokens[range]
    }

    /// Marks the positions of `newTokens`, appended to every sublayer, as part of the sequence.
    func commit(_ newTokens: [Int]) {
        count += newTokens.count
        tokens += newTokens
        assert(latents.allSatisfy { $0.count == count })
    }
}
