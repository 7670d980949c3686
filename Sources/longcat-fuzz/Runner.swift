import Foundation
import LongCatTensor

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How one case ended.
enum Outcome: String {
    /// The program accepted the input (and, for a model, ran it).
    case ok
    /// The program refused the input with a thrown error whose message names the problem.
    case error
    /// A thrown error without a useful message (empty, or a bare NSError): a failure.
    case unnamed
}

/// Runs cases in this process and reports each on its own stdout line, flushed, so that a supervisor reading the
/// lines knows which case was running when the process died.
enum Runner {
    /// Address space a child may use (without AddressSanitizer, which reserves terabytes of shadow memory): an
    /// input that makes the program allocate without bound dies here, fast, instead of swapping the machine.
    static let defaultMemoryLimitMB = 3_072

    static var isAddressSanitized: Bool {
        guard let handle = dlopen(nil, RTLD_NOW) else { return false }
        return dlsym(handle, "__asan_init") != nil
    }

    static func limitMemory(megabytes: Int) {
        guard megabytes > 0, !isAddressSanitized else { return }
        var limit = rlimit(rlim_cur: rlim_t(megabytes) << 20, rlim_max: rlim_t(megabytes) << 20)
        #if os(Linux)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit)
        #else
        _ = setrlimit(RLIMIT_AS, &limit)
        #endif
    }

    /// The error's message, and whether it names a problem.
    static func message(of error: Error) -> (Outcome, String) {
        if type(of: error) is NSError.Type {
            return (.unnamed, "bare NSError: \(error)")
        }
        // The error's own type must describe it (a cast of the value would succeed for any error through bridging).
        let text: String
        if type(of: error) is CustomStringConvertible.Type {
            text = String(describing: error)
        } else if type(of: error) is LocalizedError.Type, let description = (error as? LocalizedError)?.errorDescription {
            text = description
        } else {
            return (.unnamed, "\(type(of: error)) without a description: \(String(describing: error))")
        }
        // "line 3: " alone (a template error with an empty message) names nothing.
        var rest = Substring(text)
        if rest.hasPrefix("line "), let colon = rest.firstIndex(of: ":") { rest = rest[rest.index(after: colon)...] }
        if rest.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            return (.unnamed, "\(type(of: error)) with an empty message: \(text.debugDescription)")
        }
        return (.error, text)
    }

    /// One line of the child protocol: index, kind, outcome, message (tabs and newlines escaped, cut to 400 chars).
    static func line(index: Int, kind: CaseKind, outcome: Outcome, message: String) -> String {
        var text = message.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\t", with: "\\t")
            .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
        if text.count > 400 { text = String(text.prefix(400)) + "..." }
        return "\(index)\t\(kind.rawValue)\t\(outcome.rawValue)\t\(text)"
    }

    /// Runs one case in `scratch` (emptied first).
    static func run(_ c: FuzzCase, scratch: URL) -> (Outcome, String) {
        let fm = FileManager.default
        try? fm.removeItem(at: scratch)
        try? fm.createDirectory(at: scratch, withIntermediateDirectories: true)
        do {
            return (.ok, try c.execute(scratch))
        } catch {
            return message(of: error)
        }
    }

    /// The child: cases `start ..< end`, one flushed line each.
    static func runRange(corpus: Corpus, seed: UInt64, start: Int, end: Int, memoryLimitMB: Int) -> Int32 {
        limitMemory(megabytes: memoryLimitMB)
        // One compute thread: cases are tiny, and children run side by side.
        Parallel.threadCount = 1
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-fuzz-\(getpid())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        for index in start..<end {
            let c = corpus.makeCase(seed: seed, index: index)
            let (outcome, message) = run(c, scratch: scratch)
            let text = line(index: index, kind: c.kind, outcome: outcome, message: message) + "\n"
            text.utf8CString.withUnsafeBufferPointer { buffer in
                var offset = 0
                let count = buffer.count - 1
                while offset < count {
                    let n = write(1, buffer.baseAddress! + offset, count - offset)
                    if n <= 0 { break }
                    offset += n
                }
            }
        }
        return 0
    }
}
