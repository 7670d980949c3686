/// A small backtracking regex engine over Unicode scalars for the patterns tokenizer.json files use
/// (Oniguruma semantics as in Hugging Face tokenizers: leftmost match, ordered alternation). Swift's
/// `Regex` works on grapheme clusters and is slow; `NSRegularExpression` works on UTF-16. This one
/// compiles to a compact instruction list and tests character classes with per-class BMP bitmaps.
///
/// Supported: literals and escapes, `.`, classes `[...]` with ranges and negation, `\p{..}`/`\P{..}`,
/// `\s \S \d \D \w \W`, groups `(..)` `(?:..)` `(?i:..)` `(?i)`, lookahead `(?=..)` `(?!..)`, atomic
/// `(?>..)`, alternation, quantifiers `? * + {n} {n,} {n,m}` with lazy `?` and possessive `+` forms.
public struct ScalarRegex {
    enum Instruction {
        case scalar(UInt32)
        /// Case-insensitive scalar: any of its case variants (lower, upper, title).
        case scalarFolded(UInt32, UInt32, UInt32)
        case set(Int)
        case any
        /// Try `first`, on failure `second`.
        case split(Int, Int)
        case jump(Int)
        /// Sub-program at pc+1 ... must (or must not) match here; continue at `next`.
        case lookahead(negated: Bool, next: Int)
        /// Sub-program at pc+1 matched once, greedily, never re-entered; continue at `next`.
        case atomic(next: Int)
        case match
    }

    public let pattern: String
    let program: [Instruction]
    let classes: [ScalarClass]

    public init(_ pattern: String) throws {
        self.pattern = pattern
        var parser = RegexParser(pattern: pattern)
        let tree = try parser.parseAll()
        var compiler = RegexCompiler()
        do {
            try compiler.emit(tree)
        } catch TokenizerError.invalidPattern(_, let reason) {
            throw TokenizerError.invalidPattern(pattern: pattern, reason: reason)
        }
        compiler.program.append(.match)
        program = compiler.program
        classes = compiler.classes.map { var c = $0; c.compile(); return c }
    }

    /// Backtracking steps one match attempt may take. A pattern that backtracks exponentially, such as `(a|a)*b`
    /// against a run of `a`s, would otherwise never finish (Oniguruma, behind Hugging Face tokenizers, has a retry
    /// limit per search for the same reason); real pre-tokenizer patterns take tens of steps per scalar, at most
    /// the length of a run (`\s*[\r\n]+` over spaces) per attempt.
    static let maximumStepsPerAttempt = 1_000_000
    /// Steps of one `matches` call: this allowance plus `stepsPerScalar` per scalar searched.
    static let baseSteps = 100_000_000
    static let stepsPerScalar = 1_000

    /// All leftmost, non-overlapping matches in `text[range]`, appended to `out` (empty matches skipped). When an
    /// attempt or the whole search runs out of steps, the search stops there and the rest of the range has no
    /// matches: encoding cannot fail, so a pathological pattern degrades the split instead of hanging.
    func matches(in text: UnsafeBufferPointer<UInt32>, range: Range<Int>, into out: inout [Range<Int>]) {
        var stack: [(pc: Int, position: Int)] = []
        var position = range.lowerBound
        let window = UnsafeBufferPointer(rebasing: text[..<range.upperBound])
        var total = Self.baseSteps + Self.stepsPerScalar * range.count
        while position < range.upperBound {
            var steps = min(Self.maximumStepsPerAttempt, total)
            let allowance = steps
            let found = run(window, pc: 0, position: position, stack: &stack, steps: &steps)
            if steps <= 0 { return }
            total -= allowance - steps
            if let end = found, end > position {
                out.append(position..<end)
                position = end
            } else {
                position += 1
            }
        }
    }

    public func matches(in string: String) -> [Range<Int>] {
        let scalars = string.unicodeScalars.map(\.value)
        var out: [Range<Int>] = []
        scalars.withUnsafeBufferPointer { matches(in: $0, range: 0..<$0.count, into: &out) }
        return out
    }

    /// Backtracking run from `pc` at `position`; returns the match end. Backtrack points live on `stack`
    /// above its height at entry (nested lookahead/atomic runs share it).
    private func run(
        _ text: UnsafeBufferPointer<UInt32>, pc startPC: Int, position startPosition: Int, stack: inout [(pc: Int, position: Int)],
        steps: inout Int
    ) -> Int? {
        let base = stack.count
        defer { stack.removeSubrange(base...) }
        var pc = startPC, position = startPosition
        while true {
            steps -= 1
            if steps <= 0 { return nil }
            var failed = false
            switch program[pc] {
            case .scalar(let c):
                if position < text.count && text[position] == c { pc += 1; position += 1 } else { failed = true }
            case .scalarFolded(let a, let b, let c):
                if position < text.count, case let t = text[position], t == a || t == b || t == c {
                    pc += 1
                    position += 1
                } else {
                    failed = true
                }
            case .set(let index):
                if position < text.count && classes[index].contains(text[position]) { pc += 1; position += 1 } else { failed = true }
            case .any:
                if position < text.count && text[position] != 0x0A { pc += 1; position += 1 } else { failed = true }
            case .split(let first, let second):
                stack.append((second, position))
                pc = first
            case .jump(let target):
                pc = target
            case .lookahead(let negated, let next):
                let matched = run(text, pc: pc + 1, position: position, stack: &stack, steps: &steps) != nil
                if matched != negated { pc = next } else { failed = true }
            case .atomic(let next):
                if let end = run(text, pc: pc + 1, position: position, stack: &stack, steps: &steps) { pc = next; position = end } else { failed = true }
            case .match:
                return position
            }
            if failed {
                guard stack.count > base else { return nil }
                (pc, position) = stack.removeLast()
            }
        }
    }
}

// MARK: - Parsing

indirect enum RegexNode {
    case empty
    case scalar(UInt32, folded: Bool)
    case set(ScalarClass)
    case any
    case sequence([RegexNode])
    case alternation([RegexNode])
    case lookahead(RegexNode, negated: Bool)
    case atomic(RegexNode)
    case repeated(RegexNode, min: Int, max: Int?, greedy: Bool, possessive: Bool)

    /// Whether the node can match without consuming input (a repeat of such a node would loop forever).
    var canBeEmpty: Bool {
        switch self {
        case .empty, .lookahead: return true
        case .scalar, .set, .any: return false
        case .sequence(let items): return items.allSatisfy(\.canBeEmpty)
        case .alternation(let items): return items.contains(where: \.canBeEmpty)
        case .atomic(let n): return n.canBeEmpty
        case .repeated(let n, let min, _, _, _): return min == 0 || n.canBeEmpty
        }
    }
}

struct RegexParser {
    let pattern: String
    let chars: [UInt32]
    var index = 0
    var caseInsensitive = false
    /// Groups open around the cursor; bounded so that a hostile pattern cannot overflow the stack.
    var depth = 0
    static let maximumDepth = 100

    init(pattern: String) {
        self.pattern = pattern
        chars = pattern.unicodeScalars.map(\.value)
    }

    func error(_ reason: String) -> TokenizerError {
        TokenizerError.invalidPattern(pattern: pattern, reason: "\(reason) at offset \(index)")
    }

    var atEnd: Bool { index >= chars.count }
    func peek(_ offset: Int = 0) -> UInt32? { index + offset < chars.count ? chars[index + offset] : nil }
    mutating func take(_ c: Character) -> Bool {
        if peek() == c.unicodeScalars.first!.value { index += 1; return true }
        return false
    }

    mutating func parseAll() throws -> RegexNode {
        let node = try parseAlternation()
        if !atEnd { throw error("unbalanced ')'") }
        return node
    }

    mutating func parseAlternation() throws -> RegexNode {
        var branches = [try parseSequence()]
        while take("|") { branches.append(try parseSequence()) }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    mutating func parseSequence() throws -> RegexNode {
        var items: [RegexNode] = []
        let savedFlag = caseInsensitive
        defer { caseInsensitive = savedFlag }  // (?i) applies to the end of the enclosing group
        while let c = peek(), c != 0x7C /* | */, c != 0x29 /* ) */ {
            if c == 0x28, peek(1) == 0x3F, peek(2) == 0x69, peek(3) == 0x29 {  // "(?i)"
                index += 4
                caseInsensitive = true
                continue
            }
            var atom = try parseAtom()
            atom = try parseQuantifier(atom)
            items.append(atom)
        }
        return items.count == 1 ? items[0] : (items.isEmpty ? .empty : .sequence(items))
    }

    mutating func parseQuantifier(_ atom: RegexNode) throws -> RegexNode {
        var node = atom
        while let c = peek() {
            var range: (Int, Int?)
            switch c {
            case 0x3F: range = (0, 1); index += 1
            case 0x2A: range = (0, nil); index += 1
            case 0x2B: range = (1, nil); index += 1
            case 0x7B:
                guard let r = try parseBraces() else { return node }
                range = r
            default: return node
            }
            var greedy = true, possessive = false
            if take("?") { greedy = false } else if take("+") { possessive = true }
            if case .lookahead = node { throw error("quantifier after a lookahead") }
            if node.canBeEmpty && range.1 == nil { throw error("unbounded repeat of a sub-pattern that can match empty") }
            node = .repeated(node, min: range.0, max: range.1, greedy: greedy, possessive: possessive)
        }
        return node
    }

    /// `{n}`, `{n,}`, `{n,m}`; a brace that does not start a valid repeat is a literal (as in Oniguruma).
    mutating func parseBraces() throws -> (Int, Int?)? {
        let start = index
        index += 1
        func number() -> Int? {
            var value: Int? = nil
            while let c = peek(), c >= 0x30, c <= 0x39 {
                value = (value ?? 0) * 10 + Int(c - 0x30)
                index += 1
                if value! > 1000 { return nil }
            }
            return value
        }
        guard let low = number() else { index = start; return nil }
        var high: Int? = low
        if take(",") { high = number() }
        guard take("}") else { index = start; return nil }
        if let h = high, h < low { throw error("repeat {\(low),\(h)} has max below min") }
        return (low, high)
    }

    mutating func parseAtom() throws -> RegexNode {
        let c = chars[index]
        index += 1
        switch c {
        case 0x28: return try parseGroup()
        case 0x5B: return .set(try parseClass())
        case 0x2E: return .any
        case 0x5C: return try parseEscape(inClass: false).node(caseInsensitive: caseInsensitive)
        case 0x5E, 0x24: throw error("anchors (^, $) are not supported")
        case 0x2A, 0x2B, 0x3F: throw error("quantifier with nothing to repeat")
        case 0x7B:
            index -= 1
            if try parseBraces() != nil { throw error("quantifier with nothing to repeat") }
            index += 1
            return literal(c)
        default: return literal(c)
        }
    }

    func literal(_ c: UInt32) -> RegexNode {
        guard caseInsensitive else { return .scalar(c, folded: false) }
        return .scalar(foldCase(c), folded: true)
    }

    mutating func parseGroup() throws -> RegexNode {
        guard depth < Self.maximumDepth else { throw error("groups nest deeper than \(Self.maximumDepth) levels") }
        depth += 1
        defer { depth -= 1 }
        let saved = caseInsensitive
        defer { caseInsensitive = saved }
        var kind = 0  // 0 plain, 1 lookahead, 2 negative lookahead, 3 atomic
        if take("?") {
            if take(":") {
            } else if take("=") {
                kind = 1
            } else if take("!") {
                kind = 2
            } else if take(">") {
                kind = 3
            } else if take("i") {
                guard take(":") else { throw error("unsupported group flag") }
                caseInsensitive = true
            } else if peek() == 0x3C {  // "<"
                throw error("lookbehind and named groups are not supported")
            } else {
                throw error("unsupported group syntax")
            }
        }
        let inner = try parseAlternation()
        guard take(")") else { throw error("missing ')'") }
        switch kind {
        case 1: return .lookahead(inner, negated: false)
        case 2: return .lookahead(inner, negated: true)
        case 3: return .atomic(inner)
        default: return inner
        }
    }

    enum Escaped {
        case scalar(UInt32)
        case properties(ScalarProperties, complemented: Bool)
        case ranges([ClosedRange<UInt32>], complemented: Bool)

        func node(caseInsensitive: Bool) -> RegexNode {
            switch self {
            case .scalar(let c): return caseInsensitive ? .scalar(foldCase(c), folded: true) : .scalar(c, folded: false)
            default:
                var set = ScalarClass()
                add(to: &set)
                return .set(set)
            }
        }

        func add(to set: inout ScalarClass) {
            switch self {
            case .scalar(let c): set.ranges.append(c...c)
            case .properties(let p, let complemented):
                if complemented { set.complementedProperties.append(p) } else { set.properties.formUnion(p) }
            case .ranges(let ranges, let complemented):
                if !complemented { set.ranges += ranges; return }
                // Complement of explicit ranges inside a class: add the gaps.
                var gaps: [ClosedRange<UInt32>] = []
                var next: UInt32 = 0
                for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                    if r.lowerBound > next { gaps.append(next...(r.lowerBound - 1)) }
                    next = max(next, r.upperBound + 1)
                }
                gaps.append(next...0x10FFFF)
                set.ranges += gaps
            }
        }
    }

    static let wordRanges: [ClosedRange<UInt32>] = [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A]

    mutating func parseEscape(inClass: Bool) throws -> Escaped {
        guard let c = peek() else { throw error("trailing backslash") }
        index += 1
        switch c {
        case 0x6E: return .scalar(0x0A)  // n
        case 0x72: return .scalar(0x0D)  // r
        case 0x74: return .scalar(0x09)  // t
        case 0x66: return .scalar(0x0C)  // f
        case 0x76: return .scalar(0x0B)  // v
        case 0x30: return .scalar(0)
        case 0x73: return .properties(.whiteSpace, complemented: false)  // s
        case 0x53: return .properties(.whiteSpace, complemented: true)   // S
        case 0x64: return .properties(.nd, complemented: false)          // d (Unicode digits, as Oniguruma)
        case 0x44: return .properties(.nd, complemented: true)
        case 0x77: return .ranges(Self.wordRanges, complemented: false)  // w (ASCII word; letters via \p{L} in real patterns)
        case 0x57: return .ranges(Self.wordRanges, complemented: true)
        case 0x70, 0x50:  // p, P
            guard take("{") else { throw error("expected '{' after \\p") }
            var name = ""
            while let n = peek(), n != 0x7D { name.unicodeScalars.append(Unicode.Scalar(n)!); index += 1 }
            guard take("}") else { throw error("unterminated \\p{") }
            var negated = c == 0x50
            if name.hasPrefix("^") { negated.toggle(); name.removeFirst() }
            guard let props = ScalarProperties.byName[name] else { throw error("unknown Unicode property '\(name)'") }
            return .properties(props, complemented: negated)
        case 0x78:  // x: \xHH or \x{H...}
            return .scalar(try parseHex(braced: take("{"), digits: 2))
        case 0x75:  // u: \uHHHH
            return .scalar(try parseHex(braced: false, digits: 4))
        default:
            let isAlnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            if isAlnum { throw error("unsupported escape '\\\(Unicode.Scalar(c)!)'") }
            return .scalar(c)  // escaped punctuation stands for itself
        }
    }

    mutating func parseHex(braced: Bool, digits: Int) throws -> UInt32 {
        var value: UInt32 = 0, count = 0
        while let c = peek(), let d = Int(String(Unicode.Scalar(c)!), radix: 16), braced || count < digits {
            // Past U+10FFFF it is out of range anyway; stop before UInt32 overflows on a long \x{...}.
            guard value <= 0x10FFFF else { throw error("bad hex escape") }
            value = value * 16 + UInt32(d)
            count += 1
            index += 1
        }
        if braced { guard take("}") else { throw error("unterminated \\x{") } }
        guard count > 0, value <= 0x10FFFF else { throw error("bad hex escape") }
        return value
    }

    mutating func parseClass() throws -> ScalarClass {
        var set = ScalarClass()
        if take("^") { set.negated = true }
        var first = true
        while true {
            guard let c = peek() else { throw error("unterminated character class") }
            if c == 0x5D && !first { index += 1; break }  // ]
            first = false
            index += 1
            var low: UInt32
            if c == 0x5C {
                let e = try parseEscape(inClass: true)
                guard case .scalar(let s) = e else { e.add(to: &set); continue }
                low = s
            } else if c == 0x5B, peek() == 0x3A {
                throw error("POSIX classes [:...:] are not supported")
            } else {
                low = c
            }
            // A range a-b (a '-' before ']' is literal).
            if peek() == 0x2D, let after = peek(1), after != 0x5D {
                index += 1
                var high = after
                index += 1
                if after == 0x5C {
                    guard case .scalar(let s) = try parseEscape(inClass: true) else { throw error("bad range end") }
                    high = s
                }
                guard high >= low else { throw error("range out of order") }
                set.ranges.append(low...high)
            } else {
                set.ranges.append(low...low)
            }
        }
        if caseInsensitive {
            // Add the other case of ASCII letters in explicit ranges.
            for r in set.ranges {
                for c in r.clamped(to: 0x41...0x7A) {
                    if c <= 0x5A { set.ranges.append((c + 32)...(c + 32)) } else if c >= 0x61 { set.ranges.append((c - 32)...(c - 32)) }
                }
            }
        }
        return set
    }
}

// MARK: - Compiling

struct RegexCompiler {
    var program: [ScalarRegex.Instruction] = []
    var classes: [ScalarClass] = []
    /// Repeats are unrolled, so nested counted repeats multiply: `((a{1000}){1000}){1000}` would be 10^9
    /// instructions. Real pre-tokenizer patterns compile to a few hundred.
    static let maximumInstructions = 100_000
    /// Each distinct class compiles to a bitmap over the BMP (65536 look-ups); copies made by a repeat share one.
    static let maximumClasses = 1_000
    /// Index of each distinct class in `classes`.
    private var classIndex: [ClassKey: Int] = [:]

    private struct ClassKey: Hashable {
        let ranges: [ClosedRange<UInt32>]
        let properties: ScalarProperties
        let complementedProperties: [ScalarProperties]
        let negated: Bool
    }

    /// The scalars that simple case folding maps to `folded`: itself and its single-scalar upper and
    /// title case forms.
    func caseVariants(_ folded: UInt32) -> ScalarRegex.Instruction {
        guard let scalar = Unicode.Scalar(folded) else { return .scalar(folded) }
        func single(_ s: String) -> UInt32 {
            let u = s.unicodeScalars
            return u.count == 1 ? u.first!.value : folded
        }
        return .scalarFolded(folded, single(scalar.properties.uppercaseMapping), single(scalar.properties.titlecaseMapping))
    }

    mutating func emit(_ node: RegexNode) throws {
        guard program.count <= Self.maximumInstructions else {
            throw TokenizerError.invalidPattern(
                pattern: "", reason: "compiles to more than \(Self.maximumInstructions) instructions (nested counted repeats)")
        }
        switch node {
        case .empty:
            break
        case .scalar(let c, let folded):
            program.append(folded ? caseVariants(c) : .scalar(c))
        case .set(let set):
            let key = ClassKey(
                ranges: set.ranges, properties: set.properties, complementedProperties: set.complementedProperties,
                negated: set.negated)
            if let index = classIndex[key] {
                program.append(.set(index))
            } else {
                guard classes.count < Self.maximumClasses else {
                    throw TokenizerError.invalidPattern(pattern: "", reason: "has more than \(Self.maximumClasses) distinct character classes")
                }
                classes.append(set)
                classIndex[key] = classes.count - 1
                program.append(.set(classes.count - 1))
            }
        case .any:
            program.append(.any)
        case .sequence(let items):
            for item in items { try emit(item) }
        case .alternation(let branches):
            var jumpsToEnd: [Int] = []
            for (i, branch) in branches.enumerated() {
                if i < branches.count - 1 {
                    let split = program.count
                    program.append(.split(split + 1, -1))
                    try emit(branch)
                    jumpsToEnd.append(program.count)
                    program.append(.jump(-1))
                    program[split] = .split(split + 1, program.count)
                } else {
                    try emit(branch)
                }
            }
            for j in jumpsToEnd { program[j] = .jump(program.count) }
        case .lookahead(let inner, let negated):
            let at = program.count
            program.append(.lookahead(negated: negated, next: -1))
            try emit(inner)
            program.append(.match)
            program[at] = .lookahead(negated: negated, next: program.count)
        case .atomic(let inner):
            let at = program.count
            program.append(.atomic(next: -1))
            try emit(inner)
            program.append(.match)
            program[at] = .atomic(next: program.count)
        case .repeated(let inner, let min, let max, let greedy, let possessive):
            if possessive {
                try emit(.atomic(.repeated(inner, min: min, max: max, greedy: true, possessive: false)))
                return
            }
            for _ in 0..<min { try emit(inner) }
            if let max {
                // Each optional copy, when skipped, skips all later ones too.
                var exits: [Int] = []
                for _ in min..<max {
                    exits.append(program.count)
                    program.append(.split(-1, -1))
                    try emit(inner)
                }
                for e in exits { program[e] = greedy ? .split(e + 1, program.count) : .split(program.count, e + 1) }
            } else {
                let loop = program.count
                program.append(.split(-1, -1))
                try emit(inner)
                program.append(.jump(loop))
                program[loop] = greedy ? .split(loop + 1, program.count) : .split(program.count, loop + 1)
            }
        }
    }
}
