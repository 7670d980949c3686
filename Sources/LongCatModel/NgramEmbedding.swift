import LongCatTensor

/// LongCat-Flash-Lite's input embedding (Tests/Fixtures/tiny-ngram/README.md has the math): beside the word
/// embedding E, m = k(n-1) tables T_i, each indexed by a hash of the current token and up to order(i) - 1 tokens
/// before it (the history restarts after an EOS), projected to the hidden size by P_i and averaged:
/// x = (E[t] + Σ P_i T_i[id_i]) / (1 + m). Tables stay mapped; a token reads one row of each.
struct NgramEmbedding {
    let config: NgramConfig
    let vocabSize: Int
    let endOfSequence: Set<Int>
    let tables: [WeightMatrix]
    let projections: [WeightMatrix]
    /// factors[i][j - 1] = V^j mod M_i, the weight of the token j places back in table i's hash.
    let factors: [[Int]]

    init(model: ModelConfig, ngram: NgramConfig, matrix: (String) throws -> WeightMatrix) throws {
        config = ngram
        vocabSize = model.vocabSize
        endOfSequence = Set(model.eosTokenIds)
        tables = try (0..<ngram.tableCount).map { try matrix(TensorName.ngramTable($0)) }
        projections = try (0..<ngram.tableCount).map { try matrix(TensorName.ngramProjection($0)) }
        factors = (0..<ngram.tableCount).map { i in
            let rows = ngram.rows(table: i)
            var power = 1
            return (1..<ngram.order(table: i)).map { _ in
                power = Self.mulMod(power, model.vocabSize, rows)
                return power
            }
        }
    }

    /// a * b mod m without overflow (all non-negative, m > 0).
    static func mulMod(_ a: Int, _ b: Int, _ m: Int) -> Int {
        let product = UInt(a).multipliedFullWidth(by: UInt(b))
        return Int(UInt(m).dividingFullWidth((product.high, product.low)).remainder)
    }

    /// The row each table reads for each of `tokens` ([table][token]), which follow `history` (the sequence so far;
    /// only its last n - 1 tokens matter). A token's history stops after the last EOS before it and at the start.
    func rowIds(tokens: [Int], history: ArraySlice<Int>) -> [[Int]] {
        let context = Array(history.suffix(config.neighbors - 1)) + tokens
        let first = context.count - tokens.count
        // For each new token, the tokens 1...n-1 places back that its hash may read (0 where there are none).
        let back: [[Int]] = (first..<context.count).map { q in
            var previous: [Int] = []
            for j in 1..<config.neighbors {
                let p = q - j
                guard p >= 0, !endOfSequence.contains(context[p]) else { break }
                previous.append(context[p])
            }
            return previous + Array(repeating: 0, count: config.neighbors - 1 - previous.count)
        }
        return (0..<config.tableCount).map { i in
            let rows = config.rows(table: i)
            return zip(tokens, back).map { token, previous in
                var id = token % rows
                for (j, factor) in factors[i].enumerated() { id = (id + Self.mulMod(previous[j], factor, rows)) % rows }
                return id
            }
        }
    }

    /// Turns `x` ([tokens][hidden], the word embedding rows of `tokens`) into the N-gram embedding.
    func apply(to x: UnsafeMutablePointer<Float>, tokens: [Int], history: ArraySlice<Int>, hidden: Int) {
        let ids = rowIds(tokens: tokens, history: history)
        let width = hidden / config.tableCount, n = tokens.count
        var rows = [Float](repeating: 0, count: n * width)
        for (i, table) in tables.enumerated() {
            rows.withUnsafeMutableBufferPointer { r in
                for (t, id) in ids[i].enumerated() { table.dequantizeRows(id..<id + 1, into: r.baseAddress! + t * width) }
            }
            let projected = projections[i].multiply(rows, tokens: n)
            for k in 0..<n * hidden { x[k] += projected[k] }
        }
        let scale = 1 / Float(1 + config.tableCount)
        for k in 0..<n * hidden { x[k] *= scale }
    }
}

extension LongCatModel {
    /// The row each N-gram table reads for each token of `sequence` ([table][position]; empty without tables).
    public func ngramRows(sequence: [Int]) -> [[Int]] {
        ngramEmbedding?.rowIds(tokens: sequence, history: []) ?? []
    }
}
