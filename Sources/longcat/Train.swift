import ArgumentParser
import Foundation
import LongCatModel
import LongCatTensor
import LongCatTokenizer
import LongCatTrain

/// Set by SIGINT; the run stops at the next step boundary with its state saved.
nonisolated(unsafe) private var interruptRequested: sig_atomic_t = 0

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a LongCat-Flash checkpoint with the report's objective, AdamW and expert-bias controller.",
        discussion: """
            Each step trains on one batch of --batches (a JSON object whose steps[t].input_ids lists the step's \
            token-id sequences; the list repeats when --steps is longer) and appends one JSON line to --log. --out \
            becomes a Hugging Face checkpoint of the latest weights (float32) plus trainer_state/, saved every \
            --save-every steps, at the end, after --stop-after steps and on SIGINT (at the next step boundary); \
            --resume continues the run saved in --out bit for bit, given the same options.
            """)

    @Option(name: .long, help: "A JSON recipe: any of these options under its long name with _ for - (e.g. {\"lr\": 3e-3, \"warmup_steps\": 100}); options on the command line override it. The options used are written to --out/recipe.json.")
    var recipe: String?
    @Option(name: .long, help: "Checkpoint to start from (not needed with --resume).")
    var model: String?
    @Option(name: .long, help: "Output directory: the trained checkpoint and trainer_state/.")
    var out: String
    @Option(name: .long, help: "Training log: one JSON line per optimizer step.")
    var log: String
    @Option(name: .long, help: "JSON batches: {\"steps\": [{\"input_ids\": [[ids...], ...]}, ...]} (or --data).")
    var batches: String?
    @Option(name: .long, parsing: .upToNextOption, help: "Training text: plain text, fortune files (records between lines holding %) or JSONL chats; tokenized with the model's tokenizer.json, joined with EOS and packed into --seq-len windows.")
    var data: [String] = []
    @Option(name: .long, help: "auto (by content), text, fortune or chat (assistant tokens trained only).")
    var dataFormat: DataFormat = .auto
    @Option(name: .long, help: "Tokens per training window (--data).")
    var seqLen: Int = 128
    @Option(name: .long, help: "Windows per step (--data).")
    var batchSize: Int = 16
    @Option(name: .long, help: "Seed of the window order (--data).")
    var seed: UInt64 = 0
    @Option(name: .long, parsing: .upToNextOption, help: "Held-out text evaluated every --eval-every steps (default: --eval-fraction of --data).")
    var evalData: [String] = []
    @Option(name: .long, help: "Fraction of the --data windows held out for evaluation when no --eval-data is given.")
    var evalFraction: Double = 0.05
    @Option(name: .long, help: "Evaluate every N steps into that step's log line (eval_loss, eval_bits_per_byte; 0: never).")
    var evalEvery: Int = 0
    @Option(name: .long, help: "Total optimizer steps of the run.")
    var steps: Int
    @Option(name: .long, help: "Peak learning rate.")
    var lr: Double = 1e-3
    @Option(name: .long, help: "Peak learning rate of the embedding table (default: --lr), on the same schedule.")
    var lrEmbedding: Double?
    @Option(name: .long, help: "Linear warm-up steps: lr · min(1, (t+1)/warmup).")
    var warmupSteps: Int = 0
    @Option(name: .long, help: "After warm-up: constant, or cosine from --lr to --min-lr over the remaining steps.")
    var lrSchedule: LearningRateSchedule.Shape = .constant
    @Option(name: .long, help: "Final learning rate of the cosine schedule.")
    var minLr: Double = 0
    @Option(name: .long, help: "AdamW β1.")
    var beta1: Double = 0.9
    @Option(name: .long, help: "AdamW β2.")
    var beta2: Double = 0.95
    @Option(name: .long, help: "AdamW ε (the report: 1e-16).")
    var eps: Double = 1e-16
    @Option(name: .long, help: "Decoupled weight decay on tensors of two or more dimensions.")
    var weightDecay: Double = 0.1
    @Option(name: .long, help: "Clip the global gradient norm to this (0: no clipping).")
    var gradClip: Double = 1
    @Option(name: .customLong("z-loss"), help: "λ of the hidden z-loss on the last layer's output.")
    var zLoss: Double = 0
    @Option(name: .long, help: "α of the device-level balance loss (identity experts as their own group).")
    var balanceLoss: Double = 0
    @Option(name: .long, help: "D: groups of FFN experts in the balance loss (must divide n_routed_experts).")
    var balanceGroups: Int = 1
    @Option(name: .customLong("target-ffn-experts"), help: "K_e: target FFN experts per token (default: moe_topk · N / (N + Z)).")
    var targetFFNExperts: Double?
    @Option(name: .long, help: "λ of the MTP head's cross-entropy (t_{p+2} from h_p and t_{p+1}; its gradient reaches the model too); a model without a head gets a new one.")
    var mtpLoss: Double = 0
    @Option(name: .long, help: "What the MTP head learns to predict: text (the token after next) or model (the model's own greedy choice there, what speculative decoding accepts: self-distillation).")
    var mtpTargets: Objective.MTPTargets = .text
    @Option(name: .long, help: "mtp: fit only the MTP head (a new one for a model without) to the model, whose weights and expert biases stay as they are.")
    var trainOnly: TrainedPart?
    @Option(name: .long, help: "μ of the expert-bias update (Eq. 2).")
    var biasRate: Double = 1e-3
    @Option(name: .long, help: "integral (Eq. 2) or pid (with --kp, --ki, --kd).")
    var biasController: BiasController.Kind = .integral
    @Option(name: .long, help: "PID proportional gain.")
    var kp: Double = 0
    @Option(name: .long, help: "PID integral gain (equal to μ with --kp 0 --kd 0: Eq. 2).")
    var ki: Double = 0
    @Option(name: .long, help: "PID derivative gain.")
    var kd: Double = 0
    @Option(name: .long, help: "Worker threads (results are identical for any count).")
    var threads: Int?
    @Flag(name: .long, help: "Keep only each layer's input and recompute its activations in backward (less memory, same results).")
    var recompute = false
    @Flag(name: .long, help: "Continue the run saved in --out.")
    var resume = false
    @Option(name: .long, help: "End after this many steps of this invocation, with the state saved.")
    var stopAfter: Int?
    @Option(name: .long, help: "Save every N steps (0: only at the end).")
    var saveEvery: Int = 50

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        guard lr > 0, minLr >= 0, warmupSteps >= 0 else { throw ValidationError("--lr must be positive, --min-lr and --warmup-steps not negative") }
        guard (0..<1).contains(beta1), (0..<1).contains(beta2), eps > 0 else { throw ValidationError("--beta1 and --beta2 must be in [0, 1), --eps positive") }
        guard weightDecay >= 0, gradClip >= 0, zLoss >= 0, balanceLoss >= 0, biasRate >= 0, mtpLoss >= 0, mtpLoss.isFinite else {
            throw ValidationError("--weight-decay, --grad-clip, --z-loss, --balance-loss, --mtp-loss and --bias-rate must not be negative")
        }
        if trainOnly == .mtp && mtpLoss > 0 { throw ValidationError("--train-only mtp trains the head on its own loss; leave out --mtp-loss") }
        if mtpTargets != .text && trainOnly != .mtp && mtpLoss == 0 { throw ValidationError("--mtp-targets needs --mtp-loss or --train-only mtp") }
        guard balanceGroups >= 1, saveEvery >= 0 else { throw ValidationError("--balance-groups must be at least 1, --save-every not negative") }
        if let stopAfter, stopAfter < 1 { throw ValidationError("--stop-after must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if !resume && model == nil { throw ValidationError("--model is required (or --resume to continue the run in --out)") }
        guard (batches == nil) != data.isEmpty else { throw ValidationError("give --batches or --data (one of them)") }
        guard seqLen >= 2, batchSize >= 1, evalEvery >= 0, (0..<1).contains(evalFraction) else {
            throw ValidationError("--seq-len must be at least 2, --batch-size at least 1, --eval-every not negative, --eval-fraction in [0, 1)")
        }
    }

    func options(config: ModelConfig) throws -> TrainingOptions {
        guard config.numExperts % balanceGroups == 0 else {
            throw ValidationError("--balance-groups \(balanceGroups) does not divide n_routed_experts \(config.numExperts)")
        }
        let target = targetFFNExperts ?? Double(config.topK * config.numExperts) / Double(config.totalExperts)
        guard target > 0, target <= Double(config.topK), config.numZeroExperts == 0 || target < Double(config.topK) else {
            throw ValidationError("--target-ffn-experts must be in (0, moe_topk\(config.numZeroExperts > 0 ? ")" : "]") = \(config.topK)")
        }
        return TrainingOptions(
            objective: Objective(zLoss: Float(zLoss), balanceLoss: Float(balanceLoss), balanceGroups: balanceGroups, targetFFNExperts: target,
                                 mtpLoss: Float(mtpLoss), mtpTargets: mtpTargets),
            optimizer: AdamW(beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay, gradClip: gradClip),
            schedule: LearningRateSchedule(lr: lr, warmupSteps: warmupSteps, shape: lrSchedule, minLR: minLr, totalSteps: steps),
            biasController: BiasController(kind: biasController, rate: biasRate, kp: kp, ki: ki, kd: kd),
            embeddingLR: lrEmbedding, trainsOnlyMTP: trainOnly == .mtp)
    }

    /// Every option of this run under its recipe name: what --out/recipe.json records.
    var usedRecipe: [String: Any] {
        var r: [String: Any] = [
            "steps": steps, "lr": lr, "warmup_steps": warmupSteps, "lr_schedule": lrSchedule.rawValue, "min_lr": minLr,
            "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weightDecay, "grad_clip": gradClip, "z_loss": zLoss,
            "balance_loss": balanceLoss, "balance_groups": balanceGroups, "bias_rate": biasRate,
            "bias_controller": biasController.rawValue, "kp": kp, "ki": ki, "kd": kd, "recompute": recompute, "save_every": saveEvery,
        ]
        if let lrEmbedding { r["lr_embedding"] = lrEmbedding }
        if mtpLoss > 0 { r["mtp_loss"] = mtpLoss }
        if let trainOnly { r["train_only"] = trainOnly.rawValue }
        if mtpTargets != .text { r["mtp_targets"] = mtpTargets.rawValue }
        if let targetFFNExperts { r["target_ffn_experts"] = targetFFNExperts }
        if let model { r["model"] = model }
        if let batches { r["batches"] = batches }
        if !data.isEmpty {
            r["data"] = data
            r["data_format"] = dataFormat.rawValue
            r["seq_len"] = seqLen
            r["batch_size"] = batchSize
            r["seed"] = seed
        }
        if evalEvery > 0 {
            r["eval_every"] = evalEvery
            if evalData.isEmpty { r["eval_fraction"] = evalFraction } else { r["eval_data"] = evalData }
        }
        return r
    }

    func run() throws {
        if let threads { Parallel.threadCount = threads }
        // A step allocates and frees the same large activation arrays over and over: keep them in the heap instead
        // of mapping fresh zeroed pages for each.
        TrainingKernels.keepFreedMemory()
        let source = resume ? out : model!
        if resume && !["trainer_state/state.json", ".saving/COMPLETE"].contains(where: { FileManager.default.fileExists(atPath: out + "/" + $0) }) {
            throw TrainingError.cannotResume("no run was saved in \(out) (trainer_state/state.json is missing); start one with --model")
        }
        if !resume { try ModelOptions.checkDirectory(source) }
        let config = try ModelConfig.load(path: source + "/config.json")
        let options = try options(config: config)
        let (batchSource, evaluation) = try loadData(modelDirectory: source, config: config)
        let run = resume
            ? try TrainingRun(resuming: out, options: options, batches: batchSource, totalSteps: steps)
            : try TrainingRun(model: source, out: out, options: options, batches: batchSource, totalSteps: steps)
        run.evaluation = evaluation
        try JSONSerialization.data(withJSONObject: usedRecipe, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: out).appendingPathComponent("recipe.json"))
        run.trainer.recomputesActivations = recompute
        let logFile = try TrainingLog(path: log, keepingStepsBefore: run.trainer.step)
        signal(SIGINT) { _ in interruptRequested = 1 }
        defer { signal(SIGINT, SIG_DFL) }
        let first = run.trainer.step
        // The rate of the float32 products training runs on, which MFU is measured against.
        let matmul = MatmulRate.measureTraining()
        Console.progress(String(format: "training %@ from step %d to %d (matmul rate %.1f GFLOP/s)", config.summaryLine, first, steps, matmul / 1e9))
        let terminal = isatty(STDERR_FILENO) != 0
        var elapsed = 0.0
        let reached = try run.run(stopAfter: stopAfter, saveEvery: saveEvery, shouldStop: { interruptRequested != 0 }) { report, seconds in
            let tokens = batchSource.batch(step: report.step).tokens
            try logFile.append(try report.logLine(tokens: tokens, seconds: seconds, matmulFLOPs: matmul,
                                                  targetFFNExperts: options.objective.targetFFNExperts))
            elapsed += seconds
            let done = report.step + 1 - first, left = Double(steps - report.step - 1) * elapsed / Double(done)
            let mtp = report.stats.mtpLoss.map { String(format: ", MTP %.4f", $0) } ?? ""
            let line = String(format: "step %d/%d: loss %.4f (ce %.4f%@), grad norm %.3f, lr %.2e, %.0f tok/s, MFU %.0f%%, %.2f FFN experts/token, ETA %@",
                              report.step + 1, steps, report.stats.totalLoss, report.stats.ceLoss, mtp, report.gradNorm, report.lr,
                              Double(tokens) / seconds, 100 * report.flops / seconds / matmul,
                              report.stats.layers.map(\.ffnExpertsPerToken).reduce(0, +) / Double(max(1, report.stats.layers.count)),
                              Formatting.duration(left))
            // On a terminal one line, rewritten each step; in a file or pipe a line per step.
            FileHandle.standardError.write(Data((terminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
        }
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
        let why = interruptRequested != 0 ? " (interrupted)" : reached < steps ? " (--stop-after)" : ""
        Console.progress("saved step \(reached) of \(steps) in \(out)\(why)" + (reached < steps ? "; continue with --resume" : ""))
    }
}

extension Train {
    /// The step batches (--batches, or --data packed into windows) and the held-out windows.
    func loadData(modelDirectory: String, config: ModelConfig) throws -> (BatchSource, (windows: [Window], bytesPerToken: Double, every: Int)?) {
        if let batches { return (try TrainingBatches(file: batches), nil) }
        let tokenizer = try Tokenizer(path: modelDirectory)
        guard let eos = config.eosTokenIds.first else { throw ValidationError("the model's config names no eos_token_id to join documents with") }
        var documents = try TrainingData.documents(files: data, format: dataFormat, tokenizer: tokenizer)
        var held: [Document] = []
        if evalEvery > 0 {
            if !evalData.isEmpty {
                held = try TrainingData.documents(files: evalData, format: dataFormat, tokenizer: tokenizer)
            } else {
                // Every k-th document, so the held-out text comes from the whole corpus.
                let k = max(2, Int((1 / max(evalFraction, 1e-9)).rounded()))
                held = documents.enumerated().filter { $0.offset % k == k - 1 }.map(\.element)
                documents = documents.enumerated().filter { $0.offset % k != k - 1 }.map(\.element)
            }
        }
        let windows = TrainingData.pack(documents, eos: eos, length: seqLen)
        guard !windows.isEmpty else { throw TrainingError.badData("--data holds fewer than --seq-len \(seqLen) tokens") }
        let identity = "data: \(data.joined(separator: " ")) (\(dataFormat.rawValue)), \(windows.count) windows of \(seqLen), \(batchSize) per step, seed \(seed)"
        Console.progress("data: \(documents.count) documents, \(windows.count) windows of \(seqLen) tokens, \(batchSize) per step")
        let source = PackedBatches(windows: windows, size: batchSize, seed: seed, identity: identity)
        guard evalEvery > 0 else { return (source, nil) }
        let heldWindows = TrainingData.pack(held, eos: eos, length: seqLen)
        guard !heldWindows.isEmpty else { throw TrainingError.badData("the held-out text holds fewer than --seq-len \(seqLen) tokens") }
        let trainedTokens = held.reduce(0) { $0 + $1.trained.filter { $0 }.count }
        let bytes = held.reduce(0) { $0 + $1.trainedBytes }
        return (source, (heldWindows, Double(bytes) / Double(max(trainedTokens, 1)), evalEvery))
    }
}

/// The training log: one JSON line per step. Opening it for a run at step k keeps the lines of steps before k and
/// drops later ones (written by a run that stopped before saving them), so every step has exactly one line.
final class TrainingLog {
    let handle: FileHandle

    init(path: String, keepingStepsBefore step: Int) throws {
        let fm = FileManager.default
        var kept = ""
        if step > 0, let data = fm.contents(atPath: path) {
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let s = object["step"] as? Int, s < step else { continue }
                kept += line + "\n"
            }
        }
        guard fm.createFile(atPath: path, contents: Data(kept.utf8)), let handle = FileHandle(forWritingAtPath: path) else {
            throw BadInputFile(path: path, reason: "cannot write the training log")
        }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    func append(_ line: String) throws {
        try handle.write(contentsOf: Data((line + "\n").utf8))
    }

    deinit { try? handle.close() }
}

/// What `--train-only` trains.
enum TrainedPart: String, ExpressibleByArgument {
    case mtp
}

extension LearningRateSchedule.Shape: ExpressibleByArgument {}
extension DataFormat: ExpressibleByArgument {}
extension Objective.MTPTargets: ExpressibleByArgument {}
extension BiasController.Kind: ExpressibleByArgument {}

/// `--recipe FILE` (train): the file's options become arguments placed before the command line's own; an option
/// the command line gives is not taken from the recipe, so the command line overrides it.
enum Recipe {
    struct Invalid: Error, CustomStringConvertible {
        let path: String, reason: String
        var description: String { "recipe \(path): \(reason)" }
    }

    static func expand(_ arguments: [String]) throws -> [String] {
        guard arguments.first == "train", let at = arguments.firstIndex(where: { $0 == "--recipe" || $0.hasPrefix("--recipe=") }) else {
            return arguments
        }
        let path = arguments[at].hasPrefix("--recipe=") ? String(arguments[at].dropFirst("--recipe=".count))
            : at + 1 < arguments.count ? arguments[at + 1] : ""
        guard let data = FileManager.default.contents(atPath: path) else { throw Invalid(path: path, reason: "cannot read it") }
        guard case .object(let object)? = try? JSONValue.parse(data) else {
            throw Invalid(path: path, reason: "not a JSON object of option names and values")
        }
        func text(_ v: JSONValue) -> String? {
            switch v {
            case .int(let i): return String(i)
            case .double(let d): return String(d)
            case .string(let s): return s
            default: return nil
            }
        }
        // Options the command line gives are left out (lists would otherwise join the recipe's).
        let given = Set(arguments.filter { $0.hasPrefix("--") }.map { String($0.prefix { $0 != "=" }) })
        var expanded: [String] = []
        for (key, value) in object {
            let option = "--" + key.replacingOccurrences(of: "_", with: "-")
            guard !given.contains(option) else { continue }
            switch value {
            case .bool(let on): if on { expanded.append(option) }
            case .array(let list) where list.allSatisfy({ text($0) != nil }): expanded += [option] + list.compactMap(text)
            default:
                guard let v = text(value) else { throw Invalid(path: path, reason: "the value of \"\(key)\" is not a number, string, boolean or list") }
                expanded.append(option + "=" + v)
            }
        }
        return ["train"] + expanded + arguments.dropFirst()
    }
}
