import Foundation
import LongCatTensor

/// The learning rate at each step: linear warm-up `lr · min(1, (t+1)/warmup)` (t 0-based), then constant or a
/// cosine from `lr` to `minLR` over the steps left after warm-up.
public struct LearningRateSchedule: Equatable, Sendable, Codable {
    public enum Shape: String, Sendable, CaseIterable, Codable { case constant, cosine }

    public var lr: Double
    public var warmupSteps: Int = 0
    public var shape: Shape = .constant
    public var minLR: Double = 0
    public var totalSteps: Int = 0

    public init(lr: Double, warmupSteps: Int = 0, shape: Shape = .constant, minLR: Double = 0, totalSteps: Int = 0) {
        self.lr = lr
        self.warmupSteps = warmupSteps
        self.shape = shape
        self.minLR = minLR
        self.totalSteps = totalSteps
    }

    public func rate(step t: Int) -> Double {
        if t < warmupSteps { return lr * Double(t + 1) / Double(warmupSteps) }
        guard shape == .cosine, totalSteps > warmupSteps + 1 else { return lr }
        let progress = Double(t - warmupSteps) / Double(totalSteps - warmupSteps - 1)
        return minLR + (lr - minLR) * 0.5 * (1 + cos(Double.pi * min(progress, 1)))
    }
}

/// AdamW with PyTorch's semantics (decoupled decay on tensors of two or more dimensions, bias correction by the
/// global step) and global-norm clipping as `torch.nn.utils.clip_grad_norm_`.
public struct AdamW: Equatable, Sendable, Codable {
    public var beta1: Double = 0.9
    public var beta2: Double = 0.95
    public var eps: Double = 1e-16
    public var weightDecay: Double = 0.1
    /// Clip the global gradient norm to this (0: no clipping).
    public var gradClip: Double = 1

    public init(beta1: Double = 0.9, beta2: Double = 0.95, eps: Double = 1e-16, weightDecay: Double = 0.1, gradClip: Double = 1) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.gradClip = gradClip
    }

    /// The global L2 norm of every gradient, summed tensor by tensor in order (in float64).
    public static func globalNorm(_ grads: [[Float]]) -> Double {
        grads.reduce(0.0) { $0 + TrainingKernels.sumOfSquares($1) }.squareRoot()
    }

    public func clipScale(norm: Double) -> Double { gradClip > 0 ? min(1, gradClip / (norm + 1e-6)) : 1 }

    /// One update of `values` with `grads` scaled by `scale`, at step `t` (0-based); tensor k moves at rate `lr[k]`.
    /// A tensor without moments (empty `m[k]`: frozen, as the model's weights when only the MTP head trains) is left.
    public func update(_ values: inout [[Float]], grads: [[Float]], scale: Double, decays: [Bool], m: inout [[Float]], v: inout [[Float]],
                       step t: Int, lr rates: [Double]) {
        let s = Double(t + 1)
        let correction1 = 1 - pow(beta1, s), correction2 = (1 - pow(beta2, s)).squareRoot()
        for k in values.indices where !m[k].isEmpty {
            let decay = decays[k] ? Float(1 - rates[k] * weightDecay) : 1
            TrainingKernels.adamW(values: &values[k], grads: grads[k], m: &m[k], v: &v[k], scale: scale, beta1: beta1, beta2: beta2,
                                  lr: rates[k], correction1: correction1, correction2: correction2, eps: eps, decay: decay)
        }
    }
}

/// The expert-bias controller (train-tiny README, part 1 (a)): each FFN expert's error e_i = K_e/(K·N) − T_i/(K·T_all)
/// moves its bias; identity experts' biases never move. `integral` is Eq. 2 summed in float64 (b = b(0) + μ·Σe); `pid` sets
/// b = b(0) + Kp·e + Ki·Σe + Kd·(e − e_prev), which with Ki = μ and Kp = Kd = 0 is Eq. 2.
public struct BiasController: Equatable, Sendable, Codable {
    public enum Kind: String, Sendable, CaseIterable, Codable { case integral, pid }

    public var kind: Kind = .integral
    /// μ of Eq. 2.
    public var rate: Double = 0
    public var kp: Double = 0, ki: Double = 0, kd: Double = 0

    public init(kind: Kind = .integral, rate: Double = 0, kp: Double = 0, ki: Double = 0, kd: Double = 0) {
        self.kind = kind
        self.rate = rate
        self.kp = kp
        self.ki = ki
        self.kd = kd
    }

    /// Per layer: the biases at the start, the running sum of errors and the last error (the PID's memory).
    public struct State: Equatable, Sendable, Codable {
        public var initial: [[Double]]
        public var integral: [[Double]]
        public var previous: [[Double]]
    }

    public func initialState(biases: [[Float]]) -> State {
        State(initial: biases.map { $0.map(Double.init) }, integral: biases.map { $0.map { _ in 0 } }, previous: biases.map { $0.map { _ in 0 } })
    }

    /// The errors of one layer's FFN experts from its counts (T_i over N + Z ids) and the step's token count.
    public static func errors(counts: [Int], numExperts: Int, topK: Int, target: Double, tokens: Int) -> [Double] {
        let k = Double(topK), n = Double(numExperts), all = Double(tokens)
        return (0..<numExperts).map { target / (k * n) - Double(counts[$0]) / (k * all) }
    }

    /// Updates `biases` after a step whose routing gave `counts` per layer.
    public func update(_ biases: inout [[Float]], state: inout State, counts: [[Int]], numExperts: Int, topK: Int, target: Double, tokens: Int) {
        for l in biases.indices {
            let e = Self.errors(counts: counts[l], numExperts: numExperts, topK: topK, target: target, tokens: tokens)
            for i in 0..<numExperts {
                state.integral[l][i] += e[i]
                let b: Double
                switch kind {
                case .integral: b = state.initial[l][i] + rate * state.integral[l][i]
                case .pid: b = state.initial[l][i] + kp * e[i] + ki * state.integral[l][i] + kd * (e[i] - state.previous[l][i])
                }
                biases[l][i] = Float(b)
                state.previous[l][i] = e[i]
            }
        }
    }
}
