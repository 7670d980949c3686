import Foundation
import LongCatModel

/// Everything that defines a training run besides the data.
public struct TrainingOptions: Equatable, Sendable, Codable {
    public var objective = Objective()
    public var optimizer = AdamW()
    public var schedule = LearningRateSchedule(lr: 1e-3)
    public var biasController = BiasController()
    /// The embedding table's peak learning rate when it differs from the schedule's (hyperparameter transfer keeps the
    /// proxy's rate for the embedding and divides the others by the width ratio); it follows the same schedule.
    public var embeddingLR: Double?

    public init(objective: Objective = Objective(), optimizer: AdamW = AdamW(), schedule: LearningRateSchedule = LearningRateSchedule(lr: 1e-3),
                biasController: BiasController = BiasController(), embeddingLR: Double? = nil) {
        self.objective = objective
        self.optimizer = optimizer
        self.schedule = schedule
        self.biasController = biasController
        self.embeddingLR = embeddingLR
    }
}

/// What one optimizer step did (one line of the training log).
public struct StepReport: Sendable {
    public var step: Int
    public var lr: Double
    public var stats: ForwardStats
    public var gradNorm: Double
    public var clipScale: Double
    /// Each MoE layer's biases after the step's update.
    public var biasesAfter: [[Float]]
    /// The held-out loss after the step, when the run evaluated then.
    public var eval: (loss: Double, bitsPerByte: Double)?
}

/// One training run's state: the weights, AdamW's moments, the bias controller's memory and the step count.
/// A step: forward and backward on a batch, clip, AdamW, then the bias update from that step's routing.
public final class Trainer {
    public private(set) var parameters: Parameters
    public let options: TrainingOptions
    public private(set) var step = 0
    /// Activation checkpointing: keep each layer's input only and recompute the layer in backward (less memory,
    /// a second forward pass of the layers; the same results bit for bit).
    public var recomputesActivations = false
    var m: [[Float]]
    var v: [[Float]]
    var controller: BiasController.State
    let decays: [Bool]

    public init(parameters: Parameters, options: TrainingOptions) {
        self.parameters = parameters
        self.options = options
        m = parameters.zeros()
        v = parameters.zeros()
        controller = options.biasController.initialState(biases: parameters.routerBiases)
        decays = parameters.specs.map { $0.shape.count >= 2 }
    }

    /// What continues a run besides the weights: the step count, AdamW's moments and the controller's memory.
    public struct State {
        public var step: Int
        public var m: [[Float]]
        public var v: [[Float]]
        public var controller: BiasController.State
    }

    public var state: State { State(step: step, m: m, v: v, controller: controller) }

    /// A run resumed at `state` (saved with `parameters` after the same step).
    public convenience init(parameters: Parameters, options: TrainingOptions, state: State) {
        self.init(parameters: parameters, options: options)
        step = state.step
        m = state.m
        v = state.v
        controller = state.controller
    }

    /// Losses and gradients of the total objective for `sequences` at the current weights (nothing changes).
    /// `trained[s][t]` says which tokens the loss predicts (default: every token after the first).
    public func gradients(_ sequences: [[Int]], trained: [[Bool]]? = nil) throws -> (stats: ForwardStats, grads: [[Float]]) {
        try check(sequences, trained)
        let tape = Tape(parameters: parameters)
        let stats = TrainingForward(parameters: parameters, objective: options.objective, sequences: sequences, tape: tape,
                                    recomputes: recomputesActivations).run(sequences, trained: trained)
        tape.backward()
        return (stats, tape.grads)
    }

    /// The losses on `sequences` at the current weights, without backward (evaluation).
    public func evaluate(_ sequences: [[Int]], trained: [[Bool]]? = nil) throws -> ForwardStats {
        try check(sequences, trained)
        return TrainingForward(parameters: parameters, objective: options.objective, sequences: sequences,
                               tape: Tape(parameters: parameters)).run(sequences, trained: trained)
    }

    /// One optimizer step on `sequences` (the step's whole batch).
    @discardableResult
    public func train(_ sequences: [[Int]], trained: [[Bool]]? = nil) throws -> StepReport {
        let (stats, grads) = try gradients(sequences, trained: trained)
        let norm = AdamW.globalNorm(grads)
        let clip = options.optimizer.clipScale(norm: norm)
        let lr = options.schedule.rate(step: step)
        let embeddingLR = lr * (options.embeddingLR.map { $0 / options.schedule.lr } ?? 1)
        let rates = parameters.specs.map { $0.role == .embedding || $0.role == .ngramTable ? embeddingLR : lr }
        options.optimizer.update(&parameters.values, grads: grads, scale: clip, decays: decays, m: &m, v: &v, step: step, lr: rates)
        let c = parameters.config
        options.biasController.update(&parameters.routerBiases, state: &controller, counts: stats.layers.map(\.expertCounts),
                                      numExperts: c.numExperts, topK: c.topK, target: options.objective.targetFFNExperts,
                                      tokens: sequences.reduce(0) { $0 + $1.count })
        defer { step += 1 }
        return StepReport(step: step, lr: lr, stats: stats, gradNorm: norm, clipScale: clip, biasesAfter: parameters.routerBiases, eval: nil)
    }

    func check(_ sequences: [[Int]], _ trained: [[Bool]]?) throws {
        let c = parameters.config
        if let trained, trained.map(\.count) != sequences.map(\.count) {
            throw TrainingError.badBatch("the loss mask does not have one entry per token")
        }
        guard !sequences.isEmpty, sequences.allSatisfy({ $0.count >= 2 }) else {
            throw TrainingError.badBatch("every sequence needs at least 2 tokens")
        }
        if let bad = sequences.joined().first(where: { $0 < 0 || $0 >= c.vocabSize }) {
            throw TrainingError.badBatch("token id \(bad) is outside the vocabulary (0..<\(c.vocabSize))")
        }
        if let long = sequences.first(where: { $0.count > c.maxPositionEmbeddings }) {
            throw TrainingError.badBatch("a sequence of \(long.count) tokens exceeds the context length \(c.maxPositionEmbeddings)")
        }
    }
}
