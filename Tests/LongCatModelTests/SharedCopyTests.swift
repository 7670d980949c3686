import Foundation
import LongCatTestSupport
import XCTest

/// The repository carries copies of the team's shared material (scripts/sync-shared.sh); they must not drift from
/// their twins in ../shared, and the ones the tests read must be there.
final class SharedCopyTests: XCTestCase {
    /// (folder or file in the repository, its twin under ../shared)
    static let copies = [("Tests/Fixtures", "fixtures"), ("docs/DESIGN.md", "DESIGN.md"), ("benchmarks/kit", "bench")]

    static func files(under url: URL) -> [String] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else { return [] }
        guard isFolder.boolValue else { return [""] }
        let walker = FileManager.default.enumerator(at: url, includingPropertiesForKeys: [.isRegularFileKey])
        return (walker?.allObjects as? [URL] ?? [])
            .filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }
            .map { String($0.standardizedFileURL.path.dropFirst(url.standardizedFileURL.path.count + 1)) }
            .sorted()
    }

    func testTheFixturesTheTestsReadAreCarried() throws {
        for folder in Fixtures.modelNames + ["tokenizer-bpe-qwenstyle", "chat-templates", "official-configs"] {
            XCTAssertNoThrow(try Fixtures.path(folder))
        }
        for (local, _) in Self.copies {
            XCTAssertFalse(Self.files(under: Fixtures.packageRoot.appendingPathComponent(local)).isEmpty, "\(local) is missing: run scripts/sync-shared.sh")
        }
    }

    func testEveryCarriedFileEqualsItsTwinInShared() throws {
        guard FileManager.default.fileExists(atPath: Fixtures.sharedRoot.path) else {
            throw XCTSkip("no ../shared beside the checkout: the carried copies have nothing to be compared with")
        }
        var compared = 0, differing: [String] = []
        for (local, shared) in Self.copies {
            let localRoot = Fixtures.packageRoot.appendingPathComponent(local), sharedRoot = Fixtures.sharedRoot.appendingPathComponent(shared)
            for file in Self.files(under: localRoot) {
                let twin = file.isEmpty ? sharedRoot : sharedRoot.appendingPathComponent(file)
                guard FileManager.default.fileExists(atPath: twin.path) else { continue }
                let mine = file.isEmpty ? localRoot : localRoot.appendingPathComponent(file)
                if try Data(contentsOf: mine) != Data(contentsOf: twin) { differing.append(local + (file.isEmpty ? "" : "/" + file)) }
                compared += 1
            }
        }
        XCTAssertGreaterThan(compared, 50)
        XCTAssertEqual(differing, [], "these copies differ from ../shared: run scripts/sync-shared.sh")
    }
}

final class MissingFixtureTests: XCTestCase {
    /// A missing fixture is an error that says what is missing and how to get it, never a crash.
    func testAMissingFixtureIsANamedErrorWithTheWayToGetIt() {
        XCTAssertThrowsError(try Fixtures.path("no-such-fixture/config.json")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("Tests/Fixtures/no-such-fixture/config.json"), text)
            XCTAssertTrue(text.contains("scripts/sync-shared.sh no-such-fixture"), text)
        }
    }
}
