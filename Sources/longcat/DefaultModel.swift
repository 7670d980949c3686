import ArgumentParser
import Foundation

/// The model `longcat` uses when no --model is given: LongCat-Tiny, trained by this project (recipes/longcat-tiny.json)
/// and shipped in the repository's models/ directory. Looked for, in order: $LONGCAT_MODEL; models/longcat-tiny in a
/// directory above the executable (a checkout's .build/<config>/longcat, or `swift run`); the copy `longcat
/// install-model` puts in the user's data directory (for a binary copied anywhere).
enum DefaultModel {
    static let name = "longcat-tiny"

    /// $XDG_DATA_HOME/longcat/longcat-tiny, or ~/.local/share/longcat/longcat-tiny.
    static var installedDirectory: URL {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_DATA_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".local/share")
        return base.appendingPathComponent("longcat").appendingPathComponent(name)
    }

    /// models/longcat-tiny in the executable's directory or one above it (symbolic links resolved).
    static var besideExecutable: URL? {
        guard let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() else { return nil }
        var dir = executable.deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("models").appendingPathComponent(name)
            if isModel(candidate.path) { return candidate }
            guard dir.path != "/" else { break }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    static func isModel(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/config.json") && FileManager.default.fileExists(atPath: path + "/tokenizer.json")
    }

    /// The default model's directory (absolute), or an error that says how to provide one.
    static func directory(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let path = environment["LONGCAT_MODEL"], !path.isEmpty {
            guard isModel(path) else {
                throw ValidationError("LONGCAT_MODEL=\(path) is not a model directory with config.json and tokenizer.json")
            }
            return URL(fileURLWithPath: path).standardizedFileURL.path
        }
        if let found = besideExecutable { return found.standardizedFileURL.path }
        if isModel(installedDirectory.path) { return installedDirectory.path }
        throw ValidationError("""
            no model given and the default model (\(name)) was not found: pass --model DIR, set LONGCAT_MODEL=DIR, or run \
            `longcat install-model` once from a checkout (it copies models/\(name) to \(installedDirectory.path))
            """)
    }
}

/// Copies the default model into the user's data directory, so a `longcat` binary copied anywhere finds it.
struct InstallModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-model",
        abstract: "Copy the default model (or --from DIR) to the user's data directory, where any longcat binary finds it.")

    @Option(name: .long, help: "Model directory to install (default: the one this binary finds).")
    var from: String?

    func run() throws {
        let source = try from ?? DefaultModel.directory()
        guard DefaultModel.isModel(source) else { throw ValidationError("--from \(source) is not a model directory with config.json and tokenizer.json") }
        let target = DefaultModel.installedDirectory
        let fm = FileManager.default
        guard URL(fileURLWithPath: source).standardizedFileURL != target.standardizedFileURL else {
            print(target.path)
            return
        }
        // Copied aside, then renamed into place: an interrupted install leaves the old copy (or none), never half of one.
        try fm.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        let staging = target.deletingLastPathComponent().appendingPathComponent(".\(DefaultModel.name).partial-\(getpid())")
        try? fm.removeItem(at: staging)
        try fm.copyItem(at: URL(fileURLWithPath: source), to: staging)
        try? fm.removeItem(at: target)
        try fm.moveItem(at: staging, to: target)
        Console.progress("installed \(source) as the default model")
        print(target.path)
    }
}
