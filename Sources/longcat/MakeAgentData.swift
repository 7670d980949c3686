import ArgumentParser
import Foundation
import LongCatTrain

struct MakeAgentData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-agent-data",
        abstract: "Write synthetic multi-turn tool-use dialogues as chat JSONL for `longcat train --data`.",
        discussion: """
            Simulated users ask for tools with randomly generated schemas in varied phrasings; the assistant calls them \
            (several in one turn when asked for several things), tools answer, the assistant replies with the results; \
            requests no tool fits get a reply without a call. Deterministic in --seed. --split heldout uses only tool names \
            that --split train never uses, so held-out dialogues have unseen tools. Prints the data's diversity.
            """)

    @Option(name: .long, help: "Seed of the dialogues.")
    var seed: UInt64 = 0
    @Option(name: .long, help: "Number of dialogues.")
    var count: Int
    @Option(name: .long, help: "train, or heldout (tool schemas that never appear in train).")
    var split: AgentDataGenerator.Split = .train
    @Option(name: .long, help: "Output JSONL file.")
    var out: String
    @Option(name: .long, parsing: .upToNextOption, help: "Fortune files and Jargon File text: a quarter of the dialogues then ask for a saying, a poem or a definition and get one of their records as the answer.")
    var answers: [String] = []
    @Option(name: .long, help: "Share of dialogues (0-1) that are copying drills: a tool's exact name for a task, its parameters, the tool list, a phrase repeated.")
    var drills: Double = 0
    @Option(name: .long, help: "Share of tools (0-1) named with made-up words (train split): names a model cannot learn by heart, only copy from the schema.")
    var novelNames: Double = 0
    @Option(name: .long, help: "Share of string arguments (0-1) with made-up values (train split): values to copy from the request, not guess from a list.")
    var novelValues: Double = 0
    @Option(name: .long, help: "Share of dialogues (0-1) offered one or two extra tools that share a verb or a noun with an offered one, so a request must be matched on both words of a name.")
    var lookAlikes: Double = 0

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        guard (0...1).contains(drills) else { throw ValidationError("--drills must be in [0, 1]") }
        guard (0...1).contains(novelNames) else { throw ValidationError("--novel-names must be in [0, 1]") }
        guard (0...1).contains(novelValues) else { throw ValidationError("--novel-values must be in [0, 1]") }
        guard (0...1).contains(lookAlikes) else { throw ValidationError("--look-alikes must be in [0, 1]") }
        guard novelNames == 0 && novelValues == 0 || split == .train else {
            throw ValidationError("--novel-names and --novel-values are for the train split (held-out dialogues keep real names and values)")
        }
    }

    func run() throws {
        let generator = AgentDataGenerator(seed: seed, split: split, answers: answers.isEmpty ? nil : try AnswerCorpus(files: answers), drills: drills,
                                           novelNames: novelNames, novelValues: novelValues, lookAlikes: lookAlikes)
        var lines: [String] = []
        var toolsOffered = 0, turns = 0, noCall = 0, multiCall = 0
        var kinds: [String: Int] = [:], schemas = Set<String>(), names = Set<String>()
        for i in 0..<count {
            let dialogue = generator.dialogue(i)
            lines.append(dialogue.jsonLine)
            toolsOffered += dialogue.tools.count
            turns += dialogue.callsPerTurn.count
            noCall += dialogue.callsPerTurn.filter { $0 == 0 }.count
            multiCall += dialogue.callsPerTurn.filter { $0 > 1 }.count
            for tool in dialogue.tools {
                schemas.insert(tool.json.dumps(sortKeys: true))
                names.insert(tool.name)
                for p in tool.parameters { kinds[p.kind.rawValue, default: 0] += 1 }
            }
        }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: out))
        let total = max(1, kinds.values.reduce(0, +))
        Console.progress(String(format: "wrote %d dialogues (%@ split, seed %llu) to %@", count, split.rawValue, seed, out))
        Console.progress(String(format: "tools offered per dialogue %.2f; %d distinct schemas, %d distinct tool names; user turns %d: %.1f%% without a call, %.1f%% with several calls",
                                Double(toolsOffered) / Double(count), schemas.count, names.count, turns, 100 * Double(noCall) / Double(max(turns, 1)),
                                100 * Double(multiCall) / Double(max(turns, 1))))
        Console.progress("parameter types: " + kinds.sorted { $0.key < $1.key }.map { String(format: "%@ %.1f%%", $0.key, 100 * Double($0.value) / Double(total)) }.joined(separator: ", "))
    }
}

extension AgentDataGenerator.Split: ExpressibleByArgument {}
