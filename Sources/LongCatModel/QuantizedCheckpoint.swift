import Foundation
import LongCatTensor

extension TensorSpec {
    /// Whether block quantization (`--quantize`, `longcat quantize`) applies: to every weight matrix but the
    /// routers, whose scores choose the experts (they are tiny, and rounding there would change which experts
    /// run), when its columns are a multiple of the block. Norms and biases always stay as stored.
    public var takesBlockQuantization: Bool { isWeightMatrix && WeightMatrix.Quantization.supports(cols: shape[1]) }

    var isWeightMatrix: Bool {
        switch role {
        case .embedding, .ngramTable, .lmHead, .denseMatrix, .expertMatrix: return true
        case .norm, .routerWeight, .routerBias: return false
        }
    }
}

extension ModelConfig {
    /// Weight matrices block quantization leaves as stored because their columns are not a multiple of the
    /// block (routers are never quantized and are not listed).
    public var matricesKeptUnquantized: [TensorSpec] { tensorSpecs.filter { $0.isWeightMatrix && !$0.takesBlockQuantization } }
}

extension Checkpoint {
    /// `matrix(spec)`, block-quantized to `format` where that applies (TensorSpec.takesBlockQuantization).
    public func matrix(_ spec: TensorSpec, quantizedTo format: WeightMatrix.Quantization?) throws -> WeightMatrix {
        let m = try matrix(spec)
        guard let format, spec.takesBlockQuantization else { return m }
        return m.quantized(format)
    }
}

/// `longcat quantize`: a checkpoint whose weight matrices are stored block-quantized, so that loading maps
/// the quants and scales and uses them in place. Per quantized matrix `X.weight`: the quants as `X.weight`
/// (I8 [rows, cols] for q8, U8 [rows, cols / 2] for q4) and float16 scales `X.weight_qscale` [rows, cols / 32];
/// config.json gains `quantization_config = {quant_method: "longcat", format, block_size: 32}`.
public enum QuantizedCheckpoint {
    public struct Summary {
        /// Matrices written block-quantized.
        public var quantized: Int
        /// Weight matrices kept as stored (columns not a multiple of the block), FP8 ones widened to F32.
        public var keptUnquantized: [String]
        /// Bytes of tensors written.
        public var bytes: Int
    }

    /// Writes `source` quantized to `format` into `directory`, which must not hold a checkpoint already.
    /// Matrices are quantized exactly as `LongCatModel(checkpoint:quantize:)` does, so the written model's
    /// logits equal those of quantizing at load. FP8 matrices left unquantized are written as F32 (the FP8
    /// quantization_config is replaced); other tensors, including ones the engine does not read, keep their
    /// bytes. Every other file but weights (generation_config.json, tokenizer files) is copied.
    @discardableResult
    public static func write(
        from source: Checkpoint, to directory: String, format: WeightMatrix.Quantization,
        shardBytes: Int = 4 << 30, progress: ProgressHandler? = nil
    ) throws -> Summary {
        try source.checkTensors()  // before the output directory is made
        let sourceDir = URL(fileURLWithPath: source.directory).standardizedFileURL
        let dir = URL(fileURLWithPath: directory).standardizedFileURL
        try Checkpoint.refuseExistingCheckpoint(in: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try writeConfig(from: sourceDir, to: dir, format: format)
        try Checkpoint.copyFilesBesideWeights(from: sourceDir, to: dir)

        var entries: [SafeTensorsWriter.Entry] = []
        var summary = Summary(quantized: 0, keptUnquantized: [], bytes: 0)
        var written = Set<String>()
        let specs = source.specs
        // The scales entry follows its quants entry; the writer fills entries in order, one at a time, so a
        // matrix is quantized once and held only until its scales are written.
        final class Pending { var matrix: WeightMatrix? }
        let pending = Pending()
        for spec in specs {
            let (rows, cols) = spec.shape.count == 2 ? (spec.shape[0], spec.shape[1]) : (0, 0)
            written.insert(spec.name)
            if spec.takesBlockQuantization {
                let m = try source.matrix(spec)
                summary.quantized += 1
                entries.append(.init(name: spec.name, dtype: format.dtype, shape: [rows, format.rowBytes(cols: cols)]) { buffer in
                    let q = m.quantized(format)
                    pending.matrix = q
                    buffer.copyMemory(from: q.quantizedBytes!.quants)
                })
                entries.append(.init(name: spec.name + "_qscale", dtype: .f16, shape: [rows, cols / WeightMatrix.Quantization.blockSize]) { buffer in
                    buffer.copyMemory(from: pending.matrix!.quantizedBytes!.scales)
                    pending.matrix = nil
                })
                continue
            }
            if spec.isWeightMatrix { summary.keptUnquantized.append(spec.name) }
            let view = try source.tensor(spec.name)
            if view.dtype == .f8e4m3 {
                let m = try source.matrix(spec)
                entries.append(.init(name: spec.name, dtype: .f32, shape: spec.shape) { buffer in
                    m.dequantizeRows(0..<rows, into: buffer.bindMemory(to: Float.self).baseAddress!)
                })
            } else {
                entries.append(SafeTensorsWriter.Entry(copying: view))
            }
        }
        // Tensors the engine does not read travel as they are; the scales of matrices rewritten above do not.
        let replacedScales = Set(specs.flatMap { [$0.name + "_scale_inv", $0.name + "_qscale"] })
        for name in source.tensors.keys.sorted() where !written.contains(name) && !replacedScales.contains(name) {
            entries.append(SafeTensorsWriter.Entry(copying: source.tensors[name]!))
        }
        summary.bytes = entries.reduce(0) { $0 + $1.byteCount }
        try SafeTensorsWriter.writeCheckpoint(entries, to: dir, shardBytes: shardBytes, progress: progress)
        return summary
    }

    static func writeConfig(from source: URL, to dir: URL, format: WeightMatrix.Quantization) throws {
        try Checkpoint.rewriteConfig(from: source, to: dir) { object in
            object["quantization_config"] = [
                "quant_method": "longcat", "format": format.rawValue, "block_size": WeightMatrix.Quantization.blockSize,
            ]
        }
    }
}

/// A checkpoint written again with bfloat16 weights: how a float32 training checkpoint is shipped.
public enum BF16Checkpoint {
    /// Writes `source` into `directory` (new or empty) with every floating-point tensor rounded to bfloat16 (nearest
    /// even), except the routers' `e_score_correction_bias`, which stays float32: the biases decide close top-k picks,
    /// and they are tiny. config.json gets `torch_dtype: bfloat16`; the other files beside the weights are copied.
    /// Returns the bytes of tensors written.
    @discardableResult
    public static func write(from source: Checkpoint, to directory: String, progress: ProgressHandler? = nil) throws -> Int {
        try source.checkTensors()
        let sourceDir = URL(fileURLWithPath: source.directory).standardizedFileURL
        let dir = URL(fileURLWithPath: directory).standardizedFileURL
        try Checkpoint.refuseExistingCheckpoint(in: dir)
        var entries: [SafeTensorsWriter.Entry] = []
        for name in source.tensors.keys.sorted() {
            let view = source.tensors[name]!
            guard [.f32, .f16, .bf16].contains(view.dtype) else {
                throw CheckpointError.cannotOpen(path: source.directory, reason: "\(name) is \(view.dtype.rawValue); only float32/float16/bfloat16 checkpoints are written as bfloat16")
            }
            if name.hasSuffix("e_score_correction_bias") || view.dtype == .bf16 {
                entries.append(view.dtype == .bf16 ? SafeTensorsWriter.Entry(copying: view) : .init(name: name, dtype: .f32, shape: view.shape) { buffer in
                    ((try? view.floats()) ?? []).withUnsafeBytes { buffer.copyMemory(from: $0) }
                })
                continue
            }
            entries.append(.init(name: name, dtype: .bf16, shape: view.shape) { buffer in
                let out = buffer.bindMemory(to: UInt16.self)
                for (i, v) in ((try? view.floats()) ?? []).enumerated() { out[i] = FloatConversion.floatToBF16(v) }
            })
        }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Checkpoint.rewriteConfig(from: sourceDir, to: dir) { object in
            object["torch_dtype"] = "bfloat16"
            object["dtype"] = nil
            object["quantization_config"] = nil
        }
        try Checkpoint.copyFilesBesideWeights(from: sourceDir, to: dir)
        try SafeTensorsWriter.writeCheckpoint(entries, to: dir, shardBytes: 4 << 30, progress: progress)
        return entries.reduce(0) { $0 + $1.byteCount }
    }
}
