import Foundation
import LongCatTokenizer

/// Synthetic tool-use dialogues, generated the way LongCat-Flash's agentic data was: by simulated parties. Each
/// dialogue draws a few tools with randomly generated schemas (names, typed and enum parameters, descriptions); a
/// simulated user with goals asks for them in varied phrasings; the assistant answers with `tool_calls` (several in one
/// turn when the user asks for several things), the simulated tools return results, and the assistant's reply uses
/// them; requests no tool fits get a reply without a call. Everything follows from the seeds: the same seed gives the
/// same file. A tool's schema follows from its schema seed; its name from a (verb, noun) pair, and `split` decides
/// which pairs a file may use, so held-out dialogues use tools (names, hence schemas) never seen in training.
public struct AgentDataGenerator {
    public enum Split: String, CaseIterable, Sendable {
        /// Six (verb, noun) pairs in seven.
        case train
        /// The seventh: tool names that never appear in `train`.
        case heldout

        /// Whether files of this split may offer `tool`.
        public func contains(_ tool: Tool) -> Bool { contains(verb: tool.verb, noun: tool.noun) }

        func contains(verb: String, noun: String) -> Bool {
            guard let v = AgentDataGenerator.verbs.firstIndex(of: verb), let n = AgentDataGenerator.nouns.firstIndex(of: noun) else {
                return self == .train  // a made-up word: train only
            }
            return ((v * 31 + n) % 7 == 0) == (self == .heldout)
        }
    }

    public let seed: UInt64
    public let split: Split
    /// Answers for dialogues of general requests (a quarter of them when given).
    public let answers: AnswerCorpus?
    /// Share of dialogues that are copying drills about the offered tools: a tool's exact name for a task, its
    /// parameters, the list of tools, a phrase repeated. Each drills a piece of a call (finding a name or a value in the
    /// context and copying it exactly) with the whole answer trained.
    public let drills: Double
    /// Share of tools whose verb, noun or both are made-up words (train split only). A model can learn the few
    /// hundred real (verb, noun) names by heart and then recall a trained name where an unseen one is offered; a
    /// made-up name can only be copied from the schema, which is what unseen tools need.
    public let novelNames: Double
    /// Share of string arguments whose value is made up (a word, a name, an address) instead of drawn from the few
    /// cities, people and topics: values too are to be copied from the request, not guessed from a list.
    public let novelValues: Double
    /// Share of dialogues offered one or two extra tools that share a verb or a noun with an offered one
    /// (`update_order` beside `order_track`): the request then has to be matched on both words of a name, not one.
    public let lookAlikes: Double

    public init(seed: UInt64, split: Split = .train, answers: AnswerCorpus? = nil, drills: Double = 0, novelNames: Double = 0,
                novelValues: Double = 0, lookAlikes: Double = 0) {
        precondition(split == .train || novelNames == 0 && novelValues == 0, "made-up names and values are for the train split")
        self.seed = seed
        self.split = split
        self.answers = answers
        self.drills = drills
        self.novelNames = novelNames
        self.novelValues = novelValues
        self.lookAlikes = lookAlikes
    }

    // MARK: Schemas

    public struct Parameter: Equatable, Sendable {
        public enum Kind: String, CaseIterable, Sendable { case string, integer, number, boolean, enumeration = "enum" }
        public var name: String
        public var kind: Kind
        public var values: [String]  // the choices of an enum
        public var description: String
        public var required: Bool
    }

    public struct Tool: Equatable, Sendable {
        public var schemaSeed: UInt64
        public var name: String
        public var verb: String, noun: String
        public var description: String
        public var parameters: [Parameter]

        /// The OpenAI-style tool object.
        public var json: JSONValue {
            var properties: JSONObject = [:]
            for p in parameters {
                var property: JSONObject = ["type": .string(p.kind == .enumeration ? "string" : p.kind.rawValue),
                                                     "description": .string(p.description)]
                if p.kind == .enumeration { property["enum"] = .array(p.values.map(JSONValue.string)) }
                properties[p.name] = .object(property)
            }
            return .object(["type": .string("function"), "function": .object([
                "name": .string(name), "description": .string(description),
                "parameters": .object(["type": .string("object"), "properties": .object(properties),
                                       "required": .array(parameters.filter(\.required).map { .string($0.name) })]),
            ])])
        }
    }

    public static let verbs = ["get", "find", "book", "cancel", "check", "convert", "send", "list", "search", "update", "create",
                               "track", "schedule", "estimate", "translate", "reserve"]
    public static let nouns = ["weather", "flight", "hotel", "order", "invoice", "meeting", "reminder", "currency", "stock_price",
                               "recipe", "package", "ticket", "account_balance", "playlist", "route", "restaurant", "exchange_rate",
                               "appointment", "parking_spot", "train", "book", "movie", "delivery", "expense", "timezone"]
    static let parameterPool: [(String, Parameter.Kind, [String])] = [
        ("city", .string, []), ("date", .string, []), ("email", .string, []), ("query", .string, []), ("name", .string, []),
        ("destination", .string, []), ("origin", .string, []), ("order_id", .string, []), ("language", .enumeration, ["en", "fr", "de", "zh", "es", "ja"]),
        ("unit", .enumeration, ["celsius", "fahrenheit"]), ("priority", .enumeration, ["low", "normal", "high"]),
        ("cabin", .enumeration, ["economy", "business", "first"]), ("currency", .enumeration, ["USD", "EUR", "CNY", "JPY", "GBP"]),
        ("sort_by", .enumeration, ["price", "rating", "distance"]), ("count", .integer, []), ("guests", .integer, []),
        ("nights", .integer, []), ("limit", .integer, []), ("amount", .number, []), ("max_price", .number, []),
        ("include_details", .boolean, []), ("refundable", .boolean, []), ("notify", .boolean, []),
    ]
    static let cities = ["Paris", "Beijing", "Oslo", "Lagos", "Lima", "Osaka", "Cairo", "Denver", "Hanoi", "Porto", "Quito", "Perth",
                         "Tallinn", "Nairobi", "Seoul", "Kraków"]
    static let people = ["Ada", "Wei", "Noor", "Lukas", "Priya", "Mateo", "Yuki", "Amara", "Olga", "Tom"]
    static let topics = ["jazz", "solar panels", "chess openings", "sourdough", "the Moon", "rust removal", "tax forms", "tea"]
    /// One sentence the assistant knows about each topic (for requests no tool fits).
    static let facts = [
        "jazz": "jazz grew out of New Orleans in the early twentieth century, mixing blues, ragtime and brass bands.",
        "solar panels": "solar panels turn sunlight into electricity; most of them are made of silicon cells.",
        "chess openings": "the Sicilian Defence is the most popular reply to 1. e4 among strong players.",
        "sourdough": "sourdough bread rises with wild yeast and lactic acid bacteria instead of baker's yeast.",
        "the Moon": "the Moon is about 384,000 kilometres away and always shows the Earth the same face.",
        "rust removal": "vinegar or a paste of baking soda and water removes light rust from steel tools.",
        "tax forms": "most tax forms ask for your income, deductions and identification number.",
        "tea": "tea was first drunk in China, and all true teas come from the same plant, Camellia sinensis.",
    ]
    static let haikus = [
        "jazz": "Brass in the night air / a walking bass finds its way / the drummer just smiles",
        "solar panels": "Dark glass on the roof / drinking the whole summer sky / the meter runs back",
        "chess openings": "Pawn steps to the light / a knight leaps over the wall / the long game begins",
        "sourdough": "Flour, water, and time / a jar breathes on the counter / morning smells of bread",
        "the Moon": "Pale stone in the sky / pulling the tide to the shore / silent all night long",
        "rust removal": "Old iron turns red / vinegar and patient hands / the blade shines again",
        "tax forms": "Boxes, lines, and sums / April rain on the window / the pen signs at last",
        "tea": "Leaves unfold in heat / steam rises from the small cup / the afternoon slows",
    ]

    /// A pronounceable made-up word of two or three syllables.
    static func madeUpWord(rng: inout SplitMix64) -> String {
        let onsets = ["b", "br", "d", "dr", "f", "g", "gl", "k", "kr", "l", "m", "n", "p", "pl", "r", "s", "st", "t", "tr", "v", "z"]
        let vowels = ["a", "e", "i", "o", "u", "ai", "ou"], codas = ["", "", "", "n", "r", "l", "k", "s", "m"]
        return (0..<(2 + rng.next(2))).map { _ in rng.pick(onsets) + rng.pick(vowels) + rng.pick(codas) }.joined()
    }

    /// The tool of a schema seed: its name, description and parameters follow from the seed (and `madeUp`) alone.
    /// A made-up tool replaces its verb, its noun or both with made-up words.
    public static func tool(schemaSeed: UInt64, madeUp: Bool = false) -> Tool {
        var rng = SplitMix64(seed: schemaSeed &* 0x9E37_79B9_7F4A_7C15 &+ 17)
        var verb = rng.pick(verbs), noun = rng.pick(nouns)
        if madeUp {
            var words = SplitMix64(seed: schemaSeed &+ 0xA5A5_5A5A)
            let which = words.next(3)
            if which != 1 { verb = madeUpWord(rng: &words) }
            if which != 0 { noun = madeUpWord(rng: &words) }
        }
        let style = rng.next(3)
        let name = style == 0 ? "\(verb)_\(noun)" : style == 1 ? "\(noun)_\(verb)" : "\(verb)\(noun.split(separator: "_").map { $0.capitalized }.joined())"
        var pool = parameterPool
        var parameters: [Parameter] = []
        for i in 0..<(1 + rng.next(4)) {
            let (pname, kind, choices) = pool.remove(at: rng.next(pool.count))
            var values = choices
            if kind == .enumeration {  // a random subset of at least two choices, in a random order
                values.shuffle(using: &rng)
                values = Array(values.prefix(2 + rng.next(values.count - 1)))
            }
            let readable = pname.replacingOccurrences(of: "_", with: " ")
            let description = rng.pick(["The \(readable) to use.", "\(readable.capitalized) for the request.",
                                        "Which \(readable) (\(kind == .enumeration ? values.joined(separator: ", ") : kind.rawValue)).",
                                        "Optional \(readable)."])
            parameters.append(Parameter(name: pname, kind: kind, values: values, description: description, required: i == 0 || rng.next(2) == 0))
        }
        let description = rng.pick(["\(verb.capitalized) a \(noun.replacingOccurrences(of: "_", with: " ")).",
                                    "Use this to \(verb) \(noun.replacingOccurrences(of: "_", with: " ")) information.",
                                    "\(verb.capitalized)s the \(noun.replacingOccurrences(of: "_", with: " ")) for the user."])
        return Tool(schemaSeed: schemaSeed, name: name, verb: verb, noun: noun, description: description, parameters: parameters)
    }

    // MARK: Dialogues

    public struct Dialogue {
        public var messages: [JSONValue]
        public var tools: [Tool]
        /// Per user turn: how many calls the assistant made (0: a reply without a call).
        public var callsPerTurn: [Int]

        public var jsonLine: String {
            JSONValue.object(["messages": .array(messages), "tools": .array(tools.map(\.json))]).dumps()
        }
    }

    /// Dialogue `index` of this generator's file.
    public func dialogue(_ index: Int) -> Dialogue {
        var rng = SplitMix64(seed: seed &* 0xD1B5_4A32_D192_ED03 &+ UInt64(index))
        var tools: [Tool] = []
        for _ in 0..<(1 + rng.next(3)) {
            var schemaSeed = rng.nextUInt64() % 1_000_000
            let madeUp = novelNames > 0 && rng.unit() < novelNames  // no draw without made-up names: older files stay as they were
            var tool = Self.tool(schemaSeed: schemaSeed, madeUp: madeUp)
            while !split.contains(tool) {
                schemaSeed = (schemaSeed + 1) % 1_000_000
                tool = Self.tool(schemaSeed: schemaSeed, madeUp: madeUp)
            }
            if !tools.contains(where: { $0.name == tool.name }) { tools.append(tool) }
        }
        if lookAlikes > 0, rng.unit() < lookAlikes {  // no draw without look-alikes: older files stay as they were
            for _ in 0..<(1 + rng.next(2)) {
                if let tool = lookAlike(of: rng.pick(tools), avoiding: tools, rng: &rng) { tools.insert(tool, at: rng.next(tools.count + 1)) }
            }
        }
        var messages: [JSONValue] = []
        if rng.next(3) == 0 { messages.append(message("system", rng.pick(["You are a helpful assistant.", "You are a concise assistant with tools.", "Answer briefly and use tools when they help."]))) }
        var callsPerTurn: [Int] = []
        if drills > 0, rng.unit() < drills {
            for _ in 0..<(1 + rng.next(3)) {
                let (request, answer) = drill(tools: tools, rng: &rng)
                messages += [message("user", request), message("assistant", answer)]
                callsPerTurn.append(0)
            }
            return Dialogue(messages: messages, tools: tools, callsPerTurn: callsPerTurn)
        }
        if let answers, rng.next(4) == 0 {  // general requests, answered from the corpus, with or without tools offered
            if rng.next(2) == 0 { tools = [] }
            for _ in 0..<(1 + rng.next(2)) {
                let (request, answer) = answers.turn(rng: &rng)
                messages += [message("user", request), message("assistant", answer)]
                callsPerTurn.append(0)
            }
            return Dialogue(messages: messages, tools: tools, callsPerTurn: callsPerTurn)
        }
        for _ in 0..<(1 + rng.next(2)) {
            let kind = rng.next(10)
            if kind < 2 {  // nothing fits: a reply without a call
                let (request, reply) = noCallTurn(tools: tools, rng: &rng)
                messages.append(message("user", request))
                messages.append(message("assistant", reply))
                callsPerTurn.append(0)
                continue
            }
            let chosen = kind < 8 || tools.count == 1 ? [rng.pick(tools)] : Array(tools.shuffled(using: &rng).prefix(2))
            let calls = chosen.map { ($0, arguments(for: $0, rng: &rng)) }
            let requests = calls.map { request(tool: $0.0, arguments: $0.1, rng: &rng) }
            messages.append(message("user", ([requests[0]] + requests.dropFirst().map(Self.continuing)).joined(separator: " ")))
            messages.append(.object(["role": .string("assistant"), "content": .string(""), "tool_calls": .array(calls.map { tool, args in
                .object(["type": .string("function"), "function": .object(["name": .string(tool.name), "arguments": args])])
            })]))
            var summaries: [String] = []
            for (tool, args) in calls {
                let (result, summary) = self.result(tool: tool, arguments: args, rng: &rng)
                messages.append(message("tool", result.dumps()))
                summaries.append(summary)
            }
            messages.append(message("assistant", summaries.joined(separator: " ")))
            callsPerTurn.append(calls.count)
        }
        return Dialogue(messages: messages, tools: tools, callsPerTurn: callsPerTurn)
    }

    /// A tool of this split that shares exactly one word (verb or noun) of `tool`'s name and is not in `avoiding`; nil
    /// when the search finds none (a made-up word is never shared).
    func lookAlike(of tool: Tool, avoiding: [Tool], rng: inout SplitMix64) -> Tool? {
        var schemaSeed = rng.nextUInt64() % 1_000_000  // drawn before the guard: every call takes one draw from the stream
        guard Self.verbs.contains(tool.verb) || Self.nouns.contains(tool.noun) else { return nil }
        for _ in 0..<4000 {
            let candidate = Self.tool(schemaSeed: schemaSeed)
            if (candidate.verb == tool.verb) != (candidate.noun == tool.noun), split.contains(candidate),
               !avoiding.contains(where: { $0.name == candidate.name || $0.verb == candidate.verb && $0.noun == candidate.noun }) {
                return candidate
            }
            schemaSeed = (schemaSeed + 1) % 1_000_000
        }
        return nil
    }

    /// A user message no offered tool fits, and the assistant's fitting reply: a greeting, thanks, a question the
    /// assistant answers itself, or a task for a tool that is not offered (the reply says which tools are).
    func noCallTurn(tools: [Tool], rng: inout SplitMix64) -> (String, String) {
        let names = tools.map(\.name)
        let list = names.count > 1 ? names.dropLast().joined(separator: ", ") + " and " + names.last! : names[0]
        let topic = rng.pick(Self.topics)
        switch rng.next(6) {
        case 0:
            return (rng.pick(["Hello! Who are you?", "Hi, what can you do?", "Good morning!"]),
                    rng.pick(["Hello! I am an assistant with these tools: \(list). What do you need?",
                              "Hi! I can help with \(list). Tell me what you need."]))
        case 1:
            return (rng.pick(["Thanks, that is all for now.", "Great, thank you!", "Perfect, thanks a lot."]),
                    rng.pick(["You're welcome! Let me know if you need anything else.", "Glad I could help. Have a nice day!"]))
        case 2:
            return (rng.pick(["Tell me a fun fact about \(topic).", "What do you know about \(topic)?"]),
                    "No tool is needed for that: \(Self.facts[topic]!.prefix(1).lowercased() + Self.facts[topic]!.dropFirst())")
        case 3:
            return ("Can you write me a haiku about \(topic)?", "Here is one:\n\(Self.haikus[topic]!.replacingOccurrences(of: " / ", with: "\n"))")
        default:  // a task for a tool nobody offered (of this split's pairs: a train file never names a held-out task)
            var verb = rng.pick(Self.verbs), noun = rng.pick(Self.nouns)
            while !split.contains(verb: verb, noun: noun) || tools.contains(where: { $0.verb == verb && $0.noun == noun }) { verb = rng.pick(Self.verbs); noun = rng.pick(Self.nouns) }
            let thing = noun.replacingOccurrences(of: "_", with: " ")
            return (rng.pick(["Can you \(verb) a \(thing) for me?", "Please \(verb) the \(thing).", "I need to \(verb) my \(thing)."]),
                    rng.pick(["Sorry, none of my tools can \(verb) a \(thing). I can use \(list).",
                              "I cannot \(verb) a \(thing) with the tools I have (\(list))."]))
        }
    }

    /// A copying drill about the offered tools, and its exact answer.
    func drill(tools: [Tool], rng: inout SplitMix64) -> (String, String) {
        let tool = rng.pick(tools)
        let thing = tool.noun.replacingOccurrences(of: "_", with: " ")
        switch rng.next(5) {
        case 0, 1:
            return (rng.pick(["Which tool would you use to \(tool.verb) a \(thing)?", "What is the name of the tool that can \(tool.verb) the \(thing)?",
                              "Name the function for: \(tool.verb) \(thing)."]), tool.name)
        case 2:
            return (rng.pick(["Which parameters does \(tool.name) take?", "List the arguments of \(tool.name)."]),
                    tool.parameters.map(\.name).joined(separator: ", "))
        case 3:
            return (rng.pick(["List your tools.", "Which tools do you have?"]), tools.map(\.name).joined(separator: ", "))
        default:
            let pool = Self.cities + Self.people + Self.topics + Self.nouns + Self.verbs + Self.parameterPool.map(\.0)
            let words = (0..<(4 + rng.next(10))).map { _ in rng.next(4) == 0 ? String(rng.next(1000)) : rng.pick(pool) }.joined(separator: " ")
            return (rng.pick(["Repeat after me: \(words)", "Say exactly this: \(words)", "Copy: \(words)"]), words)
        }
    }

    /// A further request in the same message: "Also, " and the request, its first letter lower-cased (not "I").
    static func continuing(_ request: String) -> String {
        let first = request.hasPrefix("I ") || request.hasPrefix("I'") ? String(request.prefix(1)) : request.prefix(1).lowercased()
        return "Also, " + first + request.dropFirst()
    }

    func message(_ role: String, _ content: String) -> JSONValue { .object(["role": .string(role), "content": .string(content)]) }

    func arguments(for tool: Tool, rng: inout SplitMix64) -> JSONValue {
        var args: JSONObject = [:]
        for p in tool.parameters where p.required || rng.next(2) == 0 {
            switch p.kind {
            case .enumeration: args[p.name] = .string(rng.pick(p.values))
            case .integer: args[p.name] = .int(1 + rng.next(9))
            case .number: args[p.name] = .double(Double(10 + rng.next(490)) + [0, 0.5, 0.25][rng.next(3)])
            case .boolean: args[p.name] = .bool(rng.next(2) == 0)
            case .string where novelValues > 0 && rng.unit() < novelValues:  // no draw without: older files stay as they were
                let word = Self.madeUpWord(rng: &rng)
                switch p.name {
                case "email": args[p.name] = .string("\(word)@example.com")
                case "order_id": args[p.name] = .string("\(word.prefix(1).uppercased())\(rng.next(100_000))")
                case "date": args[p.name] = .string(String(format: "%04d-%02d-%02d", 2000 + rng.next(60), 1 + rng.next(12), 1 + rng.next(28)))
                case "query": args[p.name] = .string(word)
                default: args[p.name] = .string(word.capitalized)
                }
            case .string:
                switch p.name {
                case "city", "destination", "origin": args[p.name] = .string(rng.pick(Self.cities))
                case "date": args[p.name] = .string(String(format: "2027-%02d-%02d", 1 + rng.next(12), 1 + rng.next(28)))
                case "email": args[p.name] = .string("\(rng.pick(Self.people).lowercased())@example.com")
                case "order_id": args[p.name] = .string("A\(1000 + rng.next(9000))")
                case "name": args[p.name] = .string(rng.pick(Self.people))
                default: args[p.name] = .string(rng.pick(Self.topics))
                }
            }
        }
        return .object(args)
    }

    /// The user's request for one call, in one of several phrasings, mentioning every argument's value.
    func request(tool: Tool, arguments: JSONValue, rng: inout SplitMix64) -> String {
        guard case .object(let args) = arguments else { return "" }
        let thing = tool.noun.replacingOccurrences(of: "_", with: " ")
        let details = args.keys.sorted().map { key -> String in
            let readable = key.replacingOccurrences(of: "_", with: " ")
            switch args[key]! {
            case .bool(let b): return b ? "with \(readable)" : "without \(readable)"
            case .int(let n): return "\(readable) \(n)"
            case .double(let d): return "\(readable) \(d)"
            case .string(let s): return rng.next(2) == 0 ? "\(readable) \(s)" : "\(s) as the \(readable)"
            default: return ""
            }
        }
        let list = details.count > 1 ? details.dropLast().joined(separator: ", ") + " and " + details.last! : details.first ?? ""
        let phrasing = rng.pick([
            "Can you \(tool.verb) the \(thing) for \(list)?", "Please \(tool.verb) \(thing): \(list).",
            "I need to \(tool.verb) a \(thing) — \(list).", "\(tool.verb.capitalized) \(thing), \(list).",
            "Could you help me \(tool.verb) the \(thing)? Use \(list).", "Hey, \(tool.verb) \(thing) please, \(list).",
            "I'd like you to \(tool.verb) the \(thing) with \(list).", "Quick one: \(tool.verb) \(thing) (\(list)).",
        ])
        return phrasing
    }

    /// A simulated tool's JSON result and the sentence of the assistant's reply that uses it.
    func result(tool: Tool, arguments: JSONValue, rng: inout SplitMix64) -> (JSONValue, String) {
        let thing = tool.noun.replacingOccurrences(of: "_", with: " ")
        if rng.next(12) == 0 {
            return (.object(["error": .string("\(thing) service unavailable")]), "The \(thing) service is unavailable right now; please try again later.")
        }
        let status = rng.pick(["ok", "confirmed", "found", "done"])
        let value = 1 + rng.next(999)
        let reference = "R\(10000 + rng.next(90000))"
        let result: JSONValue = .object(["status": .string(status), "value": .int(value), "reference": .string(reference)])
        return (result, rng.pick(["Done: the \(thing) is \(status) (value \(value), reference \(reference)).",
                                  "Here is the \(thing): \(status), value \(value), reference \(reference).",
                                  "The \(thing) request came back \(status) with value \(value); your reference is \(reference)."]))
    }
}

/// A small deterministic generator (SplitMix64) for the synthetic data.
public struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 { nextUInt64() }
    mutating func nextUInt64() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in 0..<n.
    mutating func next(_ n: Int) -> Int { Int(nextUInt64() % UInt64(max(n, 1))) }
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(nextUInt64() >> 11) / Double(1 << 53) }
    mutating func pick<T>(_ items: [T]) -> T { items[next(items.count)] }
}
