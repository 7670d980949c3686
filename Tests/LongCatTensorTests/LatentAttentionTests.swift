import LongCatTensor
import XCTest

/// Latent-space MLA against attention written out per head in float64: keys and values expanded from the
/// latents through kv_b, then softmax(q.k * scale) v.
final class LatentAttentionTests: XCTestCase {
    func testAllHeadsAtOnceMatchesPerHeadAttentionOnBothPaths() {
        let heads = 13, nope = 5, ropeDim = 4, vDim = 3, kvRank = 24  // 13 heads: one full group of 12 + 1
        var g = KernelTests.Generator(state: 7)
        let kvB = (0..<heads * (nope + vDim) * kvRank).map { _ in g.next() }
        let mla = LatentAttention(kvB: WeightMatrix(rows: heads * (nope + vDim), cols: kvRank, values: kvB),
                                  heads: heads, nope: nope, ropeDim: ropeDim, vDim: vDim)
        let saved = Parallel.threadCount
        Parallel.threadCount = 2
        defer { Parallel.threadCount = saved; KernelPath.forcePortable(false) }
        for portable in [false, true] {
            KernelPath.forcePortable(portable)
            for positions in [1, 9, 1500] {  // 1500: several position chunks, partial mixes summed
                let latents = (0..<positions * kvRank).map { _ in g.next() }
                let ropes = (0..<positions * ropeDim).map { _ in g.next() }
                let q = (0..<heads * (nope + ropeDim)).map { _ in g.next() }
                let scale: Float = 0.3
                var qLatent = [Float](repeating: 0, count: heads * kvRank), oLatent = qLatent
                var out = [Float](repeating: 0, count: heads * vDim)
                mla.absorbQueries(q, tokens: 1, into: &qLatent)
                q.withUnsafeBufferPointer { qp in
                    mla.attend(qLatent: qLatent, qRope: qp.baseAddress! + nope, qStride: nope + ropeDim, latents: latents, ropes: ropes,
                               positions: positions, scale: scale, into: &oLatent)
                }
                mla.projectOutputs(oLatent, tokens: 1, into: &out)
                for h in 0..<heads {
                    let row = { (i: Int, k: Int) in Double(kvB[(h * (nope + vDim) + i) * kvRank + k]) }
                    var scores = (0..<positions).map { p -> Double in
                        var s = 0.0
                        for i in 0..<nope {
                            var key = 0.0
                            for k in 0..<kvRank { key += row(i, k) * Double(latents[p * kvRank + k]) }
                            s += Double(q[h * (nope + ropeDim) + i]) * key
                        }
                        for i in 0..<ropeDim { s += Double(q[h * (nope + ropeDim) + nope + i]) * Double(ropes[p * ropeDim + i]) }
                        return s * Double(scale)
                    }
                    let m = scores.max()!
                    scores = scores.map { exp($0 - m) }
                    let total = scores.reduce(0, +)
                    for j in 0..<vDim {
                        var v = 0.0
                        for p in 0..<positions {
                            var value = 0.0
                            for k in 0..<kvRank { value += row(nope + j, k) * Double(latents[p * kvRank + k]) }
                            v += scores[p] / total * value
                        }
                        XCTAssertEqual(Double(out[h * vDim + j]), v, accuracy: 1e-4 * max(1, abs(v)),
                                       "portable \(portable) positions \(positions) head \(h) v \(j)")
                    }
                }
            }
        }
    }
}
