import LongCatKernels

extension WeightMatrix {
    /// Block quantization of weights (kernels in quant.c): every 32 weights of a row share one float16 scale.
    /// q8 stores int8 quants (1.06 bytes a weight), q4 nibbles (0.56 bytes a weight), against 2 for BF16.
    public enum Quantization: String, CaseIterable, Sendable {
        case q8, q4

        /// Weights per block.
        public static let blockSize = Int(LC_QUANT_BLOCK)

        /// Whether a matrix with this many columns can be block-quantized.
        public static func supports(cols: Int) -> Bool { cols > 0 && cols % blockSize == 0 }

        /// Bytes of quants in a row of `cols` weights.
        public func rowBytes(cols: Int) -> Int { self == .q8 ? cols : cols / 2 }

        /// The element type of the quants in a safetensors file: I8 for q8, U8 (two nibbles a byte) for q4.
        public var dtype: DType { self == .q8 ? .i8 : .u8 }

        var format: Int32 { Int32(self == .q8 ? LC_QUANT_Q8.rawValue : LC_QUANT_Q4.rawValue) }
    }

    /// A block-quantized matrix over `quants` ([rows][quantization.rowBytes(cols)]) and float16 `scales`
    /// ([rows][cols / 32]), laid out as lc_quant.h describes.
    public init(
        rows: Int, cols: Int, quantization: Quantization, quants: UnsafeRawPointer, scales: UnsafeRawPointer,
        storage: [ByteStorage]
    ) {
        precondition(Quantization.supports(cols: cols), "block-quantized matrices need a multiple of \(Quantization.blockSize) columns")
        self.rows = rows
        self.cols = cols
        self.dtype = quantization.dtype
        self.data = quants
        self.scales = scales
        self.blockShape = nil
        self.quantization = quantization
        self.storage = storage
    }

    /// An owned copy quantized to `format` (from any dtype, through float32 row by row). A matrix already in
    /// `format` is returned as it is. Rows are independent, so the result does not depend on the threads.
    public func quantized(_ format: Quantization) -> WeightMatrix {
        precondition(Quantization.supports(cols: cols), "\(rows)x\(cols): columns are not a multiple of \(Quantization.blockSize)")
        if quantization == format { return self }
        let rowBytes = format.rowBytes(cols: cols), blocks = cols / Quantization.blockSize
        let quants = OwnedBytes(count: rows * rowBytes)
        let scales = OwnedBytes(count: rows * blocks * 2)
        let rowsPerStep = max(1, (1 << 14) / cols)
        Parallel.forEachChunk(rows, minimumPerChunk: rowsPerStep) { begin, end in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: rowsPerStep * cols) { buffer in
                let floats = buffer.baseAddress!
                for first in stride(from: begin, to: end, by: rowsPerStep) {
                    let last = min(end, first + rowsPerStep)
                    dequantizeRows(first..<last, into: floats)
                    lc_quantize_rows(
                        format.format, floats, Int64(last - first), Int64(cols), quants.pointer + first * rowBytes,
                        (scales.pointer + first * blocks * 2).assumingMemoryBound(to: UInt16.self))
                }
            }
        }
        return WeightMatrix(
            rows: rows, cols: cols, quantization: format, quants: quants.pointer, scales: scales.pointer,
            storage: [quants, scales])
    }

    /// The quants and float16 scales of a q8/q4 matrix as stored (for writing them to a file); nil otherwise.
    public var quantizedBytes: (quants: UnsafeRawBufferPointer, scales: UnsafeRawBufferPointer)? {
        guard let q = quantization, let scales else { return nil }
        return (UnsafeRawBufferPointer(start: data, count: rows * q.rowBytes(cols: cols)),
                UnsafeRawBufferPointer(start: scales, count: rows * cols / Quantization.blockSize * 2))
    }

    var quantizedRaw: lc_qmatrix {
        var m = lc_qmatrix()
        m.quants = data
        m.scales = scales?.assumingMemoryBound(to: UInt16.self)
        m.rows = Int64(rows)
        m.cols = Int64(cols)
        m.format = quantization!.format
        return m
    }
}
