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
    /// Fit only the MTP head to the model (`--train-only mtp`): the objective is the head's cross-entropy, the model's
    /// weights and expert biases stay as they are, and the model's forward pass runs without backward.
    public var trainsOnlyMTP = false

    public init(objective: Objective = Objective(), optimizer: AdamW = AdamW(), schedule: LearningRateSchedule = LearningRateSchedule(lr: 1e-3),
                biasController: BiasController = BiasController(), embeddingLR: Double? = nil, trainsOnlyMTP: Bool = false) {
        self.objective = objective
        self.optimizer = optimizer
        self.schedule = schedule
        self.biasController = biasController
        self.embeddingLR = embeddingLR
        self.trainsOnlyMTP = trainsOnlyMTP
    }

    enum CodingKeys: String, CodingKey { case objective, optimizer, schedule, biasController, embeddingLR, trainsOnlyMTP }

    /// Runs saved before `trainsOnlyMTP` existed trained the whole model.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        objective = try c.decode(Objective.self, forKey: .objective)
        optimizer = try c.decode(AdamW.self, forKey: .optimizer)
        schedule = try c.decode(LearningRateSchedule.self, forKey: .schedule)
        biasController = try c.decode(BiasController.self, forKey: .biasController)
        embeddingLR = try c.decodeIfPresent(Double.self, forKey: .embeddingLR)
        trainsOnlyMTP = try c.decodeIfPresent(Bool.self, forKey: .trainsOnlyMTP) ?? false
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
    /// Per MoE layer: R_g = ‖α ∇_P L_LB‖ / ‖∇_P (the other terms)‖ with P the batch's expert probabilities (the report
    /// keeps it below 0.1), and the mean pairwise cosine similarity of the router's weight rows after the step.
    public var routerGradientBalance: [Double] = []
    public var routerSimilarity: [Double] = []
    /// Multiply-add FLOPs of the step (forward and backward: three times the forward's).
    public var flops: Double = 0
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
        // Fitting the head alone keeps moments for the head only: a large model's frozen weights need none.
        let moments = parameters.values.indices.map { k in
            options.trainsOnlyMTP && !parameters.isMTP(k) ? [] : [Float](repeating: 0, count: parameters.values[k].count)
        }
        m = moments
        v = moments
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
        if options.trainsOnlyMTP { return headOnly(sequences, trained: trained, backward: true) }
        let tape = Tape(parameters: parameters)
        let forward = TrainingForward(parameters: parameters, objective: options.objective, sequences: sequences, tape: tape,
                                      recomputes: recomputesActivations)
        var stats = forward.run(sequences, trained: trained)
        tape.backward()
        for l in stats.layers.indices { stats.layers[l].probabilityGradient = forward.routings.probabilityGradients[l] ?? [] }
        // A weight backward never reached (an expert no token chose) has a zero gradient, which AdamW still applies.
        let grads = tape.grads.enumerated().map { k, g in g.isEmpty ? [Float](repeating: 0, count: parameters.values[k].count) : g }
        return (stats, grads)
    }

    /// The losses on `sequences` at the current weights, without backward (evaluation).
    public func evaluate(_ sequences: [[Int]], trained: [[Bool]]? = nil) throws -> ForwardStats {
        try check(sequences, trained)
        if options.trainsOnlyMTP { return headOnly(sequences, trained: trained, backward: false).stats }
        return TrainingForward(parameters: parameters, objective: options.objective, sequences: sequences,
                               tape: Tape(parameters: parameters)).run(sequences, trained: trained)
    }

    /// `--train-only mtp`: the model's forward pass on a tape that is dropped, then the head on its final hidden
    /// states (a constant: nothing flows back into the model) with the head's cross-entropy as the whole objective.
    /// Only the head's gradients are kept (the others are empty).
    func headOnly(_ sequences: [[Int]], trained: [[Bool]]?, backward: Bool) -> (stats: ForwardStats, grads: [[Float]]) {
        let trunk = TrainingForward(parameters: parameters, objective: options.objective, sequences: sequences, tape: Tape(parameters: parameters))
        var (stats, hidden, logits) = trunk.runTrunk(sequences, trained: trained)
        let tape = Tape(parameters: parameters)
        let head = TrainingForward(parameters: parameters, objective: options.objective, sequences: sequences, tape: tape)
        let mtp = head.mtpLoss(Value(hidden.value), sequences, trained: trained, greedy: trunk.greedyTokens(logits), weight: 1)
        stats.mtpLoss = mtp
        stats.totalLoss = mtp
        guard backward else { return (stats, []) }
        tape.backward()
        let grads = tape.grads.enumerated().map { k, g in
            parameters.isMTP(k) ? (g.isEmpty ? [Float](repeating: 0, count: parameters.values[k].count) : g) : []
        }
        return (stats, grads)
    }

    /// One optimizer step on `sequences` (the step's whole batch).
    @discardableResult
    public func train(_ sequences: [[Int]], trained: [[Bool]]? = nil) throws -> StepReport {
        let (stats, grads) = try gradients(sequences, trained: trained)
        let norm = AdamW.globalNorm(grads)
        let clip = options.optimizer.clipScale(norm: norm)
        let lr = options.schedule.rate(step: step)
        let embeddingLR = lr * (options.embeddingLR.map { $0 / options.schedule.lr } ?? 1)
        var rates = parameters.specs.map { $0.role == .embedding || $0.role == .ngramTable ? embeddingLR : lr }
        // Fitting the head alone: the model's tensors move at rate 0 (their gradients are zero too), biases stay. An
        // objective without the head's loss leaves a head the checkpoint has as it is (no decay without gradient).
        if options.trainsOnlyMTP { for k in rates.indices where !parameters.isMTP(k) { rates[k] = 0 } }
        if !options.trainsOnlyMTP && options.objective.mtpLoss == 0 { for k in rates.indices where parameters.isMTP(k) { rates[k] = 0 } }
        options.optimizer.update(&parameters.values, grads: grads, scale: clip, decays: decays, m: &m, v: &v, step: step, lr: rates)
        let c = parameters.config
        if !options.trainsOnlyMTP {
            options.biasController.update(&parameters.routerBiases, state: &controller, counts: stats.layers.map(\.expertCounts),
                                          numExperts: c.numExperts, topK: c.topK, target: options.objective.targetFFNExperts,
                                          tokens: sequences.reduce(0) { $0 + $1.count })
        }
        defer { step += 1 }
        var report = StepReport(step: step, lr: lr, stats: stats, gradNorm: norm, clipScale: clip, biasesAfter: parameters.routerBiases, eval: nil)
        report.routerGradientBalance = stats.layers.map(routerGradientBalance)
        report.routerSimilarity = (0..<c.numLayers).map { routerSimilarity(layer: $0) }
        report.flops = stepFLOPs(sequences, stats: stats)
        return report
    }

    /// R_g of one layer: the balance loss's gradient on P is α·f of each expert's group; the rest of the summed
    /// probability gradient is the other terms'.
    func routerGradientBalance(_ layer: LayerRouting) -> Double {
        let c = parameters.config, alpha = Double(options.objective.balanceLoss)
        guard alpha > 0, layer.probabilityGradient.count == c.totalExperts else { return 0 }
        let groupSize = c.numExperts / options.objective.balanceGroups
        var balance = 0.0, rest = 0.0
        for e in 0..<c.totalExperts {
            let g = alpha * layer.f[e < c.numExperts ? e / groupSize : options.objective.balanceGroups]
            balance += g * g
            rest += (layer.probabilityGradient[e] - g) * (layer.probabilityGradient[e] - g)
        }
        return balance.squareRoot() / max(rest.squareRoot(), 1e-30)
    }

    /// Mean cosine similarity over all pairs of the router's weight rows (one per expert).
    func routerSimilarity(layer l: Int) -> Double {
        let w = parameters[TensorName.layer(l).router], rows = parameters.config.totalExperts, h = w.count / rows
        let norms = (0..<rows).map { r in (0..<h).reduce(0.0) { $0 + Double(w[r * h + $1]) * Double(w[r * h + $1]) }.squareRoot() }
        var sum = 0.0, pairs = 0
        for i in 0..<rows {
            for j in i + 1..<rows {
                let dot = (0..<h).reduce(0.0) { $0 + Double(w[i * h + $1]) * Double(w[j * h + $1]) }
                sum += dot / max(norms[i] * norms[j], 1e-30)
                pairs += 1
            }
        }
        return pairs > 0 ? sum / Double(pairs) : 0
    }

    /// FLOPs of a training step: 3 x the forward's 2 x multiply-adds (every dense matrix, the router and lm_head per
    /// token, the chosen FFN experts per layer, causal attention over each sequence), and the MTP head's (its dense
    /// matrices and lm_head again) when it runs; fitting the head alone runs the model forward only.
    func stepFLOPs(_ sequences: [[Int]], stats: ForwardStats) -> Double {
        let c = parameters.config
        func dense(_ mtp: Bool) -> Double {
            parameters.specs.indices.reduce(0.0) { sum, k in
                guard parameters.isMTP(k) == mtp else { return sum }
                switch parameters.specs[k].role {
                case .denseMatrix, .routerWeight, .lmHead: return sum + Double(parameters.specs[k].elementCount)
                default: return sum
                }
            }
        }
        let lmHead = c.tieWordEmbeddings ? Double(c.vocabSize * c.hiddenSize) : 0
        let expert = Double(3 * c.expertFFNHiddenSize * c.hiddenSize)
        let tokens = Double(sequences.reduce(0) { $0 + $1.count })
        let experts = stats.layers.reduce(0.0) { $0 + $1.ffnExpertsPerToken } * expert
        let pairs = sequences.reduce(0.0) { $0 + Double($1.count * ($1.count + 1) / 2) }
        let perLayerAttention = pairs * Double(2 * c.numHeads * (c.qkHeadDim + c.vHeadDim))
        let model = 2 * (tokens * (dense(false) + lmHead + experts) + perLayerAttention * Double(c.numLayers))
        guard stats.mtpLoss != nil else { return 3 * model }
        let head = 2 * (tokens * (dense(true) + Double(c.vocabSize * c.hiddenSize)) + perLayerAttention)
        return (options.trainsOnlyMTP ? 1 : 3) * model + 3 * head
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
