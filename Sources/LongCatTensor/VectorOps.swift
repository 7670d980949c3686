import Foundation
import LongCatKernels

/// Small float32 operations on activations (norms, activations, softmax). Weights never pass through here.
public enum VectorOps {
    /// RMSNorm of each `width`-long row of `x` in place: x * rsqrt(mean(x^2) + eps) * weight.
    public static func rmsNorm(_ x: inout [Float], width: Int, weight: [Float], eps: Float) {
        precondition(weight.count == width && x.count % width == 0)
        x.withUnsafeMutableBufferPointer { p in
            for row in stride(from: 0, to: p.count, by: width) {
                var sum: Float = 0
                for i in row..<row + width { sum += p[i] * p[i] }
                let scale = 1 / (sum / Float(width) + eps).squareRoot()
                for i in 0..<width { p[row + i] = weight[i] * (p[row + i] * scale) }
            }
        }
    }

    /// Returns RMSNorm of `x` (see `rmsNorm(_:width:weight:eps:)`).
    public static func rmsNormed(_ x: [Float], width: Int, weight: [Float], eps: Float) -> [Float] {
        var y = x
        rmsNorm(&y, width: width, weight: weight, eps: eps)
        return y
    }

    /// silu(gate) * up, elementwise, written into `gate`.
    public static func siluMultiply(_ gate: inout [Float], _ up: [Float]) {
        precondition(gate.count == up.count)
        guard !gate.isEmpty else { return }
        gate.withUnsafeMutableBufferPointer { g in
            up.withUnsafeBufferPointer { u in lc_silu_multiply(g.baseAddress!, u.baseAddress!, Int64(g.count)) }
        }
    }

    /// Numerically stable softmax of `x[0..<count]` in place.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var maxValue = -Float.infinity
        for i in 0..<count { maxValue = max(maxValue, x[i]) }
        var sum: Float = 0
        for i in 0..<count {
            let e = exp(x[i] - maxValue)
            x[i] = e
            sum += e
        }
        let inv = 1 / sum
        for i in 0..<count { x[i] *= inv }
    }

    /// Index (from the slice's start) of the largest value, the lowest index on ties (greedy decoding, draft checks).
    public static func argmax(_ x: ArraySlice<Float>) -> Int {
        x.withUnsafeBufferPointer { p in
            var best = 0
            var bestValue = -Float.infinity
            for i in 0..<p.count where p[i] > bestValue {
                best = i
                bestValue = p[i]
            }
            return best
        }
    }

    public static func argmax(_ x: [Float]) -> Int { argmax(x[...]) }

    /// a += b elementwise.
    public static func add(_ a: inout [Float], _ b: [Float]) {
        precondition(a.count == b.count)
        for i in 0..<a.count { a[i] += b[i] }
    }
}
