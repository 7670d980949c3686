import Foundation
import LongCatTestSupport
import XCTest

/// The seeded fuzzer over the input files (config.json, safetensors, tokenizer.json, chat templates): every case
/// must end in success or a named error. `longcat-fuzz` (Sources/longcat-fuzz) runs the cases in child processes and
/// records a crash, a hang or an unnamed error against the case that caused it; this test runs it and fails when any
/// case does, with the cases and the command that reruns each.
///
/// LONGCAT_FUZZ_SEED and LONGCAT_FUZZ_CASES change the seed (default 1) and the number of cases (default 2400).
final class FuzzTests: XCTestCase {
    /// The fuzzer binary beside the test bundle (the same build products folder), or in the package's .build/debug.
    static func fuzzerBinary() -> String? {
        var folders: [URL] = []
        #if os(Linux)
        if let test = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            folders.append(URL(fileURLWithPath: test).deletingLastPathComponent())
        }
        #endif
        folders.append(Bundle(for: FuzzTests.self).bundleURL.deletingLastPathComponent())
        folders.append(Fixtures.packageRoot.appendingPathComponent(".build/debug"))
        return folders.map { $0.appendingPathComponent("longcat-fuzz").path }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    func testEveryFuzzCaseEndsInSuccessOrANamedError() throws {
        guard let binary = Self.fuzzerBinary() else {
            return XCTFail("longcat-fuzz is not built: `swift build --build-tests` (or `swift build --product longcat-fuzz`) builds it")
        }
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["LONGCAT_FUZZ_SEED"] ?? "1"
        let cases = environment["LONGCAT_FUZZ_CASES"] ?? "2400"
        let jobs = String(max(1, min(ProcessInfo.processInfo.activeProcessorCount, 4)))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--seed", seed, "--cases", cases, "--jobs", jobs, "--fixtures", Fixtures.root.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // The supervisor has its own per-case watchdog; this one only guards against the supervisor itself hanging.
        let guardTimer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 1_800, execute: guardTimer)
        var output = Data()
        while true {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            output += chunk
            FileHandle.standardOutput.write(chunk)
        }
        process.waitUntilExit()
        guardTimer.cancel()
        let text = String(decoding: output, as: UTF8.self)
        let summary = text.split(separator: "\n").last { $0.hasPrefix("fuzz: ") && $0.contains(" cases (") } ?? "no summary line"
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let failing = text.components(separatedBy: "failing cases").last.map { "failing cases" + $0 } ?? text.suffix(4_000).description
            return XCTFail("\(summary)\n\(failing)")
        }
        XCTAssertTrue(summary.contains(" 0 crashes, 0 hangs"), String(summary))
    }
}
