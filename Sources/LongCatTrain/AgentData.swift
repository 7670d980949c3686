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

        func contains(_ tool: Tool) -> Bool {
            let pair = AgentDataGenerator.verbs.firstIndex(of: tool.verb)! * 31 + AgentDataGenerator.nouns.firstIndex(of: tool.noun)!
            return (pair % 7 == 0) == (self == .heldout)
        }
    }

    public let seed: UInt64
    public let split: Split

    public init(seed: UInt64, split: Split = .train) {
        self.seed = seed
        self.split = split
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

    static let verbs = ["get", "find", "book", "cancel", "check", "convert", "send", "list", "search", "update", "create",
                        "track", "schedule", "estimate", "translate", "reserve"]
    static let nouns = ["weather", "flight", "hotel", "order", "invoice", "meeting", "reminder", "currency", "stock_price",
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

    /// The tool of a schema seed: its name, description and parameters follow from the seed alone.
    public static func tool(schemaSeed: UInt64) -> Tool {
        var rng = SplitMix64(seed: schemaSeed &* 0x9E37_79B9_7F4A_7C15 &+ 17)
        let verb = rng.pick(verbs), noun = rng.pick(nouns)
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
        for _ in 0..<(1 + rng.next(4)) {
            var schemaSeed = rng.nextUInt64() % 1_000_000
            while !split.contains(Self.tool(schemaSeed: schemaSeed)) { schemaSeed = (schemaSeed + 1) % 1_000_000 }
            let tool = Self.tool(schemaSeed: schemaSeed)
            if !tools.contains(where: { $0.name == tool.name }) { tools.append(tool) }
        }
        var messages: [JSONValue] = []
        if rng.next(3) == 0 { messages.append(message("system", rng.pick(["You are a helpful assistant.", "You are a concise assistant with tools.", "Answer briefly and use tools when they help."]))) }
        var callsPerTurn: [Int] = []
        for _ in 0..<(1 + rng.next(3)) {
            let kind = rng.next(10)
            if kind < 2 {  // nothing fits: a reply without a call
                messages.append(message("user", rng.pick(["Tell me a fun fact about \(rng.pick(Self.topics)).", "Thanks, that is all for now.",
                                                          "What do you think about \(rng.pick(Self.topics))?", "Hello! Who are you?",
                                                          "Can you write me a haiku about \(rng.pick(Self.topics))?"])))
                messages.append(message("assistant", rng.pick(["Happy to help. None of my tools covers that, so here is what I know: \(rng.pick(Self.topics)) is a topic with a long history.",
                                                               "You're welcome! Let me know if you need anything else.",
                                                               "I am an assistant that can use the tools listed above; that request does not need one."])))
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
    mutating func pick<T>(_ items: [T]) -> T { items[next(items.count)] }
}
