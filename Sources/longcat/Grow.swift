import ArgumentParser
import Foundation
import LongCatTrain

struct Grow: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stack a model on itself (model growth): layer i of the result is layer i mod n of --model.",
        discussion: """
            Embeddings, final norm, lm_head and expert biases are copied; a training state in --model/trainer_state \
            is carried (step and options kept, AdamW moments and the bias controller's memory mapped like the \
            layers), so `longcat train --resume --out OUT` continues the run on the grown model.
            """)

    @Option(name: .long, help: "Checkpoint to grow.")
    var model: String
    @Option(name: .long, help: "Output directory (new or empty).")
    var out: String
    @Option(name: .long, help: "Copies of the stack (the report stacks 2).")
    var factor: Int = 2

    func run() throws {
        guard factor >= 2 else { throw ValidationError("--factor must be at least 2") }
        try ModelOptions.checkDirectory(model)
        try ModelGrowth.grow(from: model, to: out, factor: factor)
        Console.progress("wrote \(out): \(factor) copies of the layers of \(model)")
    }
}
