import LongCatTensor

/// The fuzzer's generator: SplitMix64 (LongCatTensor), the same on every platform, so a (seed, index) pair names
/// one case forever.
struct FuzzRandom: RandomNumberGenerator {
    private var generator: SplitMix64

    /// The generator of one case: independent of every other case, so a single case reruns on its own.
    init(seed: UInt64, index: Int) {
        generator = SplitMix64(seed: Self.mix(seed &+ 0x9E37_79B9_7F4A_7C15) ^ Self.mix(UInt64(bitPattern: Int64(index)) &+ 0xD1B5_4A32_D192_ED03))
    }

    /// SplitMix64's increment, then its output function.
    static func mix(_ value: UInt64) -> UInt64 { SplitMix64.mix(value &+ 0x9E37_79B9_7F4A_7C15) }

    mutating func next() -> UInt64 { generator.next() }

    /// 0 ..< n (n > 0).
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// An integer in `range`, biased toward small values half of the time (short spans, small counts).
    mutating func int(_ range: ClosedRange<Int>) -> Int {
        let width = UInt64(range.upperBound - range.lowerBound)
        let span = chance(0.5) ? min(width, 16) : width
        return range.lowerBound + Int(span == UInt64.max ? next() : next() % (span + 1))
    }
}
