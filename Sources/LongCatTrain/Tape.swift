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

    var hasGradient: Bool { !gradient.isEmpty }
}

/// Records each operation's backward as its forward runs (llm.c style: every operation's forward and backward
/// side by side, in Ops.swift); `backward()` runs them in reverse, leaving the weights' gradients in `grads`.
final class Tape {
    let parameters: Parameters
    var grads: [[Float]]
    private var steps: [() -> Void] = []

    init(parameters: Parameters) {
        self.parameters = parameters
        grads = parameters.zeros()
    }

    func record(_ backward: @escaping () -> Void) { steps.append(backward) }

    func backward() {
        for step in steps.reversed() { step() }
        steps = []
    }

    func weight(_ name: String) -> (id: Int, values: [Float]) {
        let id = parameters.id(name)
        return (id, parameters.values[id])
    }
}
