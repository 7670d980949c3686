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
        var pieces: [(product: Int, begin: Int, end: Int)] = []
        let totalRows = products.reduce(0) { $0 + $1.matrix.rows }
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
            // About four pieces per thread over the whole group, none under ~64K multiply-adds.
            let minRows = max(4, (1 << 16) / max(1, m.cols * p.tokens))
            let share = max(1, m.rows * 4 * Parallel.threadCount / max(1, totalRows))
            var size = max(minRows, (m.rows + share - 1) / share)
            size = (size + 3) / 4 * 4
            for begin in stride(from: 0, to: m.rows, by: size) { pieces.append((i, begin, min(m.rows, begin + size))) }
        }
        let inputs = quantizedInputs
        Parallel.forEach(pieces.count) { k in
            let piece = pieces[k], p = products[piece.product], m = p.matrix
            if m.quantization != nil {
                var q = m.quantizedRaw
                lc_qmatmul(&q, inputs[piece.product]!, Int64(p.tokens), p.y, Int64(m.rows), Int64(piece.begin), Int64(piece.end))
            } else {
                var raw = m.raw
                withUnsafeTemporaryAllocation(of: Float.self, capacity: Int(lc_matmul_scratch_floats(&raw))) { scratch in
                    lc_matmul(&raw, p.x, Int64(m.cols), Int64(p.tokens), p.y, Int64(m.rows), Int64(piece.begin), Int64(piece.end),
                              scratch.baseAddress!)
                }
            }
        }
    }
}
