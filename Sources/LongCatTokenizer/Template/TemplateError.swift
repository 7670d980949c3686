/// A chat template that could not be compiled or rendered.
///
/// `description` reads "line N: message", e.g. "line 3: unexpected 'endfor' (no open 'for')".
public struct TemplateError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// The template source is malformed; reported by `ChatTemplate.init`.
        case syntax
        /// Evaluating the template failed (undefined value used, wrong types, ...).
        case runtime
        /// The template called `raise_exception(message)`; `message` is exactly the template's text.
        case raised
    }

    public let kind: Kind
    /// 1-based line in the template source, when known.
    public internal(set) var line: Int?
    public let message: String

    public var description: String {
        // raise_exception() or raise_exception('') still has to say what happened.
        let text = kind == .raised && message.isEmpty ? "the template raised an exception without a message" : message
        guard let line else { return text }
        return "line \(line): \(text)"
    }

    static func syntax(_ message: String, line: Int) -> TemplateError {
        TemplateError(kind: .syntax, line: line, message: message)
    }

    /// The line is filled in by the interpreter from the expression being evaluated.
    static func runtime(_ message: String) -> TemplateError {
        TemplateError(kind: .runtime, line: nil, message: message)
    }
}
