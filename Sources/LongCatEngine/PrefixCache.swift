import LongCatModel

/// Latents of prompt prefixes that earlier requests computed, kept in a trie of fixed-size token blocks
/// so a request sharing a system prompt or chat history copies them instead of recomputing. Latents of a
/// position depend only on the tokens up to it, so a block is valid wherever its whole path matches.
/// Least-recently-used leaves are evicted past the token budget.
final class PrefixCache {
    final class Node {
        let tokens: [Int]
        /// This block's latents (blockSize positions).
        let block: KVCache?
        var children: [[Int]: Node] = [:]
        weak var parent: Node?
        var lastUsed: UInt64 = 0

        init(tokens: [Int], block: KVCache?, parent: Node?) {
            self.tokens = tokens
            self.block = block
            self.parent = parent
        }
    }

    let blockSize: Int
    let capacityTokens: Int
    private let root = Node(tokens: [], block: nil, parent: nil)
    private(set) var cachedTokens = 0
    private var clock: UInt64 = 0

    init(blockSize: Int, capacityTokens: Int) {
        precondition(blockSize > 0)
        self.blockSize = blockSize
        self.capacityTokens = capacityTokens
    }

    /// Copies the longest cached prefix of `tokens` (whole blocks, leaving at least `keepLast` tokens
    /// to compute) into the empty `cache`; returns how many positions it filled.
    func restore(_ tokens: [Int], into cache: KVCache, keepLast: Int = 1) -> Int {
        precondition(cache.count == 0)
        clock += 1
        var node = root
        var filled = 0
        while filled + blockSize <= tokens.count - keepLast,
              let child = node.children[Array(tokens[filled..<filled + blockSize])] {
            cache.append(positions: 0..<blockSize, of: child.block!)
            child.lastUsed = clock
            node = child
            filled += blockSize
        }
        return filled
    }

    /// Records the whole blocks of `tokens` whose latents `cache` holds (positions 0..<cache.count).
    func insert(_ tokens: [Int], from cache: KVCache, model: LongCatModel) {
        guard capacityTokens > 0 else { return }
        clock += 1
        var node = root
        var start = 0
        while start + blockSize <= min(tokens.count, cache.count) {
            let key = Array(tokens[start..<start + blockSize])
            if let child = node.children[key] {
                node = child
            } else {
                let block = KVCache(config: model.config)
                block.append(positions: start..<start + blockSize, of: cache)
                let child = Node(tokens: key, block: block, parent: node)
                node.children[key] = child
                cachedTokens += blockSize
                node = child
            }
            node.lastUsed = clock
            start += blockSize
        }
        evict()
    }

    /// Drops least-recently-used leaves until the budget holds.
    private func evict() {
        while cachedTokens > capacityTokens {
            var oldest: Node?
            func visit(_ n: Node) {
                if n.children.isEmpty, n !== root, oldest == nil || n.lastUsed < oldest!.lastUsed { oldest = n }
                for c in n.children.values { visit(c) }
            }
            visit(root)
            guard let leaf = oldest, let parent = leaf.parent else { return }
            parent.children[leaf.tokens] = nil
            cachedTokens -= blockSize
        }
    }
}
