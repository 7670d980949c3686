import LongCatKernels

extension WeightMatrix {
    /// One matrix product: `tokens` rows of `x` (each `matrix.cols` long) into `tokens` rows of `y`.
    public struct Product {
        public var matrix: WeightMatrix
        public var x: UnsafePointer<Float>
        public var tokens: Int
        public var y: UnsafeMutablePointer<Float>

        public init(_ matrix: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>) {
            self.matrix = matrix
            self.x = x
            self.tokens = tokens
            self.y = y
        }
    }

    /// Runs several products in one parallel region: their row ranges are cut into pieces that the threads
    /// take one at a time. A decode step is a few hundred short products; waking the threads once for a
    /// group (gate and up, or every chosen expert) instead of once per product saves the joins in between.
    public static func multiply(_ products: [Product]) {
        var quantizedInputs: [UnsafeMutableRawPointer?] = []
        var owned: [UnsafeMutableRawPointer] = []
        defer { for p in owned { p.deallocate() } }
        for (i, p) in products.enumerated() {
            let m = p.matrix
            // Block-quantized products quantize their activations once, before the rows are split, and
            // products reading the same input in the same format (gate and up) share them.
            if let q = m.quantization {
                if let j = products[..<i].firstIndex(where: { $0.x == p.x && $0.tokens == p.tokens && $0.matrix.cols == m.cols && $0.matrix.quantization == q }) {
                    quantizedInputs.append(quantizedInputs[j])
                } else {
                    let stride = Int(lc_quant_activation_bytes(q.format, Int64(m.cols)))
                    let buffer = UnsafeMutableRawPointer.allocate(byteCount: p.tokens * stride, alignment: 64)
                    lc_quantize_activations(q.format, p.x, Int64(m.cols), Int64(p.tokens), Int64(m.cols), buffer)
                    quantizedInputs.append(buffer)
                    owned.append(buffer)
                }
            } else {
                quantizedInputs.append(nil)
            }
        }
        let pieces = Self.pieces(products)
        let inputs = quantizedInputs
        Parallel.forEach(pieces.count) { k in
            let piece = pieces[k], p = products[piece.product], m = p.matrix
            if m.quantization != nil {
                var q = m.quantizedRaw
                lc_qmatmul(&q, inputs[piece.product]!, Int64(p.tokens), p.y, Int64(m.rows), Int64(piece.begin), Int64(piece.end))
            } else {
                var raw = m.raw
                withUnsafeTemporaryAllocation(of: Float.self, capacity: Int(lc_matmul_scratch_floats(&raw, Int64(p.tokens)))) { scratch in
                    lc_matmul(&raw, p.x, Int64(m.cols), Int64(p.tokens), p.y, Int64(m.rows), Int64(piece.begin), Int64(piece.end),
                              scratch.baseAddress!)
                }
            }
        }
    }

    /// Row ranges of the products for the threads to take in order. Pieces shrink as the group's work runs
    /// out (guided scheduling): large while much is left, so claims are few, and ~32K multiply-adds (a few
    /// microseconds) at the end, so the threads finish within a small piece of each other. With equal
    /// pieces a thread waited half a piece at every join, ~6% of a decode step.
    static func pieces(_ products: [Product]) -> [(product: Int, begin: Int, end: Int)] {
        let threads = Parallel.threadCount
        if threads == 1 { return products.indices.map { ($0, 0, products[$0].matrix.rows) } }
        var remaining = products.reduce(0) { $0 + $1.matrix.rows * $1.matrix.cols * $1.tokens }
        var pieces: [(product: Int, begin: Int, end: Int)] = []
        for (i, p) in products.enumerated() {
            let m = p.matrix, perRow = max(1, m.cols * p.tokens)
            // Packed GEMM works on 16-row panels; the other kernels on 4 rows.
            let granule = p.tokens >= 32 ? 16 : 4
            var begin = 0
            while begin < m.rows {
                let work = max(1 << 15, remaining / (2 * threads))
                var size = (work + perRow - 1) / perRow
                size = (size + granule - 1) / granule * granule
                let end = min(m.rows, begin + size)
                pieces.append((i, begin, end))
                remaining -= (end - begin) * perRow
                begin = end
            }
        }
        return pieces
    }
}
