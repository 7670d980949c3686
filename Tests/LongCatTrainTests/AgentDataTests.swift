import Foundation
import LongCatTestSupport
import LongCatTokenizer
import LongCatTrain
import XCTest

/// `longcat make-agent-data`'s generator: determinism, unseen tools in the held-out split, calls that fit their
/// schemas, and dialogues that `train --data` reads with the assistant-only mask.
final class AgentDataTests: XCTestCase {
    func testTheSameSeedGivesTheSameDialogues() {
        let a = AgentDataGenerator(seed: 7), b = AgentDataGenerator(seed: 7), c = AgentDataGenerator(seed: 8)
        XCTAssertEqual((0..<50).map { a.dialogue($0).jsonLine }, (0..<50).map { b.dialogue($0).jsonLine })
        XCTAssertNotEqual((0..<50).map { a.dialogue($0).jsonLine }, (0..<50).map { c.dialogue($0).jsonLine })
    }

    func testHeldOutDialoguesUseToolsThatTrainingNeverSees() {
        let train = AgentDataGenerator(seed: 1, split: .train), heldout = AgentDataGenerator(seed: 2, split: .heldout)
        let trainNames = Set((0..<3000).flatMap { train.dialogue($0).tools.map(\.name) })
        let heldoutNames = Set((0..<500).flatMap { heldout.dialogue($0).tools.map(\.name) })
        XCTAssertGreaterThan(heldoutNames.count, 20)
        XCTAssertGreaterThan(trainNames.count, 200)
        XCTAssertTrue(trainNames.isDisjoint(with: heldoutNames))
    }

    func testEveryCallFitsItsToolsSchema() throws {
        let generator = AgentDataGenerator(seed: 3)
        var calls = 0, noCallTurns = 0, multiCallTurns = 0
        for i in 0..<400 {
            let dialogue = generator.dialogue(i)
            noCallTurns += dialogue.callsPerTurn.filter { $0 == 0 }.count
            multiCallTurns += dialogue.callsPerTurn.filter { $0 > 1 }.count
            for case .object(let message) in dialogue.messages {
                guard case .array(let toolCalls)? = message["tool_calls"] else { continue }
                for case .object(let call) in toolCalls {
                    calls += 1
                    let function = try XCTUnwrap(call["function"]), name = try XCTUnwrap(function["name"]?.stringValue)
                    let tool = try XCTUnwrap(dialogue.tools.first { $0.name == name }, "a call to \(name), which is not offered")
                    guard case .object(let arguments)? = function["arguments"] else { return XCTFail("arguments are not an object") }
                    for p in tool.parameters where p.required { XCTAssertNotNil(arguments[p.name], "\(name) misses \(p.name)") }
                    for (key, value) in arguments {
                        let p = try XCTUnwrap(tool.parameters.first { $0.name == key }, "\(name) has no parameter \(key)")
                        switch (p.kind, value) {
                        case (.string, .string), (.integer, .int), (.number, .double), (.boolean, .bool): break
                        case (.enumeration, .string(let s)): XCTAssertTrue(p.values.contains(s), "\(s) is not one of \(p.values)")
                        default: XCTFail("\(name).\(key) = \(value) is not a \(p.kind)")
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(calls, 400)
        XCTAssertGreaterThan(noCallTurns, 40)
        XCTAssertGreaterThan(multiCallTurns, 40)
    }

    func testDialoguesTrainThroughTheChatTemplateWithTheAssistantMask() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agent-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let generator = AgentDataGenerator(seed: 4)
        let lines = (0..<20).map { generator.dialogue($0).jsonLine }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: directory.appendingPathComponent("agent.jsonl"))
        // A tokenizer trained on the dialogues' own text, with the chat template train-tokenizer writes.
        let texts = try TrainingData.texts(files: [directory.appendingPathComponent("agent.jsonl").path], format: .chat)
        try BPETrainer(vocabSize: 600).train(texts: texts).json.write(to: directory.appendingPathComponent("tokenizer.json"))
        let config: [String: Any] = ["bos_token": "<s>", "eos_token": "</s>", "chat_template": LongCatChatTemplate.text]
        try JSONSerialization.data(withJSONObject: config).write(to: directory.appendingPathComponent("tokenizer_config.json"))
        let tokenizer = try Tokenizer(path: directory.path)
        let documents = try TrainingData.documents(files: [directory.appendingPathComponent("agent.jsonl").path], format: .auto, tokenizer: tokenizer)
        XCTAssertEqual(documents.count, 20)
        let callTag = try XCTUnwrap(tokenizer.id(for: "<longcat_tool_call>")), resultTag = try XCTUnwrap(tokenizer.id(for: "<longcat_tool_response>"))
        for (i, d) in documents.enumerated() {
            // Every call is the assistant's (trained; the system prompt's description of the tags is not); tool results
            // are not trained.
            let calls = generator.dialogue(i).messages.reduce(0) { n, m in
                guard case .array(let c)? = m["tool_calls"] else { return n }
                return n + c.count
            }
            XCTAssertEqual(zip(d.tokens, d.trained).filter { $0.0 == callTag && $0.1 }.count, calls, "dialogue \(i)")
            XCTAssertFalse(zip(d.tokens, d.trained).contains { $0.0 == resultTag && $0.1 }, "dialogue \(i)")
        }
    }

    func testRequestsNoToolFitsGetFittingRepliesWithoutACall() throws {
        let generator = AgentDataGenerator(seed: 5)
        var unavailable = 0
        for i in 0..<400 {
            let dialogue = generator.dialogue(i)
            let names = dialogue.tools.map(\.name)
            for (k, message) in dialogue.messages.enumerated() where message["role"]?.stringValue == "user" {
                let reply = dialogue.messages[k + 1]
                guard reply["tool_calls"] == nil, let request = message["content"]?.stringValue, let text = reply["content"]?.stringValue else { continue }
                if request.hasPrefix("Thanks") || request.hasPrefix("Great") || request.hasPrefix("Perfect") {
                    XCTAssertTrue(text.contains("welcome") || text.contains("Glad"), "\(request) -> \(text)")
                } else if request.hasPrefix("Hello") || request.hasPrefix("Hi,") || request.hasPrefix("Good morning") {
                    XCTAssertTrue(names.allSatisfy(text.contains), "a greeting's reply names the tools: \(text)")
                } else if text.hasPrefix("Sorry") || text.hasPrefix("I cannot") {
                    unavailable += 1
                    XCTAssertTrue(names.allSatisfy(text.contains), text)
                    // The task asked for is no offered tool's, and a (verb, noun) pair of the training split.
                    let offered = dialogue.tools.map { "\($0.verb) a \($0.noun.replacingOccurrences(of: "_", with: " "))" }
                    XCTAssertFalse(offered.contains { text.contains($0) }, text)
                }
            }
        }
        XCTAssertGreaterThan(unavailable, 10)
    }

    func testAnswersComeFromFortunesAndJargonEntries() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("answers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let fortunes = directory.appendingPathComponent("fortunes").path, jargon = directory.appendingPathComponent("jargon.txt").path
        try Data("Fortune one.\n%\n床前明月光\n%\nFortune two.\n".utf8).write(to: URL(fileURLWithPath: fortunes))
        try Data("   Intro text.\n\n   :foo: n.\n\n   A metasyntactic\n   variable.\n\n   See {bar}.\n\n   :bar: n.\n\n   Another one.\n".utf8)
            .write(to: URL(fileURLWithPath: jargon))
        let corpus = try AnswerCorpus(files: [fortunes, jargon])
        XCTAssertEqual(corpus.sayings, ["Fortune one.", "Fortune two."])
        XCTAssertEqual(corpus.chinese, ["床前明月光"])
        XCTAssertEqual(corpus.entries.map(\.term), ["foo", "bar"])
        XCTAssertEqual(corpus.entries.first?.definition, "A metasyntactic variable.\n\nSee {bar}.")
        let generator = AgentDataGenerator(seed: 6, answers: corpus)
        let answered = (0..<200).map(generator.dialogue).filter { d in
            d.messages.contains { m in corpus.sayings.contains(m["content"]?.stringValue ?? "") || corpus.entries.contains { $0.definition == m["content"]?.stringValue } }
        }
        XCTAssertGreaterThan(answered.count, 20, "about a quarter of the dialogues answer from the corpus")
        XCTAssertTrue(answered.allSatisfy { $0.callsPerTurn.allSatisfy { $0 == 0 } })
        XCTAssertThrowsError(try AnswerCorpus(files: [directory.appendingPathComponent("missing").path]))
    }

    func testDrillsAnswerWithExactlyWhatTheContextHolds() throws {
        let generator = AgentDataGenerator(seed: 8, drills: 1)
        XCTAssertEqual(AgentDataGenerator(seed: 8).dialogue(0).jsonLine, AgentDataGenerator(seed: 8, drills: 0).dialogue(0).jsonLine)
        var kinds = Set<String>()
        for i in 0..<100 {
            let dialogue = generator.dialogue(i)
            let names = dialogue.tools.map(\.name)
            XCTAssertTrue(dialogue.callsPerTurn.allSatisfy { $0 == 0 })
            for (k, m) in dialogue.messages.enumerated() where m["role"]?.stringValue == "user" {
                let request = try XCTUnwrap(m["content"]?.stringValue), answer = try XCTUnwrap(dialogue.messages[k + 1]["content"]?.stringValue)
                if ["Which tool would", "What is the name", "Name the function"].contains(where: request.hasPrefix) {
                    kinds.insert("name")
                    let fitting = dialogue.tools.filter { request.contains($0.verb) && request.contains($0.noun.replacingOccurrences(of: "_", with: " ")) }
                    XCTAssertTrue(fitting.map(\.name).contains(answer), "\(request) -> \(answer)")
                } else if ["Which parameters", "List the arguments"].contains(where: request.hasPrefix) {
                    kinds.insert("parameters")
                    let tool = try XCTUnwrap(dialogue.tools.first { request.contains($0.name) })
                    XCTAssertEqual(answer, tool.parameters.map(\.name).joined(separator: ", "))
                } else if ["List your tools.", "Which tools do you have?"].contains(request) {
                    kinds.insert("tools")
                    XCTAssertEqual(answer, names.joined(separator: ", "))
                } else {
                    kinds.insert("repeat")
                    XCTAssertTrue(request.hasSuffix(": " + answer), "\(request) -> \(answer)")
                }
            }
        }
        XCTAssertEqual(kinds.count, 4, "\(kinds)")
    }

    func testMadeUpNamesAreTrainOnlyAndTheRequestNamesTheirWords() {
        XCTAssertEqual((0..<20).map { AgentDataGenerator(seed: 9).dialogue($0).jsonLine },
                       (0..<20).map { AgentDataGenerator(seed: 9, novelNames: 0).dialogue($0).jsonLine })
        let generator = AgentDataGenerator(seed: 9, novelNames: 0.5)
        let realWords = Set(AgentDataGenerator.verbs + AgentDataGenerator.nouns)
        var madeUp = 0, real = 0
        for i in 0..<400 {
            let dialogue = generator.dialogue(i)
            let requests = dialogue.messages.filter { $0["role"]?.stringValue == "user" }.compactMap { $0["content"]?.stringValue }.joined(separator: " ")
            for tool in dialogue.tools {
                if realWords.contains(tool.verb) && realWords.contains(tool.noun) { real += 1 } else { madeUp += 1 }
                XCTAssertTrue(tool.name.lowercased().contains(tool.verb.lowercased()))
            }
            for case .object(let message) in dialogue.messages {
                guard case .array(let calls)? = message["tool_calls"] else { continue }
                for case .object(let call) in calls {
                    let tool = dialogue.tools.first { $0.name == call["function"]?["name"]?.stringValue }
                    XCTAssertNotNil(tool)
                    if let tool { XCTAssertTrue(requests.lowercased().contains(tool.verb.lowercased()), "the request names \(tool.verb)") }
                }
            }
        }
        XCTAssertGreaterThan(madeUp, 100)
        XCTAssertGreaterThan(real, 100)
        let heldout = Set((0..<500).flatMap { AgentDataGenerator(seed: 2, split: .heldout).dialogue($0).tools.map(\.name) })
        XCTAssertTrue(Set((0..<2000).flatMap { generator.dialogue($0).tools.map(\.name) }).isDisjoint(with: heldout))
    }

    func testMadeUpValuesAreCopiedFromTheRequest() throws {
        XCTAssertEqual((0..<20).map { AgentDataGenerator(seed: 10).dialogue($0).jsonLine },
                       (0..<20).map { AgentDataGenerator(seed: 10, novelValues: 0).dialogue($0).jsonLine })
        let generator = AgentDataGenerator(seed: 10, novelValues: 1)
        let listed = Set(["Paris", "Lima", "Ada", "Wei", "jazz", "tea"])
        var strings = 0
        for i in 0..<300 {
            let messages = generator.dialogue(i).messages
            for (k, message) in messages.enumerated() {
                guard case .array(let calls)? = message["tool_calls"] else { continue }
                let request = try XCTUnwrap(messages[k - 1]["content"]?.stringValue)
                for case .object(let call) in calls {
                    guard case .object(let arguments)? = call["function"]?["arguments"] else { return XCTFail("arguments are not an object") }
                    for case .string(let value) in arguments.values {
                        strings += 1
                        XCTAssertTrue(request.contains(value), "\(value) is not in \(request)")
                        XCTAssertFalse(listed.contains(value))
                    }
                }
            }
        }
        XCTAssertGreaterThan(strings, 100)
    }

    func testLookAlikeToolsShareOneWordOfANameAndKeepTheSplit() {
        XCTAssertEqual((0..<20).map { AgentDataGenerator(seed: 11).dialogue($0).jsonLine },
                       (0..<20).map { AgentDataGenerator(seed: 11, lookAlikes: 0).dialogue($0).jsonLine })
        for split in AgentDataGenerator.Split.allCases {
            let plain = AgentDataGenerator(seed: 11, split: split), alike = AgentDataGenerator(seed: 11, split: split, lookAlikes: 1)
            var extra = 0, sharing = 0
            for i in 0..<200 {
                let tools = alike.dialogue(i).tools
                extra += tools.count - plain.dialogue(i).tools.count
                XCTAssertTrue(tools.allSatisfy { split.contains($0) })
                XCTAssertEqual(Set(tools.map(\.name)).count, tools.count, "a tool offered twice")
                let pairs = tools.indices.flatMap { a in tools.indices.filter { $0 > a }.map { (tools[a], tools[$0]) } }
                if pairs.contains(where: { ($0.verb == $1.verb) != ($0.noun == $1.noun) }) { sharing += 1 }
            }
            XCTAssertGreaterThan(extra, 200, "\(split): one or two look-alikes per dialogue")
            XCTAssertGreaterThan(sharing, 190, "\(split): tools that share a verb or a noun")
        }
    }
}
