import ArgumentParser
import Foundation
import LongCatEngine
import LongCatModel
import LongCatTensor

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a copy of a checkpoint with q8 or q4 block-quantized weights that loads straight from the mapped file, or with bf16 weights.")

    @Option(name: .long, help: "Checkpoint directory to quantize.")
    var model: String

    @Option(name: .long, help: "Output directory (new or empty).")
    var out: String

    @Option(name: .long, help: "q8 or q4 (32 weights per float16 scale), or bf16 (a float checkpoint rounded to bfloat16, router biases kept float32).")
    var format: String

    @Option(name: .long, help: "Worker threads for quantizing (default: all cores).")
    var threads: Int?

    func run() throws {
        if format.lowercased() == "bf16" {
            try ModelOptions.checkDirectory(model)
            let meter = ProgressMeter()
            let bytes = try BF16Checkpoint.write(from: Checkpoint(directory: model, progress: meter.report), to: out, progress: meter.report)
            Console.progress("wrote \(out): bf16, \(Formatting.bytes(bytes))")
            return
        }
        guard let quantization = WeightMatrix.Quantization(rawValue: format.lowercased()) else {
            throw ValidationError("--format must be q8, q4 or bf16; got '\(format)'")
        }
        if let threads {
            guard threads > 0 else { throw ValidationError("--threads must be at least 1") }
            Parallel.threadCount = threads
        }
        let start = DispatchTime.now()
        try ModelOptions.checkDirectory(model)
        let meter = ProgressMeter()
        let source = try Checkpoint(directory: model, progress: meter.report)
        let summary = try QuantizedCheckpoint.write(from: source, to: out, format: quantization, progress: meter.report)
        if !summary.keptUnquantized.isEmpty {
            Console.progress("kept as stored (columns not a multiple of \(WeightMatrix.Quantization.blockSize)): " + TensorNames.summary(summary.keptUnquantized))
        }
        Console.progress(String(
            format: "wrote %@: %d matrices %@, %@ in %.1f s", out, summary.quantized, quantization.rawValue,
            Formatting.bytes(summary.bytes), secondsSince(start)))
    }
}
