/// Cuts streamed text at the first stop string, holding back any tail that could still grow into one.
///
/// Text is compared by Unicode scalars, exactly: no normalisation and no grapheme equivalence, so "é" does not
/// match "e\u{301}". Pieces are split only between scalars, so each is valid text, and concatenated they are
/// exactly the text before the stop string (a piece may end inside a grapheme cluster that the next completes).
/// Stop strings are looked for after every delta; when several are complete, the one that starts earliest
/// wins, and among those starting at the same place the longest (which only matters for `matchedStop`: the
/// text before it is the same). Each push looks only at the held-back tail plus the delta, so the cost does not
/// grow with the length of the generation.
public struct StopStringFilter {
    private let stops: [[Unicode.Scalar]]
    private let longestStop: Int
    /// Text received but not emitted yet: after each push, the longest tail that is a proper prefix of a stop.
    private var pending: [Unicode.Scalar] = []
    /// True once a stop string has been seen; nothing more is emitted after that.
    public private(set) var stopped = false
    /// The stop string that ended the text, if one did.
    public private(set) var matchedStop: String?

    /// Empty stop strings are ignored.
    public init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }.map { Array($0.unicodeScalars) }
        longestStop = self.stops.map(\.count).max() ?? 0
    }

    /// Takes the next piece of generated text and returns what can be emitted now, and whether a stop string
    /// has ended the text (then `text` is what came before it, and later pushes return nothing).
    public mutating func push(_ delta: String) -> (text: String, stopped: Bool) {
        if stopped { return ("", true) }
        if stops.isEmpty { return (delta, false) }
        pending.append(contentsOf: delta.unicodeScalars)

        if let (start, stop) = earliestStop() {
            stopped = true
            matchedStop = Self.string(stop[...])
            let text = Self.string(pending[..<start])
            pending = []
            return (text, true)
        }
        let held = heldBackCount()
        let text = Self.string(pending[..<(pending.count - held)])
        pending.removeFirst(pending.count - held)
        return (text, false)
    }

    /// Ends the stream for another reason (end of sequence, length): returns the text still held back.
    public mutating func finish() -> String {
        defer { pending = [] }
        return stopped ? "" : Self.string(pending[...])
    }

    /// The first complete stop string in `pending`: earliest start, then longest.
    private func earliestStop() -> (start: Int, stop: [Unicode.Scalar])? {
        for start in pending.indices {
            var match: [Unicode.Scalar]?
            for stop in stops where stop.count > (match?.count ?? 0) && start + stop.count <= pending.count {
                if pending[start..<(start + stop.count)].elementsEqual(stop) { match = stop }
            }
            if let match { return (start, match) }
        }
        return nil
    }

    /// Length of the longest tail of `pending` that is a proper prefix of some stop string.
    private func heldBackCount() -> Int {
        for length in stride(from: min(pending.count, longestStop - 1), to: 0, by: -1) {
            let tail = pending[(pending.count - length)...]
            if stops.contains(where: { $0.count > length && $0[..<length].elementsEqual(tail) }) { return length }
        }
        return 0
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        String(String.UnicodeScalarView(scalars))
    }
}
