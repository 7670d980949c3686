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

    /// The checkpoint's weights, with its MTP head when it has one; `addingMTPHead` gives a checkpoint without one a
    /// new head, initialised as `init` would (norms 1, matrices normal with σ 0.02, from `seed`).
    public init(checkpoint: Checkpoint, addingMTPHead: Bool = false, seed: UInt64 = 0) throws {
        let config = checkpoint.config
        guard config.ngram == nil else { throw TrainingError.unsupported("N-gram embedding models (LongCat-Flash-Lite)") }
        self.config = config
        let all = config.tensorSpecs
        // The head's copy of the embedding is not read (the draft embeds with the model's): not trained, not saved.
        let head = checkpoint.hasMTP || addingMTPHead ? config.mtpSpecs.filter { $0.name != TensorName.MTP.embedding } : []
        specs = all.filter { $0.role != .routerBias } + head
        values = try all.filter { $0.role != .routerBias }.map { try checkpoint.tensor($0.name).floats() }
            + head.enumerated().map { i, spec in
                checkpoint.hasMTP ? try checkpoint.tensor(spec.name).floats() : RandomCheckpoint.initialValues(of: spec, seed: seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
            }
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

    /// Whether the weights include an MTP head.
    public var hasMTP: Bool { index[TensorName.MTP.projection] != nil }

    /// Whether tensor `k` belongs to the MTP head.
    func isMTP(_ k: Int) -> Bool { specs[k].name.hasPrefix(TensorName.MTP.namePrefix) }

    /// Every tensor a checkpoint of these weights holds, by name: the trained ones and the router biases. An MTP
    /// head's copy of the embedding (`model.mtp.embed_tokens`, which neither this engine nor SGLang reads) is left
    /// out: it would add a vocabulary-sized table to a small model's files.
    public var saved: [(name: String, shape: [Int], values: [Float])] {
        specs.enumerated().map { ($1.name, $1.shape, values[$0]) }
            + routerBiases.enumerated().map { (TensorName.layer($0).routerBias, [$1.count], $1) }
    }

    /// Zeros shaped like every trained tensor.
    public func zeros() -> [[Float]] { values.map { [Float](repeating: 0, count: $0.count) } }
}
