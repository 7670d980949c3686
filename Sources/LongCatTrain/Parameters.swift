import Foundation
import LongCatModel

/// Why a checkpoint cannot be trained.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    case unsupported(String)
    case badBatch(String)
    case cannotResume(String)
    case badData(String)
    case outputInUse(String)

    public var description: String {
        switch self {
        case .unsupported(let what): return "training does not support \(what)"
        case .badBatch(let what): return "bad training batch: \(what)"
        case .cannotResume(let why): return "cannot resume: \(why)"
        case .badData(let why): return "bad training data: \(why)"
        case .outputInUse(let out): return "\(out) holds a training run: continue it with --resume, or choose another --out"
        }
    }
}

/// Every trained tensor of a model in float32, in the order of the config's tensor table, with the expert biases
/// beside them (moved by the bias controller, not by gradients).
public struct Parameters {
    public let config: ModelConfig
    /// The trained tensors (every weight of the checkpoint but the router biases).
    public let specs: [TensorSpec]
    public var values: [[Float]]
    /// e_score_correction_bias of each MoE layer, N + Z entries.
    public var routerBiases: [[Float]]
    let index: [String: Int]

    public init(checkpoint: Checkpoint) throws {
        let config = checkpoint.config
        guard config.ngram == nil else { throw TrainingError.unsupported("N-gram embedding models (LongCat-Flash-Lite)") }
        self.config = config
        let all = config.tensorSpecs
        specs = all.filter { $0.role != .routerBias }
        values = try specs.map { try checkpoint.tensor($0.name).floats() }
        routerBiases = try all.filter { $0.role == .routerBias }.map { try checkpoint.tensor($0.name).floats() }
        var index: [String: Int] = [:]
        for (i, spec) in specs.enumerated() { index[spec.name] = i }
        self.index = index
    }

    /// The position of a tensor in `specs` / `values`.
    public func id(_ name: String) -> Int {
        guard let i = index[name] else { preconditionFailure("no trained tensor \(name)") }
        return i
    }

    public subscript(name: String) -> [Float] { values[id(name)] }

    /// Zeros shaped like every trained tensor.
    public func zeros() -> [[Float]] { values.map { [Float](repeating: 0, count: $0.count) } }
}
