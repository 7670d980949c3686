import Foundation
import LongCatTensor

/// What running a model allocates in RAM, checked against the machine before anything is allocated. Mapped weights
/// are never counted: the page cache holds them and can drop them again.
public enum SystemMemory {
    /// Physical memory, or the cgroup's limit where that is lower (containers).
    public static let totalBytes: Int = {
        var total = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        for path in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let text = try? String(contentsOfFile: path, encoding: .utf8),
               let limit = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), limit > 0 {
                total = min(total, limit)
            }
        }
        return total
    }()

    static func gib(_ bytes: Int) -> String { String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) }
}

/// An allocation the machine cannot hold, named before it is made.
public struct InsufficientMemoryError: Error, Equatable, CustomStringConvertible {
    public let what: String
    public let neededBytes: Int
    public let totalBytes: Int
    public let advice: String

    public var description: String {
        "\(what) needs \(SystemMemory.gib(neededBytes)) of memory but this machine has \(SystemMemory.gib(totalBytes)): \(advice)"
    }
}

extension ModelConfig {
    /// Bytes loading allocates outside the mapped files: norms and router biases widened to float32 and, with
    /// `quantize`, the block-quantized copies of the weight matrices. Arithmetic only.
    public func loadAllocationBytes(quantize: WeightMatrix.Quantization?) -> Int {
        var bytes = 0
        for (spec, count) in tensorGroups {
            switch spec.role {
            case .norm, .routerBias:
                bytes += count * spec.elementCount * MemoryLayout<Float>.size
            default:
                guard let quantize, spec.takesBlockQuantization else { continue }
                let (rows, cols) = (spec.shape[0], spec.shape[1])
                bytes += count * rows * (quantize.rowBytes(cols: cols) + cols / WeightMatrix.Quantization.blockSize * 2)
            }
        }
        return bytes
    }

    /// Throws before loading when what loading allocates exceeds the machine's memory.
    public func checkLoadFits(quantize: WeightMatrix.Quantization?, totalBytes: Int = SystemMemory.totalBytes) throws {
        let needed = loadAllocationBytes(quantize: quantize)
        guard needed > totalBytes else { return }
        throw InsufficientMemoryError(
            what: quantize.map { "quantizing the weights to \($0.rawValue) at load" } ?? "loading the model",
            neededBytes: needed, totalBytes: totalBytes,
            advice: quantize == nil ? "the config's norms alone are this large; check hidden_size and num_layers"
                : "quantize once into a checkpoint with `longcat quantize` (it streams to disk) and load that")
    }

    /// Positions of KV cache that fit in `bytes`.
    public func cachePositions(fittingIn bytes: Int) -> Int { bytes / kvCacheBytesPerToken }

    /// The KV-cache budget in positions: `requested` when given (an error if it cannot fit in memory), else
    /// `preferred` clamped to half the machine's memory, with a note saying so when it is clamped.
    public func cacheBudget(requested: Int?, preferred: Int, totalBytes: Int = SystemMemory.totalBytes) throws -> (positions: Int, note: String?) {
        let fitting = cachePositions(fittingIn: totalBytes / 2)
        if let requested {
            let (needed, overflow) = requested.multipliedReportingOverflow(by: kvCacheBytesPerToken)
            guard overflow || needed > totalBytes else { return (requested, nil) }
            throw InsufficientMemoryError(
                what: "a KV cache of \(requested) positions (\(kvCacheBytesPerToken) bytes each)",
                neededBytes: overflow ? Int.max : needed, totalBytes: totalBytes,
                advice: "lower --max-cache-tokens to at most \(cachePositions(fittingIn: totalBytes))")
        }
        guard preferred > fitting else { return (preferred, nil) }
        return (max(fitting, 1), "context clamped to \(fitting) positions: \(preferred) (max_position_embeddings) would need "
            + "\(SystemMemory.gib(Int(min(Double(preferred) * Double(kvCacheBytesPerToken), Double(Int.max))))) of KV cache and "
            + "half of this machine's memory is \(SystemMemory.gib(totalBytes / 2)); set --max-cache-tokens to choose")
    }
}

extension ModelConfig {
    /// The dtype the release stores `spec` in (the third column of the tensor table, beside name and shape): FP8
    /// releases store every projection as E4M3 with a float32 scale per block (`X.weight_scale_inv`), norms, router
    /// and expert bias in F32 and the rest in BF16; others use the declared dtype with the router weight in F32.
    public func storedDType(of spec: TensorSpec) -> DType {
        let fp8 = fp8BlockSize != nil
        if fp8 && spec.isQuantizable { return .f8e4m3 }
        if spec.role == .routerWeight || (fp8 && (spec.role == .norm || spec.role == .routerBias)) { return .f32 }
        switch declaredDType?.lowercased() {
        case "float32", "fp32": return .f32
        case "float16", "fp16": return .f16
        default: return .bf16
        }
    }

    /// Bytes of the release's weights when only the config is at hand (`storedDType`, FP8 scales under F32).
    public var estimatedBytesByDType: [DType: Int] {
        var out: [DType: Int] = [:]
        for (spec, count) in tensorGroups {
            let dtype = storedDType(of: spec)
            out[dtype, default: 0] += count * dtype.byteSize * spec.elementCount
            if dtype == .f8e4m3, let block = fp8BlockSize {
                out[.f32, default: 0] += count * 4 * ((spec.shape[0] + block[0] - 1) / block[0]) * ((spec.shape[1] + block[1] - 1) / block[1])
            }
        }
        return out
    }

    /// Weights plus the KV cache of `context` positions, or nil past Int (a huge max_position_embeddings is legal:
    /// serving clamps the context to memory).
    public func memoryEstimate(weightBytes: Int, context: Int) -> Int? {
        let (cache, cacheOverflows) = kvCacheBytesPerToken.multipliedReportingOverflow(by: context)
        let (total, totalOverflows) = weightBytes.addingReportingOverflow(cache)
        return cacheOverflows || totalOverflows ? nil : total
    }
}
