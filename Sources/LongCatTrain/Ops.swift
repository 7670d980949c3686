import Foundation
import LongCatModel
import LongCatTensor

/// The operations of the training forward pass, each with its backward beside it. Rows are tokens; `width` is the
/// row length. Backward closures read the output's gradient and add to their inputs' and weights' gradients.
extension Tape {
    /// Rows of the embedding table.
    func embed(_ ids: [Int], _ name: String) -> Value {
        let (id, table) = weight(name)
        let h = parameters.specs[id].shape[1]
        var out = [Float](repeating: 0, count: ids.count * h)
        for (t, token) in ids.enumerated() { out.replaceSubrange(t * h..<(t + 1) * h, with: table[token * h..<(token + 1) * h]) }
        let y = Value(out)
        record { [unowned self] in
            guard y.hasGradient else { return }
            let dy = y.grad
            accumulateGradient(id) { g in
                for (t, token) in ids.enumerated() {
                    for i in 0..<h { g[token * h + i] += dy[t * h + i] }
                }
            }
        }
        return y
    }

    /// x Wᵀ with W [rows][cols] from the parameters.
    func linear(_ x: Value, _ name: String) -> Value {
        let (id, w) = weight(name)
        let (rows, cols) = (parameters.specs[id].shape[0], parameters.specs[id].shape[1])
        let y = Value(TrainingKernels.forward(x.value, w, rows: rows, cols: cols))
        record { [unowned self] in
            guard y.hasGradient else { return }
            let dy = y.grad
            accumulateGradient(id) { TrainingKernels.accumulateWeightGradient(dy, x.value, rows: rows, cols: cols, into: &$0) }
            x.accumulate { TrainingKernels.accumulateInputGradient(dy, w, rows: rows, cols: cols, into: &$0) }
        }
        return y
    }

    /// y = x / rms(x) * w per row, rms = sqrt(mean(x²) + eps).
    func rmsNorm(_ x: Value, _ name: String, eps: Float) -> Value {
        let (id, w) = weight(name)
        let (out, inverse) = TrainingKernels.rmsNorm(x.value, w, eps: eps)
        let y = Value(out)
        record { [unowned self] in
            guard y.hasGradient else { return }
            let dy = y.grad
            accumulateGradient(id) { dw in x.accumulate { TrainingKernels.rmsNormBackward(x: x.value, w: w, inverse: inverse, dy: dy, dx: &$0, dw: &dw) } }
        }
        return y
    }

    func scale(_ x: Value, _ s: Float) -> Value {
        let y = Value(x.value.map { $0 * s })
        record {
            guard y.hasGradient else { return }
            x.accumulate(adding: y.grad, scaledBy: s)
        }
        return y
    }

    func add(_ a: Value, _ b: Value) -> Value {
        var out = a.value
        TrainingKernels.add(b.value, into: &out)
        let y = Value(out)
        record {
            guard y.hasGradient else { return }
            for input in [a, b] { input.accumulate(adding: y.grad) }
        }
        return y
    }

    /// silu(g) · u (SwiGLU).
    func siluMultiply(_ g: Value, _ u: Value) -> Value {
        let y = Value(TrainingKernels.siluMultiply(g.value, u.value))
        record {
            guard y.hasGradient else { return }
            let (dg, du) = TrainingKernels.siluMultiplyBackward(g: g.value, u: u.value, dy: y.grad)
            g.accumulate(adding: dg)
            u.accumulate(adding: du)
        }
        return y
    }

    /// Each row of `a` followed by the same row of `b`.
    func concatColumns(_ a: Value, _ b: Value, widths: (Int, Int)) -> Value {
        let (wa, wb) = widths, n = a.count / wa, w = wa + wb
        var out = [Float](repeating: 0, count: n * w)
        for t in 0..<n {
            out.replaceSubrange(t * w..<t * w + wa, with: a.value[t * wa..<(t + 1) * wa])
            out.replaceSubrange(t * w + wa..<(t + 1) * w, with: b.value[t * wb..<(t + 1) * wb])
        }
        let y = Value(out)
        record {
            guard y.hasGradient else { return }
            let dy = y.grad
            a.accumulate { da in for t in 0..<n { for i in 0..<wa { da[t * wa + i] += dy[t * w + i] } } }
            b.accumulate { db in for t in 0..<n { for i in 0..<wb { db[t * wb + i] += dy[t * w + wa + i] } } }
        }
        return y
    }

    /// Columns `range` of each row.
    func columns(_ x: Value, width: Int, _ range: Range<Int>) -> Value {
        let n = x.count / width
        var out: [Float] = []
        out.reserveCapacity(n * range.count)
        for t in 0..<n { out += x.value[t * width + range.lowerBound..<t * width + range.upperBound] }
        let y = Value(out)
        record {
            guard y.hasGradient else { return }
            let dy = y.grad
            x.accumulate { dx in
                for t in 0..<n {
                    for (j, c) in range.enumerated() { dx[t * width + c] += dy[t * range.count + j] }
                }
            }
        }
        return y
    }

    /// Rotary embedding of `x[t][o ..< o + rope.dim]` for each offset o, at each row's position (Rope.apply: the
    /// interleaved pairs in, the rotated halves out). Backward rotates the gradient back.
    func rope(_ x: Value, width: Int, offsets: [Int], positions: [Int], rope: Rope) -> Value {
        let half = rope.dim / 2
        var out = x.value
        out.withUnsafeMutableBufferPointer { p in
            for (t, position) in positions.enumerated() {
                for o in offsets { rope.apply(p.baseAddress! + t * width + o, position: position) }
            }
        }
        let y = Value(out)
        record {
            guard y.hasGradient else { return }
            // Columns outside the rotated slots pass their gradient through; the slots rotate it back.
            let dy = y.grad
            var back = dy
            for (t, position) in positions.enumerated() {
                for o in offsets {
                    let base = t * width + o
                    for i in 0..<half {
                        let angle = Float(position) * rope.inverseFrequencies[i]
                        let c = cos(angle) * rope.cosSinScale, s = sin(angle) * rope.cosSinScale
                        let (first, second) = (dy[base + i], dy[base + half + i])
                        back[base + 2 * i] = first * c + second * s
                        back[base + 2 * i + 1] = -first * s + second * c
                    }
                }
            }
            x.accumulate(adding: back)
        }
        return y
    }

    /// Causal softmax attention per sequence and head (LongCatTensor's CausalAttention: layouts and order there).
    func attention(q: Value, kv: Value, kRope: Value, sequences: [Range<Int>], heads: Int, nope: Int, ropeDim: Int,
                   vDim: Int, scale: Float) -> Value {
        let op = CausalAttention(heads: heads, nope: nope, ropeDim: ropeDim, vDim: vDim, scale: scale, sequences: sequences)
        let (out, probabilities) = op.forward(q: q.value, kv: kv.value, kRope: kRope.value)
        let y = Value(out)
        record {
            guard y.hasGradient else { return }
            let (dq, dkv, dkr) = op.backward(dOut: y.grad, q: q.value, kv: kv.value, kRope: kRope.value, probabilities: probabilities)
            q.accumulate(adding: dq)
            kv.accumulate(adding: dkv)
            kRope.accumulate(adding: dkr)
        }
        return y
    }

    /// Softmax of each row.
    func softmaxRows(_ x: Value, width: Int) -> Value {
        var out = x.value
        out.withUnsafeMutableBufferPointer { p in
            for t in 0..<x.count / width { VectorOps.softmax(p.baseAddress! + t * width, count: width) }
        }
        let y = Value(out)
        record {
            guard y.hasGradient else { return }
            let dy = y.grad
            x.accumulate { dx in
                for t in 0..<x.count / width {
                    var dot: Float = 0
                    for i in 0..<width { dot += dy[t * width + i] * out[t * width + i] }
                    for i in 0..<width { dx[t * width + i] += out[t * width + i] * (dy[t * width + i] - dot) }
                }
            }
        }
        return y
    }

    /// The rows `rows` of x, in that order.
    func gatherRows(_ x: Value, _ rows: [Int], width: Int) -> Value {
        var out: [Float] = []
        out.reserveCapacity(rows.count * width)
        for r in rows { out += x.value[r * width..<(r + 1) * width] }
        let y = Value(out)
        record {
            guard y.hasGradient else { return }
            let dy = y.grad
            x.accumulate { dx in
                for (j, r) in rows.enumerated() {
                    for i in 0..<width { dx[r * width + i] += dy[j * width + i] }
                }
            }
        }
        return y
    }

    /// The MoE output: out[t] = Σ over token t's chosen experts e of scale · probs[t][e] · E_e(x)[t], where an FFN
    /// expert's output row comes from `outputs[e]` (rows in the order of `tokens[e]`) and an identity expert's is x[t].
    func routedSum(x: Value, probs: Value, choices: [[Int]], numExperts: Int, tokens: [[Int]], outputs: [Value?],
                   scale: Float) -> Value {
        let total = probs.count / choices.count, h = x.count / choices.count
        // row[t][k]: the row of token t in its k-th chosen FFN expert's output.
        var row = choices.map { [Int](repeating: -1, count: $0.count) }
        for (e, list) in tokens.enumerated() {
            for (j, t) in list.enumerated() { row[t][choices[t].firstIndex(of: e)!] = j }
        }
        func source(_ t: Int, _ k: Int) -> (Value, Int) {
            let e = choices[t][k]
            return e < numExperts ? (outputs[e]!, row[t][k]) : (x, t)
        }
        // (Arrays are read out of their Values before the loops: a class property read inside them is checked each time.)
        let p = probs.value
        var out = [Float](repeating: 0, count: x.count)
        for (t, chosen) in choices.enumerated() {
            for (k, e) in chosen.enumerated() {
                let w = scale * p[t * total + e]
                let (v, r) = source(t, k)
                let values = v.value
                for i in 0..<h { out[t * h + i] += w * values[r * h + i] }
            }
        }
        let y = Value(out)
        record {
            guard y.hasGradient else { return }
            let dy = y.grad
            // Each (token, expert) pair is one product w · row: its probability's gradient is scale · (dy · row), and the
            // row's gradient w · dy. Identity experts' rows are x's, FFN experts' rows their outputs' (one row each).
            var dp = [Float](repeating: 0, count: probs.count)
            func dot(_ t: Int, _ values: [Float], _ r: Int) -> Float {
                var sum: Float = 0
                for i in 0..<h { sum += dy[t * h + i] * values[r * h + i] }
                return sum
            }
            let xv = x.value
            var dx = [Float](repeating: 0, count: x.count)
            for (t, chosen) in choices.enumerated() {
                for e in chosen where e >= numExperts {
                    let w = scale * p[t * total + e]
                    dp[t * total + e] += scale * dot(t, xv, t)
                    for i in 0..<h { dx[t * h + i] += w * dy[t * h + i] }
                }
            }
            x.accumulate(adding: dx)
            for (e, list) in tokens.enumerated() {
                guard let output = outputs[e] else { continue }
                let values = output.value
                var g = [Float](repeating: 0, count: values.count)
                for (j, t) in list.enumerated() {
                    let w = scale * p[t * total + e]
                    dp[t * total + e] += scale * dot(t, values, j)
                    for i in 0..<h { g[j * h + i] = w * dy[t * h + i] }
                }
                output.accumulate(adding: g)
            }
            probs.accumulate(adding: dp)
        }
        return y
    }
}
