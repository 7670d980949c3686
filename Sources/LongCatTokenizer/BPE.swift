import Foundation

/// The BPE model of tokenizer.json: a vocabulary and ranked merges. A piece starts as one symbol per
/// scalar and the lowest-ranked adjacent pair is merged until none applies (a heap over a linked list,
/// so long pieces stay O(n log n)). Results are cached per piece, as Hugging Face does.
final class BPEModel {
    let vocab: [String: Int]
    let idToToken: [Int: String]
    /// Single-scalar tokens, the starting symbols (an array for the BMP, where all byte-level symbols live).
    let bmpScalarToId: [Int32]
    let otherScalarToId: [UInt32: Int]
    /// (left id, right id) -> (rank, merged id)
    let merges: MergeTable
    let unkId: Int?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    let byteFallbackIds: [Int]?
    private var cache = PieceCache()
    /// The largest token id accepted (vocab and added tokens).
    static let maximumId = Int(Int32.max)
    private let lock = NSLock()

    init(json: [String: Any]) throws {
        guard let vocab = json["vocab"] as? [String: Any] else {
            throw TokenizerError.malformed(field: "model.vocab", reason: "must be an object of token -> id")
        }
        var v: [String: Int] = [:]
        var inverse: [Int: String] = [:]
        var scalars: [UInt32: Int] = [:]
        for (token, value) in vocab {
            guard let id = value as? Int, id >= 0 else { throw TokenizerError.malformed(field: "model.vocab", reason: "id of '\(token)' is not a non-negative integer") }
            // Ids are stored as Int32 in the merge table and the scalar map (tokenizers itself uses u32).
            guard id <= BPEModel.maximumId else {
                throw TokenizerError.malformed(field: "model.vocab", reason: "id of '\(token)' is \(id), above the largest supported id \(BPEModel.maximumId)")
            }
            v[token] = id
            inverse[id] = token
            let us = token.unicodeScalars
            if us.count == 1 { scalars[us.first!.value] = id }
        }
        self.vocab = v
        idToToken = inverse
        var bmp = [Int32](repeating: -1, count: 0x10000)
        for (c, id) in scalars where c < 0x10000 { bmp[Int(c)] = Int32(id) }
        bmpScalarToId = bmp
        otherScalarToId = scalars.filter { $0.key >= 0x10000 }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = json[key] as? String, !s.isEmpty { throw TokenizerError.unsupported(component: "model", detail: "BPE \(key) '\(s)'") }
        }
        if let dropout = json["dropout"] as? Double, dropout > 0 {
            throw TokenizerError.unsupported(component: "model", detail: "BPE dropout \(dropout) (training-time only)")
        }
        guard let mergeList = json["merges"] as? [Any] else { throw TokenizerError.malformed(field: "model.merges", reason: "must be a list") }
        var m = MergeTable(capacity: mergeList.count)
        for (rank, entry) in mergeList.enumerated() {
            let pair: [String]
            if let s = entry as? String {
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                pair = parts
            } else if let a = entry as? [String] {
                pair = a
            } else {
                throw TokenizerError.malformed(field: "model.merges[\(rank)]", reason: "must be \"a b\" or [\"a\", \"b\"]")
            }
            guard pair.count == 2, let left = v[pair[0]], let right = v[pair[1]], let merged = v[pair[0] + pair[1]] else {
                throw TokenizerError.malformed(field: "model.merges[\(rank)]", reason: "refers to tokens missing from the vocabulary")
            }
            m.insertIfAbsent(left: left, right: right, rank: Int32(rank), merged: Int32(merged))
        }
        merges = m
        if let unk = json["unk_token"] as? String {
            guard let id = v[unk] else { throw TokenizerError.malformed(field: "model.unk_token", reason: "'\(unk)' is not in the vocabulary") }
            unkId = id
        } else {
            unkId = nil
        }
        fuseUnk = json["fuse_unk"] as? Bool ?? false
        byteFallback = json["byte_fallback"] as? Bool ?? false
        ignoreMerges = json["ignore_merges"] as? Bool ?? false
        if byteFallback {
            byteFallbackIds = (0..<256).map { v[String(format: "<0x%02X>", $0)] ?? -1 }
        } else {
            byteFallbackIds = nil
        }
    }

    /// Ids of one pre-tokenized piece, appended to `out`.
    func encode(_ piece: UnsafeBufferPointer<UInt32>, into out: inout [Int]) {
        lock.lock()
        let hit = cache.lookup(piece, into: &out)
        lock.unlock()
        if hit { return }
        let ids = encodeUncached(Array(piece))
        lock.lock()
        cache.insert(piece, ids: ids)
        lock.unlock()
        out.append(contentsOf: ids)
    }

    func encodeUncached(_ piece: [UInt32]) -> [Int] {
        if ignoreMerges, let id = vocab[String(String.UnicodeScalarView(piece.compactMap(Unicode.Scalar.init)))] { return [id] }
        // Starting symbols; unknown scalars become byte-fallback tokens or unk.
        var symbols: [Int] = []
        symbols.reserveCapacity(piece.count)
        var lastWasUnk = false
        for c in piece {
            if let id = scalarId(c) {
                symbols.append(id)
                lastWasUnk = false
            } else if let fallback = byteFallbackIds, let scalar = Unicode.Scalar(c),
                      String(scalar).utf8.allSatisfy({ fallback[Int($0)] >= 0 }) {
                for b in String(scalar).utf8 { symbols.append(fallback[Int(b)]) }
                lastWasUnk = false
            } else if let unk = unkId {
                if !(fuseUnk && lastWasUnk) { symbols.append(unk) }
                lastWasUnk = true
            }
        }
        return merge(symbols)
    }

    @inline(__always) func scalarId(_ c: UInt32) -> Int? {
        if c < 0x10000 {
            let id = bmpScalarToId[Int(c)]
            return id >= 0 ? Int(id) : nil
        }
        return otherScalarToId[c]
    }

    /// Applies merges by rank (lowest first, leftmost on ties).
    func merge(_ start: [Int]) -> [Int] {
        let n = start.count
        if n < 2 { return start }
        if n <= 24 { return mergeShort(start) }
        return mergeLong(start)
    }

    /// Short pieces (nearly all of them): rescan the pairs after each merge; no allocation beyond the result.
    func mergeShort(_ start: [Int]) -> [Int] {
        var ids = start
        while ids.count > 1 {
            var bestRank = Int32.max, bestAt = -1, bestId: Int32 = 0
            for i in 0..<ids.count - 1 {
                if let m = merges.lookup(left: ids[i], right: ids[i + 1]), m.rank < bestRank {
                    bestRank = m.rank
                    bestAt = i
                    bestId = m.id
                }
            }
            guard bestAt >= 0 else { break }
            ids[bestAt] = Int(bestId)
            ids.remove(at: bestAt + 1)
        }
        return ids
    }

    /// Long pieces: a doubly linked list with a binary heap of candidate pairs, O(n log n).
    func mergeLong(_ start: [Int]) -> [Int] {
        let n = start.count
        var ids = start
        var prev = Array(-1..<(n - 1))
        var next = Array(1...n)
        next[n - 1] = -1
        var alive = [Bool](repeating: true, count: n)
        // Heap entries: (rank, position of left symbol, left id, right id); stale ones are skipped.
        var heap = Heap<MergeCandidate>()
        func consider(_ i: Int) {
            let j = next[i]
            guard j >= 0, let m = merges.lookup(left: ids[i], right: ids[j]) else { return }
            heap.push(MergeCandidate(rank: m.rank, position: Int32(i), left: Int32(ids[i]), right: Int32(ids[j])))
        }
        for i in 0..<n - 1 { consider(i) }
        while let top = heap.pop() {
            let i = Int(top.position)
            guard alive[i], ids[i] == Int(top.left) else { continue }
            let j = next[i]
            guard j >= 0, ids[j] == Int(top.right) else { continue }
            guard let m = merges.lookup(left: ids[i], right: ids[j]), m.rank == top.rank else { continue }
            ids[i] = Int(m.id)
            alive[j] = false
            next[i] = next[j]
            if next[j] >= 0 { prev[next[j]] = i }
            if prev[i] >= 0 { consider(prev[i]) }
            consider(i)
        }
        var out: [Int] = []
        var i = 0
        while i >= 0 {
            out.append(ids[i])
            i = next[i]
        }
        return out
    }
}

/// A candidate merge of the encoder's heap: the lowest rank merges first, leftmost on ties (as HF does).
struct MergeCandidate: HeapOrdered {
    var rank: Int32
    var position: Int32
    var left: Int32
    var right: Int32
    func before(_ o: MergeCandidate) -> Bool { rank != o.rank ? rank < o.rank : position < o.position }
}

/// Piece -> ids memo with keys and values in flat arenas: a lookup hashes the scalars in place and
/// allocates nothing. Cleared wholesale when full (text repeats words; a cold restart is cheap).
struct PieceCache {
    private struct Entry {
        var hash: UInt64
        var keyStart: Int32, keyCount: Int32
        var idsStart: Int32, idsCount: Int32
    }

    private var slots = [Int32](repeating: -1, count: 1 << 18)
    private var entries: [Entry] = []
    private var keys: [UInt32] = []
    private var ids: [Int32] = []
    private let maxEntries = 1 << 17
    private let maxPieceLength = 256

    private static func hash(_ piece: UnsafeBufferPointer<UInt32>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for c in piece { h = (h ^ UInt64(c)) &* 0x100_0000_01b3 }
        return h
    }

    /// Appends the cached ids of `piece` to `out` and returns true, or returns false.
    func lookup(_ piece: UnsafeBufferPointer<UInt32>, into out: inout [Int]) -> Bool {
        guard piece.count <= maxPieceLength else { return false }
        let h = Self.hash(piece)
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] >= 0 {
            let e = entries[Int(slots[i])]
            if e.hash == h && Int(e.keyCount) == piece.count
                && keys[Int(e.keyStart)..<Int(e.keyStart + e.keyCount)].elementsEqual(piece) {
                for k in Int(e.idsStart)..<Int(e.idsStart + e.idsCount) { out.append(Int(ids[k])) }
                return true
            }
            i = (i + 1) & mask
        }
        return false
    }

    mutating func insert(_ piece: UnsafeBufferPointer<UInt32>, ids newIds: [Int]) {
        guard piece.count <= maxPieceLength else { return }
        if entries.count >= maxEntries {
            slots = [Int32](repeating: -1, count: slots.count)
            entries.removeAll(keepingCapacity: true)
            keys.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
        }
        let h = Self.hash(piece)
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] >= 0 { i = (i + 1) & mask }
        slots[i] = Int32(entries.count)
        entries.append(Entry(hash: h, keyStart: Int32(keys.count), keyCount: Int32(piece.count),
                             idsStart: Int32(ids.count), idsCount: Int32(newIds.count)))
        keys.append(contentsOf: piece)
        ids.append(contentsOf: newIds.map { Int32($0) })
    }
}

/// Open-addressing hash table from a token pair to its merge (rank, merged id): merge lookups are the
/// inner loop of BPE, and a multiplicative hash with linear probing is several times faster than
/// Dictionary's seeded SipHash here.
struct MergeTable {
    private var keys: [UInt64]
    private var ranks: [Int32]
    private var merged: [Int32]
    private let mask: Int
    private static let empty = UInt64.max

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: size)
        ranks = [Int32](repeating: 0, count: size)
        merged = [Int32](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always) private func slot(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// Keeps the first (lowest-ranked) merge of a pair, as tokenizers does.
    mutating func insertIfAbsent(left: Int, right: Int, rank: Int32, merged id: Int32) {
        let key = UInt64(left) << 32 | UInt64(right)
        var i = slot(key)
        while keys[i] != Self.empty {
            if keys[i] == key { return }
            i = (i + 1) & mask
        }
        keys[i] = key
        ranks[i] = rank
        merged[i] = id
    }

    @inline(__always) func lookup(left: Int, right: Int) -> (rank: Int32, id: Int32)? {
        let key = UInt64(left) << 32 | UInt64(right)
        var i = slot(key)
        while true {
            let k = keys[i]
            if k == key { return (ranks[i], merged[i]) }
            if k == Self.empty { return nil }
            i = (i + 1) & mask
        }
    }
}
