import ArgumentParser
import Foundation
import LongCatEngine
import LongCatModel
import LongCatTokenizer
import LongCatTrain

/// The entry point: parses, runs, and maps every error to one exit-code convention for all commands
/// (0 success, 64 usage, 65 bad input data, 1 anything else), with the message on stderr.
@main
enum Main {
    static func main() async {
        let arguments: [String]
        do {
            arguments = try Recipe.expand(valuesMayBeNegative(Array(CommandLine.arguments.dropFirst())))
        } catch {
            Console.progress("error: \(error)")
            exit(65)
        }
        var command: ParsableCommand
        do {
            command = try LongCat.parseAsRoot(arguments)
        } catch {
            LongCat.exit(withError: error)  // ArgumentParser's own: help, --version, usage errors (64) with usage
        }
        do {
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ValidationError {
            Console.progress("error: \(error.message)")
            exit(ExitCode.validationFailure.rawValue)
        } catch {
            // `--help` parses to ArgumentParser's help command, whose run throws the help request: its own to print.
            if LongCat.exitCode(for: error) == .success { LongCat.exit(withError: error) }
            Console.progress("error: \(error)")
            exit(exitCode(for: error))
        }
    }

    /// An option followed by a negative number takes it as its value (`--temperature -1` is a temperature, which
    /// validation then refuses with a reason) instead of reading "-1" as an unknown option.
    static func valuesMayBeNegative(_ arguments: [String]) -> [String] {
        var out: [String] = []
        for argument in arguments {
            if let last = out.last, last.hasPrefix("--"), !last.contains("="), Double(argument) != nil, argument.hasPrefix("-") {
                out[out.count - 1] = last + "=" + argument
            } else {
                out.append(argument)
            }
        }
        return out
    }

    /// 65 for input files that are malformed or do not fit together; 64 for request options the engine refuses
    /// (they come from the command line); 1 for anything else (I/O, memory, a busy port).
    static func exitCode(for error: Error) -> Int32 {
        switch error {
        case is ConfigError, is CheckpointError, is TokenizerError, is TemplateError, is JSONParseError, is BadInputFile,
             is VocabularyMismatchError, is TrainingError:
            return 65
        case is InferenceError, is EngineError, is GenerationError:
            return ExitCode.validationFailure.rawValue
        default:
            return ExitCode.failure.rawValue
        }
    }
}

/// An input file (a request, a conversation, a tokenizer) that cannot be used, named with the reason.
struct BadInputFile: Error, CustomStringConvertible {
    let path: String
    let reason: String
    var description: String { "\(path): \(reason)" }
}
