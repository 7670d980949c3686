import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// longcat-fuzz: a seeded fuzzer over the program's input files (config.json, safetensors, tokenizer.json, chat
/// templates). Every case must end in success or a thrown error whose message names the problem; a crash, a hang or
/// an unnamed error fails the run. See `longcat-fuzz --help`.

let usage = """
    usage: longcat-fuzz [supervise] [--seed N] [--cases N] [--start I] [--jobs N] [--watchdog S] [--time-budget S]
                        [--memory-limit-mb M] [--fixtures DIR] [--verbose]
           longcat-fuzz case --seed N --index I [--keep DIR] [--fixtures DIR]
           longcat-fuzz run --seed N --start I --end J [--fixtures DIR] [--memory-limit-mb M]

      supervise  (default) run cases start ..< start + cases in child processes of this binary, restarting a child
                 after a case that crashed it; print the failing cases, how to rerun each, and a summary line.
                 Exit status 1 if any case crashed, hung (--watchdog seconds without a result, default 60) or ended
                 in an error without a message. Defaults: --seed 1 --cases 2400 --jobs 2.
                 --time-budget S stops starting cases after S seconds (the summary says how many ran).
                 --memory-limit-mb caps each child's address space (default 3072; resident memory under ASan).
      case       run one case in this process and print its mutation and outcome (a crash crashes this process,
                 for a debugger); --keep DIR writes its input files to DIR and keeps them.
      run        the child: one tab-separated line per case on stdout (index, kind, outcome, message).

    Cases cycle through config, safetensors, tokenizer and template; case I of seed N is always the same input.
    --fixtures defaults to the package's Tests/Fixtures.
    """

struct Arguments {
    var mode = "supervise"
    var values: [String: String] = [:]
    var flags: Set<String> = []

    init(_ argv: [String]) throws {
        var rest = argv[...]
        if let first = rest.first, !first.hasPrefix("-") {
            mode = first
            rest = rest.dropFirst()
        }
        while let arg = rest.popFirst() {
            switch arg {
            case "--verbose", "--help", "-h": flags.insert(arg)
            case _ where arg.hasPrefix("--"):
                guard let value = rest.popFirst() else { throw FuzzError("\(arg) needs a value") }
                values[String(arg.dropFirst(2))] = value
            default: throw FuzzError("unexpected argument '\(arg)'")
            }
        }
    }

    func int(_ name: String, _ defaultValue: Int) throws -> Int {
        guard let text = values[name] else { return defaultValue }
        guard let value = Int(text) else { throw FuzzError("--\(name) must be an integer, got '\(text)'") }
        return value
    }

    func seed() throws -> UInt64 {
        guard let text = values["seed"] else { return 1 }
        guard let value = UInt64(text) else { throw FuzzError("--seed must be a non-negative integer, got '\(text)'") }
        return value
    }
}

/// The running binary's path, for re-executing it as the child.
func executablePath() -> String {
    #if os(Linux)
    var buffer = [CChar](repeating: 0, count: 4_096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    if n > 0 { return String(cString: Array(buffer[..<n]) + [0]) }
    #endif
    let first = CommandLine.arguments[0]
    if first.hasPrefix("/") { return first }
    return FileManager.default.currentDirectoryPath + "/" + first
}

let defaultFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Tests/Fixtures").path

func main() -> Int32 {
    do {
        let args = try Arguments(Array(CommandLine.arguments.dropFirst()))
        if args.flags.contains("--help") || args.flags.contains("-h") {
            print(usage)
            return 0
        }
        let fixtures = args.values["fixtures"] ?? defaultFixtures
        let corpus = try Corpus(fixtures: URL(fileURLWithPath: fixtures))
        let seed = try args.seed()
        let memoryLimit = try args.int("memory-limit-mb", Runner.defaultMemoryLimitMB)
        switch args.mode {
        case "run":
            let start = try args.int("start", 0)
            let end = try args.int("end", start + 1)
            guard start >= 0, end >= start else { throw FuzzError("need 0 <= --start <= --end") }
            return Runner.runRange(corpus: corpus, seed: seed, start: start, end: end, memoryLimitMB: memoryLimit)
        case "case":
            let index = try args.int("index", -1)
            guard index >= 0 else { throw FuzzError("case needs --index I (I >= 0)") }
            let c = corpus.makeCase(seed: seed, index: index)
            print("case \(index) (\(c.kind.rawValue), seed \(seed)): \(c.description)")
            fflush(stdout)  // before the case runs: if it crashes, the mutation is on screen
            let scratch: URL
            if let keep = args.values["keep"] {
                // The case empties its folder first: never someone's files.
                if let existing = try? FileManager.default.contentsOfDirectory(atPath: keep), !existing.isEmpty {
                    throw FuzzError("--keep \(keep): choose a new or empty directory (the case writes its inputs there)")
                }
                scratch = URL(fileURLWithPath: keep)
            } else {
                scratch = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-fuzz-case-\(getpid())")
            }
            Runner.limitMemory(megabytes: memoryLimit)
            let (outcome, message) = Runner.run(c, scratch: scratch)
            if args.values["keep"] == nil { try? FileManager.default.removeItem(at: scratch) } else { print("inputs kept in \(scratch.path)") }
            print("\(outcome.rawValue): \(message)")
            return outcome == .unnamed ? 1 : 0
        case "supervise":
            var options = Supervisor.Options(fixtures: fixtures)
            options.seed = seed
            options.start = try args.int("start", 0)
            options.cases = try args.int("cases", 2_400)
            options.jobs = try args.int("jobs", 2)
            options.watchdog = Double(try args.int("watchdog", 60))
            options.memoryLimitMB = memoryLimit
            if args.values["time-budget"] != nil { options.timeBudget = Double(try args.int("time-budget", 0)) }
            options.verbose = args.flags.contains("--verbose")
            guard options.start >= 0, options.cases >= 0, options.jobs >= 1, options.watchdog > 0 else {
                throw FuzzError("need --start >= 0, --cases >= 0, --jobs >= 1, --watchdog > 0")
            }
            return Supervisor(options: options, corpus: corpus, binary: executablePath()).run()
        default:
            throw FuzzError("unknown mode '\(args.mode)' (supervise, case or run)\n\n\(usage)")
        }
    } catch {
        FileHandle.standardError.write(Data("longcat-fuzz: \(error)\n".utf8))
        return 2
    }
}

exit(main())
