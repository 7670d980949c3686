import Foundation

/// The golden fixtures the repository carries under `Tests/Fixtures` (copied from the team's `../shared/fixtures` by
/// `scripts/sync-shared.sh`). Every accessor throws `MissingFixture` instead of crashing, so a missing file fails the
/// test that needs it with a message that says what is missing and how to get it.
public enum Fixtures {
    /// The package root (the folder holding Package.swift).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static let root: URL = packageRoot.appendingPathComponent("Tests/Fixtures")

    /// The team's shared folder beside the checkout, which the carried copies are compared against when present.
    public static let sharedRoot: URL = packageRoot.deletingLastPathComponent().appendingPathComponent("shared")

    public struct MissingFixture: Error, CustomStringConvertible {
        public let relativePath: String
        public var description: String {
            "missing fixture Tests/Fixtures/\(relativePath): restore it with `git checkout -- Tests/Fixtures`, or copy it "
                + "from the team's shared folder with `scripts/sync-shared.sh \(relativePath.split(separator: "/").first ?? "")`"
        }
    }

    /// The path of a fixture file or folder, e.g. `path("tiny-fp32")` or `path("tiny-fp32/config.json")`.
    public static func path(_ relativePath: String) throws -> String {
        let url = root.appendingPathComponent(relativePath)
        guard FileManager.default.fileExists(atPath: url.path) else { throw MissingFixture(relativePath: relativePath) }
        return url.path
    }

    public static func url(_ relativePath: String) throws -> URL { URL(fileURLWithPath: try path(relativePath)) }

    public static func data(_ relativePath: String) throws -> Data { try Data(contentsOf: url(relativePath)) }

    /// A fixture JSON file as a Foundation object of the expected type.
    public static func json<T>(_ relativePath: String, as type: T.Type = [String: Any].self) throws -> T {
        guard let value = try JSONSerialization.jsonObject(with: data(relativePath)) as? T else {
            throw MissingFixture(relativePath: relativePath + " (not a JSON \(T.self))")
        }
        return value
    }
}
