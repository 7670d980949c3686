import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs the cases in child processes of this same binary, reading one line per case. A child that dies (a trap,
/// a signal, a sanitizer report) is recorded against the case it was running and restarted after it; a child
/// that prints nothing for `watchdog` seconds is killed and its case recorded as a hang.
final class Supervisor {
    struct Options {
        var seed: UInt64 = 1
        var start = 0
        var cases = 2_400
        var jobs = 2
        var watchdog: Double = 60
        /// Stop starting cases after this many seconds (nil: run them all).
        var timeBudget: Double?
        var verbose = false
        var memoryLimitMB = Runner.defaultMemoryLimitMB
        var fixtures: String
    }

    struct Failure {
        let index: Int
        let kind: CaseKind
        /// "crash (signal 4, SIGILL)", "hang (no result for 60 s)", "unnamed error"
        let what: String
        let detail: String
    }

    let options: Options
    let corpus: Corpus
    let binary: String
    private let lock = NSLock()
    private var finished: [CaseKind: (ok: Int, named: Int)] = [:]
    private var failures: [Failure] = []
    private var completed = 0
    private let started = Date()

    init(options: Options, corpus: Corpus, binary: String) {
        self.options = options
        self.corpus = corpus
        self.binary = binary
    }

    var elapsed: Double { Date().timeIntervalSince(started) }
    var timeIsUp: Bool { options.timeBudget.map { elapsed > $0 } ?? false }

    /// Runs everything and prints the report; returns the exit status (0: every case ok or a named error).
    func run() -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let jobs = max(1, min(options.jobs, options.cases))
        let per = (options.cases + jobs - 1) / jobs
        let ranges = (0..<jobs).map { j in
            options.start + min(j * per, options.cases)..<options.start + min((j + 1) * per, options.cases)
        }.filter { !$0.isEmpty }
        print("fuzz: seed \(options.seed), cases \(options.start)..<\(options.start + options.cases), \(ranges.count) job(s), "
              + "watchdog \(Int(options.watchdog)) s\(options.timeBudget.map { ", time budget \(Int($0)) s" } ?? "")")
        flush()
        let group = DispatchGroup()
        for range in ranges {
            group.enter()
            Thread.detachNewThread {
                self.work(range)
                group.leave()
            }
        }
        group.wait()
        return report()
    }

    private func flush() { fflush(stdout) }

    private func record(_ index: Int, _ kind: CaseKind, _ outcome: Outcome, _ message: String) {
        lock.lock()
        defer { lock.unlock() }
        completed += 1
        var counts = finished[kind] ?? (0, 0)
        switch outcome {
        case .ok: counts.ok += 1
        case .error: counts.named += 1
        case .unnamed:
            failures.append(Failure(index: index, kind: kind, what: "unnamed error", detail: message))
            announce(failures.last!)
        }
        finished[kind] = counts
        if options.verbose { print("case \(index) \(kind.rawValue): \(outcome.rawValue): \(message)") }
        if completed % 500 == 0 { print("fuzz: \(completed) cases done, \(failures.count) failing, \(Int(elapsed)) s") }
        flush()
    }

    private func recordFailure(_ index: Int, what: String, stderrHead: String) {
        let c = corpus.makeCase(seed: options.seed, index: index)
        lock.lock()
        defer { lock.unlock() }
        completed += 1
        var detail = "mutation: \(c.description)"
        let excerpt = Self.excerpt(stderrHead)
        if !excerpt.isEmpty { detail += "\n    stderr: " + excerpt.joined(separator: "\n            ") }
        failures.append(Failure(index: index, kind: c.kind, what: what, detail: detail))
        announce(failures.last!)
        flush()
    }

    /// The lines of a crashed child's stderr that say what happened: the runtime's or the sanitizer's message and
    /// the first frames with a source location; otherwise its last lines.
    static func excerpt(_ stderr: String) -> [String] {
        // (Register dumps show memory as text, which may spell "Fatal error" too.)
        let lines = stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && $0.range(of: #"^[a-z0-9]{2,6} 0x[0-9a-f]{16}"#, options: .regularExpression) == nil }
        let messages = lines.filter { line in
            ["Fatal error", "runtime failure", "Precondition failed", "Assertion failed", "ERROR: AddressSanitizer",
             "SUMMARY: AddressSanitizer", "ERROR: LeakSanitizer", "Invalid read", "Invalid write", "is not allowed"]
                .contains { line.contains($0) }
        }
        let frames = lines.filter { line in
            (line.contains(" at /") || line.contains(" in ")) && (line.contains(".swift:") || line.contains(".c:"))
        }
        let picked = Array(messages.prefix(4)) + Array(frames.prefix(6))
        return picked.isEmpty ? Array(lines.suffix(8)) : picked
    }

    private func announce(_ f: Failure) {
        print("FAIL case \(f.index) (\(f.kind.rawValue)): \(f.what)\n    \(f.detail)\n    rerun: \(rerun(f.index))")
    }

    func rerun(_ index: Int) -> String {
        "\(displayPath(binary)) case --seed \(options.seed) --index \(index)"
    }

    private func displayPath(_ path: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath + "/"
        return path.hasPrefix(cwd) ? String(path.dropFirst(cwd.count)) : path
    }

    // MARK: One job

    private func work(_ range: Range<Int>) {
        var next = range.lowerBound
        while next < range.upperBound && !timeIsUp {
            next = runChild(from: next, to: range.upperBound)
        }
    }

    /// Starts a child on `from ..< to`; returns the index to continue from.
    private func runChild(from: Int, to: Int) -> Int {
        var arguments = [binary, "run", "--seed", String(options.seed), "--start", String(from), "--end", String(to),
                         "--fixtures", options.fixtures, "--memory-limit-mb", String(options.memoryLimitMB)]
        arguments[0] = binary
        var environment = ProcessInfo.processInfo.environment
        // Under AddressSanitizer: no leak report at exit (the runtime's own caches), and a resident-memory cap in
        // place of the address-space limit ASan cannot live with.
        if environment["ASAN_OPTIONS"] == nil {
            environment["ASAN_OPTIONS"] = "detect_leaks=0:hard_rss_limit_mb=\(options.memoryLimitMB):allocator_may_return_null=0"
        }
        guard let child = ChildProcess(arguments: arguments, environment: environment) else {
            recordFailure(from, what: "could not start the child process (\(String(cString: strerror(errno))))", stderrHead: "")
            return from + 1
        }
        var next = from
        var lastLine = Date()
        var stdoutBuffer = [UInt8]()
        var stderrHead = [UInt8]()
        var hung = false
        var stoppedForTime = false
        while !child.outputClosed || !child.errorClosed {
            let chunks = child.poll(timeoutMilliseconds: 500)
            if let out = chunks.out {
                stdoutBuffer += out
                while let newline = stdoutBuffer.firstIndex(of: 0x0A) {
                    let line = String(decoding: stdoutBuffer[..<newline], as: UTF8.self)
                    stdoutBuffer.removeSubrange(...newline)
                    let fields = line.split(separator: "\t", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
                    guard fields.count == 4, let index = Int(fields[0]), let kind = CaseKind(rawValue: fields[1]),
                          let outcome = Outcome(rawValue: fields[2]) else { continue }
                    record(index, kind, outcome, fields[3])
                    next = index + 1
                    lastLine = Date()
                    stderrHead.removeAll()
                }
            }
            if let err = chunks.err {
                // The head says what happened (a runtime message, a sanitizer report, the first frames); the
                // rest of a long backtrace is dropped.
                if stderrHead.count < 32_768 { stderrHead += err.prefix(32_768 - stderrHead.count) }
            }
            if Date().timeIntervalSince(lastLine) > options.watchdog {
                hung = true
                child.kill()
                break
            }
            if timeIsUp {
                stoppedForTime = true
                child.kill()
                break
            }
        }
        let status = child.wait()
        try? FileManager.default.removeItem(
            at: FileManager.default.temporaryDirectory.appendingPathComponent("longcat-fuzz-\(child.pid)"))
        let tail = String(decoding: stderrHead, as: UTF8.self)
        if stoppedForTime { return to }
        if hung {
            recordFailure(next, what: "hang (no result for \(Int(options.watchdog)) s; killed)", stderrHead: tail)
            return next + 1
        }
        if next >= to, case .exited(0) = status { return to }
        var what: String
        switch status {
        case .signaled(let signal): what = "crash (signal \(signal), \(Self.signalName(signal))"
        case .exited(let code): what = "crash (exit status \(code)\(tail.contains("AddressSanitizer") ? ", AddressSanitizer report" : "")"
        }
        if tail.contains("failed to allocate") || tail.contains("unable to allocate") || tail.contains("hard rss limit") {
            what += ", out of memory: the child may use \(options.memoryLimitMB) MB"
        }
        what += ")"
        if next >= to { return to }
        recordFailure(next, what: what, stderrHead: tail)
        return next + 1
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGILL: return "SIGILL: a Swift runtime trap"
        case SIGTRAP: return "SIGTRAP: a Swift runtime trap"
        case SIGABRT: return "SIGABRT"
        case SIGBUS: return "SIGBUS"
        case SIGFPE: return "SIGFPE"
        case SIGKILL: return "SIGKILL"
        case SIGSEGV: return "SIGSEGV"
        default: return "signal \(signal)"
        }
    }

    // MARK: Report

    private func report() -> Int32 {
        let seconds = Int(elapsed.rounded())
        var perKind: [CaseKind: Int] = [:]
        var fine = 0
        for (kind, counts) in finished {
            perKind[kind, default: 0] += counts.ok + counts.named
            fine += counts.ok + counts.named
        }
        for f in failures { perKind[f.kind, default: 0] += 1 }
        let crashes = failures.filter { $0.what.hasPrefix("crash") || $0.what.hasPrefix("could not") }.count
        let hangs = failures.filter { $0.what.hasPrefix("hang") }.count
        let unnamed = failures.filter { $0.what == "unnamed error" }.count
        let kinds = CaseKind.allCases.map { "\(perKind[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ")
        print("")
        for kind in CaseKind.allCases {
            let counts = finished[kind] ?? (0, 0)
            let bad = failures.filter { $0.kind == kind }.count
            print("  \(kind.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) \(counts.ok) accepted, \(counts.named) named errors, \(bad) failing")
        }
        if !failures.isEmpty {
            print("\nfailing cases (rerun one with the command shown; add --keep DIR to keep its input files):")
            for f in failures.sorted(by: { $0.index < $1.index }) {
                print("  case \(f.index) (\(f.kind.rawValue)): \(f.what): \(f.detail.split(separator: "\n").first ?? "")")
                print("    rerun: \(rerun(f.index))")
            }
        }
        var summary = "fuzz: \(completed) cases (\(kinds)): \(fine) ok or named errors, \(crashes) crashes, \(hangs) hangs"
        if unnamed > 0 { summary += ", \(unnamed) unnamed errors" }
        summary += " in \(seconds) s"
        if completed < options.cases { summary += " (\(completed) of \(options.cases) cases fit in the \(Int(options.timeBudget ?? 0)) s budget)" }
        print(summary)
        flush()
        return failures.isEmpty ? 0 : 1
    }
}

/// A child process with its stdout and stderr on pipes.
final class ChildProcess {
    enum Status { case exited(Int32), signaled(Int32) }

    let pid: pid_t
    private let outFD: Int32
    private let errFD: Int32
    private(set) var outputClosed = false
    private(set) var errorClosed = false

    init?(arguments: [String], environment: [String: String]) {
        var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        Self.spawnLock.lock()
        defer { Self.spawnLock.unlock() }
        // Other jobs spawn at the same time: no pipe end may leak into their children (a leaked write end would
        // keep a pipe open after its child died), so the ends are close-on-exec from the start.
        guard Self.makePipe(&outPipe) else { return nil }
        guard Self.makePipe(&errPipe) else {
            close(outPipe[0]); close(outPipe[1])
            return nil
        }
        #if os(Linux)
        var actions = posix_spawn_file_actions_t()
        #else
        var actions: posix_spawn_file_actions_t? = nil
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &actions, nil, argv, envp)
        close(outPipe[1])
        close(errPipe[1])
        guard rc == 0 else {
            close(outPipe[0]); close(errPipe[0])
            errno = rc
            return nil
        }
        self.pid = pid
        outFD = outPipe[0]
        errFD = errPipe[0]
    }

    /// Held from creating a child's pipes to spawning it, so that no other job's child inherits them before they
    /// are marked close-on-exec.
    private static let spawnLock = NSLock()

    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }

    deinit {
        if !outputClosed { close(outFD) }
        if !errorClosed { close(errFD) }
    }

    /// Waits up to `timeoutMilliseconds` for output; returns what arrived on each pipe.
    func poll(timeoutMilliseconds: Int32) -> (out: [UInt8]?, err: [UInt8]?) {
        var fds: [pollfd] = []
        if !outputClosed { fds.append(pollfd(fd: outFD, events: Int16(POLLIN), revents: 0)) }
        if !errorClosed { fds.append(pollfd(fd: errFD, events: Int16(POLLIN), revents: 0)) }
        guard !fds.isEmpty else { return (nil, nil) }
        let ready = fds.withUnsafeMutableBufferPointer { systemPoll($0.baseAddress, nfds_t($0.count), timeoutMilliseconds) }
        guard ready > 0 else { return (nil, nil) }
        var out: [UInt8]?, err: [UInt8]?
        for p in fds where p.revents != 0 {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let n = read(p.fd, &buffer, buffer.count)
            if n > 0 {
                if p.fd == outFD { out = Array(buffer[..<n]) } else { err = Array(buffer[..<n]) }
            } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                close(p.fd)
                if p.fd == outFD { outputClosed = true } else { errorClosed = true }
            }
        }
        return (out, err)
    }

    func kill() { _ = systemKill(pid, SIGKILL) }

    func wait() -> Status {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if status & 0x7F == 0 { return .exited((status >> 8) & 0xFF) }
        return .signaled(status & 0x7F)
    }
}

#if canImport(Glibc)
private let systemPoll = Glibc.poll
private let systemKill = Glibc.kill
#else
private let systemPoll = Darwin.poll
private let systemKill = Darwin.kill
#endif
