import ArgumentParser
import LongCatEngine

/// `--show-compute`: each generated token's text in a colour for the FFN experts per layer that the forward pass
/// producing it ran (identity experts cost nothing): green for few, red for all top-k.
enum ComputeColours {
    static let help = ArgumentHelp("Colour each generated token by the FFN experts per layer its forward pass ran (green: few, identity experts cost nothing; red: all top-k).")
    /// ANSI 256-colour foregrounds from cheap to expensive.
    static let palette = [46, 118, 226, 208, 196]

    static func level(_ ffnExperts: Double, topK: Int) -> Int {
        min(palette.count - 1, max(0, Int(ffnExperts / Double(max(topK, 1)) * Double(palette.count))))
    }

    static func paint(_ chunk: GenerationChunk, topK: Int) -> String {
        guard let experts = chunk.ffnExperts.first, !chunk.text.isEmpty else { return chunk.text }
        return "\u{1B}[38;5;\(palette[level(experts, topK: topK)])m\(chunk.text)\u{1B}[0m"
    }

    static func legend(topK: Int) -> String {
        let step = Double(topK) / Double(palette.count)
        let keys = palette.indices.map { i in
            "\u{1B}[38;5;\(palette[i])m" + String(format: "%.1f-%.1f", Double(i) * step, Double(i + 1) * step) + "\u{1B}[0m"
        }
        return "FFN experts per layer for each token: " + keys.joined(separator: " ")
    }
}
