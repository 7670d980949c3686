import Foundation

/// Rotary position embedding over interleaved pairs (x0,x1),(x2,x3),... of the rope part of queries and
/// keys, as LongCat-Flash (DeepSeek-style) lays them out. Output is de-interleaved — [rotated evens,
/// rotated odds] — exactly like transformers' `apply_rotary_pos_emb_interleave`; queries and keys use the
/// same layout, so their dot products are those of the interleaved form.
public struct Rope: Sendable {
    public let dim: Int
    /// Frequency of each pair (dim / 2 of them).
    public let inverseFrequencies: [Float]
    /// YaRN's factor on cos/sin (1 for plain RoPE).
    public let cosSinScale: Float
    /// Multiplier on the softmax scale 1/sqrt(qk_head_dim) (YaRN with mscale_all_dim: mscale^2).
    public let softmaxScaleFactor: Float

    public init(config: ModelConfig) {
        let dim = config.qkRopeHeadDim
        let rope = config.rope
        self.dim = dim
        let base = rope.theta
        // Computed like torch: exponent in float32, power in float32.
        let exponents = stride(from: 0, to: dim, by: 2).map { Float($0) / Float(dim) }
        let posFreqs = exponents.map { Float(pow(base, Double($0))) }
        switch rope.kind {
        case .default:
            inverseFrequencies = posFreqs.map { 1 / $0 }
            cosSinScale = 1
            softmaxScaleFactor = 1
        case .yarn:
            func mscale(_ scale: Double, _ m: Double = 1) -> Double { scale <= 1 ? 1 : 0.1 * m * log(scale) + 1 }
            // The configured factor wins over max_position_embeddings / original_max_position_embeddings, as in
            // transformers; the original length only places the correction range.
            let factor = rope.factor
            let original = rope.originalMaxPositions ?? config.maxPositionEmbeddings
            if let af = rope.attentionFactor {
                cosSinScale = Float(af)
            } else if let m = rope.mscale, let mAll = rope.mscaleAllDim, m != 0, mAll != 0 {
                cosSinScale = Float(mscale(factor, m) / mscale(factor, mAll))
            } else {
                cosSinScale = Float(mscale(factor))
            }
            func correctionDim(_ rotations: Double) -> Double {
                Double(dim) * log(Double(original) / (rotations * 2 * Double.pi)) / (2 * log(base))
            }
            var low = correctionDim(rope.betaFast), high = correctionDim(rope.betaSlow)
            if rope.truncate {
                low = floor(low)
                high = ceil(high)
            }
            low = max(low, 0)
            high = min(high, Double(dim - 1))
            if low == high { high += 0.001 }
            inverseFrequencies = (0..<dim / 2).map { i in
                let ramp = Float(min(max((Double(i) - low) / (high - low), 0), 1))
                let extrapolationWeight = 1 - ramp
                let extrapolated = 1 / posFreqs[i]
                let interpolated = 1 / (Float(factor) * posFreqs[i])
                return interpolated * (1 - extrapolationWeight) + extrapolated * extrapolationWeight
            }
            if let mAll = rope.mscaleAllDim, mAll != 0 {
                let m = Float(mscale(factor, mAll))
                softmaxScaleFactor = m * m
            } else {
                softmaxScaleFactor = 1
            }
        }
    }

    /// Rotates `x[0..<dim]` for `position`, writing the de-interleaved result back into `x`.
    public func apply(_ x: UnsafeMutablePointer<Float>, position: Int) {
        let half = dim / 2
        withUnsafeTemporaryAllocation(of: Float.self, capacity: dim) { tmp in
            for i in 0..<half {
                let angle = Float(position) * inverseFrequencies[i]
                let c = cos(angle) * cosSinScale, s = sin(angle) * cosSinScale
                let a = x[2 * i], b = x[2 * i + 1]
                tmp[i] = a * c - b * s
                tmp[half + i] = b * c + a * s
            }
            for i in 0..<dim { x[i] = tmp[i] }
        }
    }
}
