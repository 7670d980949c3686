/// Where a long operation stands (`done` of `total`), for a display that shows rate and time left.
public struct ProgressReport: Equatable, Sendable {
    public enum Unit: Equatable, Sendable {
        case bytes
        /// Whole things, named in the plural ("layers", "files").
        case items(String)
    }

    public var stage: String
    public var done: Int
    public var total: Int
    public var unit: Unit

    public init(stage: String, done: Int, total: Int, unit: Unit) {
        self.stage = stage
        self.done = done
        self.total = total
        self.unit = unit
    }
}

public typealias ProgressHandler = (ProgressReport) -> Void
