/// Problems with tokenizer files or inputs, each naming the component or field at fault.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case malformed(field: String, reason: String)
    case unsupported(component: String, detail: String)
    case invalidPattern(pattern: String, reason: String)
    case unknownToken(id: Int)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
        case .malformed(let field, let reason): return "tokenizer.json: '\(field)' \(reason)"
        case .unsupported(let component, let detail): return "tokenizer.json: unsupported \(component): \(detail)"
        case .invalidPattern(let pattern, let reason):
            // A hostile pattern can be megabytes long; its start is enough to find it.
            let shown = pattern.unicodeScalars.count > 120 ? String(String.UnicodeScalarView(pattern.unicodeScalars.prefix(120))) + "..." : pattern
            return "regex /\(shown)/: \(reason)"
        case .unknownToken(let id): return "token id \(id) is not in the vocabulary"
        }
    }
}
