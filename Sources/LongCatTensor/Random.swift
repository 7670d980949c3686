import Foundation

/// A small, fast, seedable generator (SplitMix64), the same on every platform: random checkpoints, sampling seeds,
/// bench prompts and the fuzzer's cases are reproducible from their seeds. With a Box-Muller normal sampler.
public struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    var spare: Float?

    public init(seed: UInt64) { state = seed }

    /// SplitMix64's output function: a bijective mix of 64 bits.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// A uniform float in (0, 1].
    public mutating func nextUnit() -> Float { Float(next() >> 40 + 1) / Float(1 << 24) }

    public mutating func nextNormal() -> Float {
        if let s = spare {
            spare = nil
            return s
        }
        let u1 = nextUnit(), u2 = nextUnit()
        let r = (-2 * log(u1)).squareRoot()
        spare = r * sin(2 * .pi * u2)
        return r * cos(2 * .pi * u2)
    }
}
