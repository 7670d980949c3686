import Foundation
import LongCatTensor

/// An activation of the training forward pass and, once backward has reached it, its gradient.
final class Value {
    var value: [Float]
    private(set) var gradient: [Float] = []

    init(_ value: [Float]) { self.value = value }

    var count: Int { value.count }

    /// The gradient, created as zeros on first use.
    var grad: [Float] {
        get { gradient.isEmpty ? [Float](repeating: 0, count: value.count) : gradient }
        set { gradient = newValue }
    }

    /// Adds to the gradient in place.
    func accumulate(_ body: (inout [Float]) -> Void) {
        if gradient.isEmpty { gradient = [Float](repeating: 0, count: value.count) }
        body(&gradient)
    }

    /// Adds scale · g to the gradient (takes it as the gradient when there is none yet).
    func accumulate(adding g: [Float], scaledBy scale: Float = 1) {
        if gradient.isEmpty, scale == 1 { gradient = g } else { accumulate { TrainingKernels.add(g, scaledBy: scale, into: &$0) } }
    }

    var hasGradient: Bool { !gradient.isEmpty }
}

/// Records each operation's backward as its forward runs (llm.c style: every operation's forward and backward
/// side by side, in Ops.swift); `backward()` runs them in reverse, leaving the weights' gradients in `grads`.
final class Tape {
    let parameters: Parameters
    /// The weights' gradients, each allocated when backward first reaches its weight (a weight it never reaches keeps
    /// an empty array); a sub-tape (`checkpointed`) adds to its parent's.
    final class Gradients { var values: [[Float]]; init(_ v: [[Float]]) { values = v } }
    let gradients: Gradients
    private var steps: [() -> Void] = []

    init(parameters: Parameters) {
        self.parameters = parameters
        gradients = Gradients(parameters.values.map { _ in [] })
    }

    private init(sharing parent: Tape) {
        parameters = parent.parameters
        gradients = parent.gradients
    }

    var grads: [[Float]] {
        get { gradients.values }
        _modify { yield &gradients.values }
    }

    func record(_ backward: @escaping () -> Void) { steps.append(backward) }

    func backward() {
        for step in steps.reversed() { step() }
        steps = []
    }

    /// `body` on x with its activations dropped after the forward pass and recomputed when backward reaches it
    /// (activation checkpointing: memory for one block's activations instead of all). The recomputation runs the
    /// same operations in the same order, so the gradients are bit for bit those of keeping the activations.
    func checkpointed(_ x: Value, _ body: @escaping (Tape, Value) -> Value) -> Value {
        let y = Value(body(Tape(sharing: self), Value(x.value)).value)
        record { [unowned self] in
            guard y.hasGradient else { return }
            let sub = Tape(sharing: self), input = Value(x.value)
            let out = body(sub, input)
            out.grad = y.grad
            sub.backward()
            guard input.hasGradient else { return }
            x.accumulate(adding: input.grad)
        }
        return y
    }

    /// Adds to weight `id`'s gradient in place (zeros first, when backward reaches the weight for the first time).
    func accumulateGradient(_ id: Int, _ body: (inout [Float]) -> Void) {
        if gradients.values[id].isEmpty { gradients.values[id] = [Float](repeating: 0, count: parameters.values[id].count) }
        body(&gradients.values[id])
    }

    func weight(_ name: String) -> (id: Int, values: [Float]) {
        let id = parameters.id(name)
        return (id, parameters.values[id])
    }
}
