import Foundation
import LongCatModel
import LongCatTensor
import LongCatTokenizer

/// One optimizer step's sequences and which of their tokens the loss predicts (nil: all but each first).
public struct TrainingBatch: Sendable {
    public var sequences: [[Int]]
    public var trained: [[Bool]]?

    public init(sequences: [[Int]], trained: [[Bool]]? = nil) {
        self.sequences = sequences
        self.trained = trained
    }

    public var tokens: Int { sequences.reduce(0) { $0 + $1.count } }
}

/// Where a run's batches come from: the same batch for a step in every run, so a resumed run continues exactly.
public protocol BatchSource {
    func batch(step: Int) -> TrainingBatch
    /// What identifies the data and its order (checked on resume).
    var identity: String { get }
}

/// Packed windows of documents (TrainingData), `size` per step in the seeded order of TrainingData.batch.
public struct PackedBatches: BatchSource {
    public let windows: [Window]
    public let size: Int
    public let seed: UInt64
    public let identity: String

    public init(windows: [Window], size: Int, seed: UInt64, identity: String) {
        (self.windows, self.size, self.seed, self.identity) = (windows, size, seed, identity)
    }

    public func batch(step: Int) -> TrainingBatch {
        let picks = TrainingData.batch(step: step, size: size, windows: windows.count, seed: seed).map { windows[$0] }
        return TrainingBatch(sequences: picks.map(\.tokens), trained: picks.map(\.trained))
    }
}

/// The batches of a run listed in a file: `steps[t].input_ids` ([batch][sequence] token ids), as train-tiny's
/// expected.json. Step t trains on batch t mod count (the list repeats).
public struct TrainingBatches: BatchSource {
    public let steps: [[[Int]]]

    public init(steps: [[[Int]]]) { self.steps = steps }

    public init(file path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw TrainingError.badBatch("cannot read \(path)") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let steps = object["steps"] as? [Any] else {
            throw TrainingError.badBatch("\(path) is not a JSON object with a \"steps\" list")
        }
        self.steps = try steps.enumerated().map { t, step in
            guard let ids = (step as? [String: Any])?["input_ids"] as? [[Any]] else {
                throw TrainingError.badBatch("\(path): steps[\(t)] has no input_ids list of token-id lists")
            }
            return try ids.map { row in
                try row.map { value in
                    guard let number = value as? NSNumber, let id = Int(exactly: number.doubleValue) else {
                        throw TrainingError.badBatch("\(path): steps[\(t)].input_ids holds \(value), not a token id")
                    }
                    return id
                }
            }
        }
        guard !self.steps.isEmpty else { throw TrainingError.badBatch("\(path) lists no steps") }
    }

    public func batch(step t: Int) -> TrainingBatch { TrainingBatch(sequences: steps[t % steps.count]) }

    public var identity: String { "batches: \(steps.count) steps of \(steps.first?.count ?? 0) sequences, first \(steps.first?.first?.prefix(8).map(String.init).joined(separator: ",") ?? "")" }
}

/// A training run whose output directory is a Hugging Face checkpoint of the latest weights (config.json,
/// generation_config.json and tokenizer files copied from the model, float32 safetensors in the official layout
/// with the expert biases) and `trainer_state/` (the step, AdamW's moments, the bias controller's memory and the
/// options), from which `resume` continues bit for bit.
///
/// A save writes everything into `.saving/` first and marks it complete; then files move into place. A save cut
/// short before the mark leaves the previous checkpoint whole; one cut short after it is finished by the next open.
public final class TrainingRun {
    public let out: URL
    public let trainer: Trainer
    public let totalSteps: Int
    let batches: BatchSource
    /// Held-out windows evaluated every `evalEvery` steps, and the UTF-8 bytes behind one trained token of them.
    public var evaluation: (windows: [Window], bytesPerToken: Double, every: Int)?

    static let stateDirectory = "trainer_state"
    static let savingDirectory = ".saving"
    static let completeMark = "COMPLETE"
    static let shardBytes = 4 << 30

    /// A new run from the checkpoint in `model`, writing to `out` (new or empty of checkpoints).
    public init(model: String, out: String, options: TrainingOptions, batches: BatchSource, totalSteps: Int) throws {
        self.out = URL(fileURLWithPath: out).standardizedFileURL
        let source = URL(fileURLWithPath: model).standardizedFileURL
        let fm = FileManager.default
        if fm.fileExists(atPath: self.out.appendingPathComponent(Self.stateDirectory).path) {
            throw TrainingError.outputInUse(out)
        }
        let parameters = try Parameters(checkpoint: Checkpoint(directory: source.path),
                                        addingMTPHead: options.objective.mtpLoss > 0 || options.trainsOnlyMTP)
        if options.trainsOnlyMTP && !parameters.hasMTP { throw TrainingError.unsupported("training only the MTP head of a model without one") }
        trainer = Trainer(parameters: parameters, options: options)
        self.batches = batches
        self.totalSteps = totalSteps
        try fm.createDirectory(at: self.out, withIntermediateDirectories: true)
        if source != self.out {
            try Checkpoint.copyFiles(["generation_config.json"] + Tokenizer.fileNames, from: source, to: self.out)
            // The config, describing float32 weights.
            try Checkpoint.rewriteConfig(from: source, to: self.out) { object in
                object["quantization_config"] = nil
                object["dtype"] = nil
                object["torch_dtype"] = "float32"
                if parameters.hasMTP { object["num_nextn_predict_layers"] = 1 }
            }
        }
    }

    /// The run saved in `out`, with `options` (which must be those it was started with).
    public init(resuming out: String, options: TrainingOptions, batches: BatchSource, totalSteps: Int) throws {
        self.out = URL(fileURLWithPath: out).standardizedFileURL
        try Self.finishInterruptedSave(in: self.out)
        let stateDir = self.out.appendingPathComponent(Self.stateDirectory)
        guard let data = FileManager.default.contents(atPath: stateDir.appendingPathComponent("state.json").path) else {
            throw TrainingError.cannotResume("\(stateDir.path)/state.json is missing (no run was saved in \(out); start one with --model)")
        }
        let saved: SavedRun
        do { saved = try JSONDecoder().decode(SavedRun.self, from: data) } catch {
            throw TrainingError.cannotResume("\(stateDir.path)/state.json is unreadable (\(error))")
        }
        var differences = Self.differences(saved: saved.options, now: options)
        if saved.data != batches.identity { differences.append("data: saved \(saved.data), now \(batches.identity)") }
        guard differences.isEmpty else {
            throw TrainingError.cannotResume("the options differ from the saved run's: " + differences.joined(separator: "; "))
        }
        let checkpoint = try Checkpoint(directory: self.out.path)
        let parameters = try Parameters(checkpoint: checkpoint)
        guard let stepMark = checkpoint.files.first?.metadata["step"], Int(stepMark) == saved.step else {
            throw TrainingError.cannotResume("the weights in \(out) are not those of the saved step \(saved.step)")
        }
        let moments = try Checkpoint.tensorFile(stateDir.appendingPathComponent("optimizer.safetensors").path)
        func load(_ prefix: String) throws -> [[Float]] {
            try parameters.specs.enumerated().map { i, spec in
                if options.trainsOnlyMTP && !parameters.isMTP(i) { return [] }  // frozen: no moments
                guard let view = moments.tensors[prefix + spec.name], view.dtype == .f32, view.elementCount == parameters.values[i].count else {
                    throw TrainingError.cannotResume("optimizer.safetensors lacks a float32 \(prefix + spec.name) of \(spec.shape)")
                }
                return try view.floats()
            }
        }
        trainer = Trainer(parameters: parameters, options: options,
                          state: Trainer.State(step: saved.step, m: try load("m."), v: try load("v."), controller: saved.controller.decoded))
        self.batches = batches
        self.totalSteps = totalSteps
    }

    /// Runs steps until `totalSteps`, `stopAfter` more steps, or `shouldStop()` at a step boundary, saving every
    /// `saveEvery` steps and at the end. `onStep` hears each step's report. Returns the step count reached.
    @discardableResult
    public func run(stopAfter: Int? = nil, saveEvery: Int = 0, shouldStop: () -> Bool = { false },
                    onStep: (StepReport, _ seconds: Double) throws -> Void = { _, _ in }) throws -> Int {
        let end = min(totalSteps, stopAfter.map { trainer.step + $0 } ?? totalSteps)
        while trainer.step < end && !shouldStop() {
            let start = DispatchTime.now()
            let batch = batches.batch(step: trainer.step)
            var report = try trainer.train(batch.sequences, trained: batch.trained)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            if let e = evaluation, e.every > 0, trainer.step % e.every == 0 { report.eval = try evaluate(e.windows, bytesPerToken: e.bytesPerToken) }
            try onStep(report, seconds)
            if saveEvery > 0 && trainer.step % saveEvery == 0 && trainer.step < end { try save() }
        }
        try save()
        return trainer.step
    }

    /// Mean cross-entropy over the held-out windows' trained tokens, and in bits per byte of their text.
    func evaluate(_ windows: [Window], bytesPerToken: Double) throws -> (loss: Double, bitsPerByte: Double) {
        var nats = 0.0, tokens = 0
        for start in stride(from: 0, to: windows.count, by: 16) {
            let chunk = windows[start..<min(windows.count, start + 16)]
            let trained = chunk.map(\.trained)
            let count = trained.reduce(0) { $0 + $1.dropFirst().filter { $0 }.count }
            let stats = try trainer.evaluate(chunk.map(\.tokens), trained: trained)
            nats += stats.ceLoss * Double(count)
            tokens += count
        }
        let loss = nats / Double(max(tokens, 1))
        return (loss, loss / log(2) / bytesPerToken)
    }

    /// Writes the weights and the state of the current step.
    public func save() throws {
        let fm = FileManager.default
        let saving = out.appendingPathComponent(Self.savingDirectory)
        try? fm.removeItem(at: saving)
        let stateDir = saving.appendingPathComponent(Self.stateDirectory)
        try fm.createDirectory(at: stateDir, withIntermediateDirectories: true)
        let p = trainer.parameters
        let entries = p.saved.map { Self.entry($0.name, shape: $0.shape, $0.values) }.sorted { $0.name < $1.name }
        try SafeTensorsWriter.writeCheckpoint(entries, to: saving, shardBytes: Self.shardBytes,
                                              metadata: ["format": "pt", "step": String(trainer.step)])
        let state = trainer.state
        let moments = p.specs.enumerated().filter { !state.m[$0.offset].isEmpty }.flatMap { i, spec in
            [Self.entry("m." + spec.name, shape: spec.shape, state.m[i]), Self.entry("v." + spec.name, shape: spec.shape, state.v[i])]
        }
        try SafeTensorsWriter.write(path: stateDir.appendingPathComponent("optimizer.safetensors").path, entries: moments)
        let saved = SavedRun(step: state.step, data: batches.identity, options: trainer.options, controller: .init(state.controller))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(saved).write(to: stateDir.appendingPathComponent("state.json"))
        try Data().write(to: saving.appendingPathComponent(Self.completeMark))
        try Self.finishInterruptedSave(in: out)
    }

    /// Moves a complete `.saving/` into place (replacing the previous checkpoint's files); drops an incomplete one.
    static func finishInterruptedSave(in out: URL) throws {
        let fm = FileManager.default
        let saving = out.appendingPathComponent(savingDirectory)
        guard fm.fileExists(atPath: saving.path) else { return }
        guard fm.fileExists(atPath: saving.appendingPathComponent(completeMark).path) else {
            try fm.removeItem(at: saving)
            return
        }
        let names = try fm.contentsOfDirectory(atPath: saving.path).filter { $0 != completeMark }
        // Weights replaced file by file; the state directory last, as a whole.
        for name in names.sorted() where name != stateDirectory {
            let target = out.appendingPathComponent(name)
            if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
            try fm.moveItem(at: saving.appendingPathComponent(name), to: target)
        }
        if names.contains(stateDirectory) {
            let target = out.appendingPathComponent(stateDirectory)
            if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
            try fm.moveItem(at: saving.appendingPathComponent(stateDirectory), to: target)
        }
        try fm.removeItem(at: saving)
    }

    static func entry(_ name: String, shape: [Int], _ values: [Float]) -> SafeTensorsWriter.Entry {
        SafeTensorsWriter.Entry(name: name, dtype: .f32, shape: shape) { buffer in
            values.withUnsafeBytes { buffer.copyMemory(from: $0) }
        }
    }


    /// The options that differ between a saved run and a resumed one, as "field: saved X, now Y". The step count may
    /// grow or shrink (a run extended) unless the cosine schedule depends on it.
    static func differences(saved: TrainingOptions, now: TrainingOptions) -> [String] {
        func fields(_ options: TrainingOptions) -> [String: String] {
            var o = options
            if o.schedule.shape == .constant { o.schedule.totalSteps = 0 }
            guard let data = try? JSONEncoder().encode(o), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
            var out: [String: String] = [:]
            for (group, value) in object {
                guard let fields = value as? [String: Any] else {
                    out[group] = "\(value)"
                    continue
                }
                for (key, v) in fields { out[group + "." + key] = "\(v)" }
            }
            return out
        }
        let (a, b) = (fields(saved), fields(now))
        return Set(a.keys).union(b.keys).sorted().compactMap { key in
            a[key] == b[key] ? nil : "\(key): saved \(a[key] ?? "none"), now \(b[key] ?? "none")"
        }
    }

    /// trainer_state/state.json. The controller's float64 memory travels as bit patterns, so a resumed run
    /// continues with exactly the values it stopped with.
    struct SavedRun: Codable {
        /// Steps done, which is also the position in the data: step t's batch is a function of t (BatchSource), and
        /// training draws no other random numbers (no dropout), so there is no generator state to keep.
        var step: Int
        /// The data and its order, which a resumed run must share.
        var data: String
        var options: TrainingOptions
        var controller: Controller

        struct Controller: Codable {
            var initial: [[String]], integral: [[String]], previous: [[String]]

            init(_ s: BiasController.State) {
                func bits(_ x: [[Double]]) -> [[String]] { x.map { $0.map { String($0.bitPattern, radix: 16) } } }
                (initial, integral, previous) = (bits(s.initial), bits(s.integral), bits(s.previous))
            }

            var decoded: BiasController.State {
                func values(_ x: [[String]]) -> [[Double]] { x.map { $0.map { Double(bitPattern: UInt64($0, radix: 16) ?? 0) } } }
                return BiasController.State(initial: values(initial), integral: values(integral), previous: values(previous))
            }
        }
    }
}

extension Checkpoint {
    /// One safetensors file, mapped.
    static func tensorFile(_ path: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(mapping: MappedFile(path: path))
    }
}

extension StepReport {
    /// The training log's line for this step: one JSON object; `tokens_per_second`, `seconds` and `mfu` are the timing keys.
    /// `mfu` compares the step's FLOPs per second with `matmulFLOPs` (the rate of the training products) when given.
    public func logLine(tokens: Int, seconds: Double, matmulFLOPs: Double? = nil, targetFFNExperts: Double? = nil) throws -> String {
        var object: [String: Any] = [
            "step": step, "lr": lr, "ce_loss": stats.ceLoss, "z_loss": stats.zLoss, "balance_loss": stats.balanceLoss,
            "total_loss": stats.totalLoss, "grad_norm": gradNorm, "clip_scale": clipScale,
            "layers": stats.layers.enumerated().map { l, layer -> [String: Any] in
                [
                    "expert_counts": layer.expertCounts, "ffn_experts_per_token": layer.ffnExpertsPerToken,
                    "bias_after": biasesAfter[l].map(Double.init), "f": layer.f, "P": layer.P,
                    "router_gradient_balance": routerGradientBalance[l], "router_similarity": routerSimilarity[l],
                ]
            },
            "tokens": tokens, "tokens_per_second": Double(tokens) / max(seconds, 1e-9), "seconds": seconds,
            "hidden_rms": stats.hiddenRMS, "hidden_max": stats.hiddenMax, "flops": flops,
        ]
        if let mtp = stats.mtpLoss { object["mtp_loss"] = mtp }
        if let matmulFLOPs { object["mfu"] = flops / max(seconds, 1e-9) / matmulFLOPs }
        if let targetFFNExperts { object["target_ffn_experts"] = targetFFNExperts }
        if let eval {
            object["eval_loss"] = eval.loss
            object["eval_bits_per_byte"] = eval.bitsPerByte
        }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
