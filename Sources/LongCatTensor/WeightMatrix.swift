import LongCatKernels

/// Memory that a view borrows from: a memory-mapped file or an owned allocation. Views keep it alive.
public protocol ByteStorage: AnyObject {}

/// An owned, aligned allocation (used for weights made in memory: tests, `init`, conversions).
public final class OwnedBytes: ByteStorage {
    public let pointer: UnsafeMutableRawPointer
    public let count: Int

    public init(count: Int) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
    }

    public convenience init(floats: [Float]) {
        self.init(count: floats.count * 4)
        floats.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    deinit { pointer.deallocate() }
}

/// A row-major [rows][cols] weight matrix kept in its file dtype (F32, F16, BF16, or FP8-E4M3 with one
/// float scale per block) or block-quantized (q8, q4: see BlockQuantization.swift). Products convert
/// weights on the fly; nothing is widened in memory.
public struct WeightMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    /// The stored element type: for q8/q4 matrices that of the quants (I8, U8).
    public let dtype: DType
    /// FP8 only: block shape of the scales (rows, cols).
    public let blockShape: (rows: Int, cols: Int)?
    /// q8/q4 matrices only.
    public let quantization: Quantization?
    let data: UnsafeRawPointer
    /// FP8: float32 per block; q8/q4: float16 per row and 32 columns.
    let scales: UnsafeRawPointer?
    let storage: [ByteStorage]

    public struct Unsupported: Error, CustomStringConvertible {
        public let description: String
    }

    /// A plain (unscaled) matrix over `data`, which must hold rows * cols elements of `dtype`.
    public init(rows: Int, cols: Int, dtype: DType, data: UnsafeRawPointer, storage: ByteStorage) throws {
        guard dtype == .f32 || dtype == .f16 || dtype == .bf16 else {
            throw Unsupported(description: "dtype \(dtype.rawValue) cannot be used as an unscaled weight matrix")
        }
        self.rows = rows
        self.cols = cols
        self.dtype = dtype
        self.data = data
        self.scales = nil
        self.blockShape = nil
        self.quantization = nil
        self.storage = [storage]
    }

    /// An FP8-E4M3 matrix with `scales` laid out [ceil(rows/blockRows)][ceil(cols/blockCols)] float32.
    public init(
        rows: Int, cols: Int, fp8 data: UnsafeRawPointer, scales: UnsafePointer<Float>,
        blockRows: Int, blockCols: Int, storage: [ByteStorage]
    ) {
        self.rows = rows
        self.cols = cols
        self.dtype = .f8e4m3
        self.data = data
        self.scales = UnsafeRawPointer(scales)
        self.blockShape = (blockRows, blockCols)
        self.quantization = nil
        self.storage = storage
    }

    /// An f32 matrix owning a copy of `values` (tests and small derived weights).
    public init(rows: Int, cols: Int, values: [Float]) {
        precondition(values.count == rows * cols, "values must hold rows * cols floats")
        let bytes = OwnedBytes(floats: values)
        try! self.init(rows: rows, cols: cols, dtype: .f32, data: bytes.pointer, storage: bytes)
    }

    /// Bytes of weights (and scales) one full pass over the matrix reads.
    public var byteCount: Int {
        if let q = quantization { return rows * (q.rowBytes(cols: cols) + cols / Quantization.blockSize * 2) }
        var n = rows * cols * dtype.byteSize
        if let b = blockShape { n += ((rows + b.rows - 1) / b.rows) * ((cols + b.cols - 1) / b.cols) * 4 }
        return n
    }

    var raw: lc_matrix {
        var m = lc_matrix()
        m.data = data
        m.scales = scales?.assumingMemoryBound(to: Float.self)
        m.rows = Int64(rows)
        m.cols = Int64(cols)
        m.block_rows = Int64(blockShape?.rows ?? 0)
        m.block_cols = Int64(blockShape?.cols ?? 0)
        m.scale_cols = Int64(blockShape.map { (cols + $0.cols - 1) / $0.cols } ?? 0)
        switch dtype {
        case .f32: m.dtype = Int32(LC_DTYPE_F32.rawValue)
        case .f16: m.dtype = Int32(LC_DTYPE_F16.rawValue)
        case .bf16: m.dtype = Int32(LC_DTYPE_BF16.rawValue)
        default: m.dtype = Int32(LC_DTYPE_F8_E4M3.rawValue)
        }
        return m
    }

    /// Y[t][r] = sum_c W[r][c] * X[t][c] for `tokens` rows of X (each `cols` long); Y has `rows` per token.
    public func multiply(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>) {
        Self.multiply([Product(self, x, tokens: tokens, into: y)])
    }

    /// Array form of `multiply`: `x` holds tokens * cols floats; the result holds tokens * rows.
    public func multiply(_ x: [Float], tokens: Int) -> [Float] {
        precondition(x.count == tokens * cols, "input must hold tokens * cols floats")
        var y = [Float](repeating: 0, count: tokens * rows)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in multiply(xp.baseAddress!, tokens: tokens, into: yp.baseAddress!) }
        }
        return y
    }

    /// Rows `range` as float32, [range.count][cols], block scales applied.
    public func dequantizedRows(_ range: Range<Int>) -> [Float] {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "row range out of bounds")
        var out = [Float](repeating: 0, count: range.count * cols)
        out.withUnsafeMutableBufferPointer { dequantizeRows(range, into: $0.baseAddress!) }
        return out
    }

    /// Writes rows `range` as float32 into `out` ([range.count][cols]).
    public func dequantizeRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        if quantization != nil {
            var q = quantizedRaw
            return lc_qdequantize_rows(&q, Int64(range.lowerBound), Int64(range.upperBound), out)
        }
        var m = raw
        lc_dequantize_rows(&m, Int64(range.lowerBound), Int64(range.upperBound), out)
    }
}

/// Which SIMD path the kernels run on this machine.
public enum KernelPath: String, Sendable {
    case portable, avx2, neon

    public static var current: KernelPath {
        switch lc_simd_level() {
        case 1: return .avx2
        case 2: return .neon
        default: return .portable
        }
    }

    /// Forces the portable kernels (tests compare them against the vector path).
    public static func forcePortable(_ on: Bool) { lc_force_portable(on ? 1 : 0) }
}

/// Scalar conversions between float32 and the stored half/8-bit formats.
public enum FloatConversion {
    public static func bf16ToFloat(_ v: UInt16) -> Float { lc_bf16_to_f32(v) }
    public static func f16ToFloat(_ v: UInt16) -> Float { lc_f16_to_f32(v) }
    public static func f8e4m3ToFloat(_ v: UInt8) -> Float { lc_f8e4m3_to_f32(v) }
    public static func floatToBF16(_ v: Float) -> UInt16 { lc_f32_to_bf16(v) }
    public static func floatToF16(_ v: Float) -> UInt16 { lc_f32_to_f16(v) }

    /// The nearest FP8 E4M3 (FN) code, ties to even, saturating at ±448 as FP8 quantizers do (the format
    /// has no infinities); NaN stays NaN.
    public static func floatToF8E4M3(_ v: Float) -> UInt8 {
        if v.isNaN { return 0x7F }
        let sign: UInt8 = v.sign == .minus ? 0x80 : 0
        let a = min(abs(v), 448)
        // Subnormals (and zero) are multiples of 2^-9; code 8, the smallest normal, is 8 x 2^-9.
        guard a >= 0x1p-6 else { return sign | UInt8((a * 512).rounded(.toNearestOrEven)) }
        let e = Int(a.exponent)
        let steps = Int((a / Float(sign: .plus, exponent: e - 3, significand: 1)).rounded(.toNearestOrEven))  // 8...16
        return sign | UInt8(steps == 16 ? (e + 8) << 3 : (e + 7) << 3 | (steps - 8))
    }
}
