/// Unicode properties the tokenizer patterns test (`\p{L}`, `\s`, ...), as bits, with a table for the Basic
/// Multilingual Plane so the hot path is one array load. Scalars above the BMP are classified on the fly.
struct ScalarProperties: OptionSet, Hashable {
    let rawValue: UInt32

    static let lu = ScalarProperties(rawValue: 1 << 0)
    static let ll = ScalarProperties(rawValue: 1 << 1)
    static let lt = ScalarProperties(rawValue: 1 << 2)
    static let lm = ScalarProperties(rawValue: 1 << 3)
    static let lo = ScalarProperties(rawValue: 1 << 4)
    static let mn = ScalarProperties(rawValue: 1 << 5)
    static let mc = ScalarProperties(rawValue: 1 << 6)
    static let me = ScalarProperties(rawValue: 1 << 7)
    static let nd = ScalarProperties(rawValue: 1 << 8)
    static let nl = ScalarProperties(rawValue: 1 << 9)
    static let no = ScalarProperties(rawValue: 1 << 10)
    static let p = ScalarProperties(rawValue: 1 << 11)
    static let s = ScalarProperties(rawValue: 1 << 12)
    static let z = ScalarProperties(rawValue: 1 << 13)
    static let c = ScalarProperties(rawValue: 1 << 14)
    /// The White_Space property (what `\s` means in Oniguruma and Hugging Face tokenizers).
    static let whiteSpace = ScalarProperties(rawValue: 1 << 15)

    static let letter: ScalarProperties = [.lu, .ll, .lt, .lm, .lo]
    static let mark: ScalarProperties = [.mn, .mc, .me]
    static let number: ScalarProperties = [.nd, .nl, .no]

    /// Property names accepted in `\p{...}`.
    static let byName: [String: ScalarProperties] = [
        "L": .letter, "Letter": .letter, "Lu": .lu, "Ll": .ll, "Lt": .lt, "Lm": .lm, "Lo": .lo,
        "M": .mark, "Mark": .mark, "Mn": .mn, "Mc": .mc, "Me": .me,
        "N": .number, "Number": .number, "Nd": .nd, "Nl": .nl, "No": .no,
        "P": .p, "Punctuation": .p, "S": .s, "Symbol": .s, "Z": .z, "Separator": .z, "C": .c, "Other": .c,
    ]

    static func of(_ scalar: UInt32) -> ScalarProperties {
        if scalar < 0x10000 { return ScalarProperties(rawValue: UInt32(bmpTable[Int(scalar)])) }
        return compute(scalar)
    }

    static let bmpTable: [UInt16] = (0..<0x10000).map { UInt16(compute(UInt32($0)).rawValue) }

    static func compute(_ value: UInt32) -> ScalarProperties {
        guard let scalar = Unicode.Scalar(value) else { return .c }  // surrogates
        var out: ScalarProperties
        switch scalar.properties.generalCategory {
        case .uppercaseLetter: out = .lu
        case .lowercaseLetter: out = .ll
        case .titlecaseLetter: out = .lt
        case .modifierLetter: out = .lm
        case .otherLetter: out = .lo
        case .nonspacingMark: out = .mn
        case .spacingMark: out = .mc
        case .enclosingMark: out = .me
        case .decimalNumber: out = .nd
        case .letterNumber: out = .nl
        case .otherNumber: out = .no
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: out = .p
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol: out = .s
        case .spaceSeparator, .lineSeparator, .paragraphSeparator: out = .z
        default: out = .c
        }
        if scalar.properties.isWhitespace { out.insert(.whiteSpace) }
        return out
    }
}

/// A set of scalars: explicit ranges plus property tests, possibly negated. Compiled classes carry a BMP
/// bitmap so membership is a bit test.
struct ScalarClass {
    var ranges: [ClosedRange<UInt32>] = []
    var properties: ScalarProperties = []
    /// Properties whose complement is included (from `\P{..}`, `\S`, `\D`, `\W` inside a class).
    var complementedProperties: [ScalarProperties] = []
    var negated = false
    private var bitmap: [UInt64] = []

    func slowContains(_ c: UInt32) -> Bool {
        var hit = ranges.contains { $0.contains(c) }
        if !hit && !properties.isEmpty { hit = !ScalarProperties.of(c).isDisjoint(with: properties) }
        if !hit { hit = complementedProperties.contains { ScalarProperties.of(c).isDisjoint(with: $0) } }
        return hit != negated
    }

    mutating func compile() {
        var bits = [UInt64](repeating: 0, count: 0x10000 / 64)
        for c in 0..<UInt32(0x10000) where slowContains(c) { bits[Int(c >> 6)] |= 1 << UInt64(c & 63) }
        bitmap = bits
    }

    @inline(__always) func contains(_ c: UInt32) -> Bool {
        if c < 0x10000 { return bitmap[Int(c >> 6)] & (1 << UInt64(c & 63)) != 0 }
        return slowContains(c)
    }
}

/// Simple case folding for case-insensitive matching: the single-scalar lowercase mapping, if any.
func foldCase(_ c: UInt32) -> UInt32 {
    if c < 0x80 { return (c >= 0x41 && c <= 0x5A) ? c + 32 : c }
    guard let scalar = Unicode.Scalar(c) else { return c }
    let lower = scalar.properties.lowercaseMapping.unicodeScalars
    return lower.count == 1 ? lower.first!.value : c
}
