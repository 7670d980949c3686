import Foundation
import Hummingbird
import LongCatEngine
@testable import LongCatServer
import LongCatTokenizer
import XCTest

final class StressTests: XCTestCase {
    /// A generation that runs for seconds unless cancelled.
    static let long: JSONValue = ["prompt": "Go on and on", "max_tokens": 4000, "temperature": 0, "ignore_eos": true, "stream": true]

    func testAFullQueueAnswers503WithRetryAfter() async throws {
        let state = try testState(engine: { $0.maxConcurrent = 1; $0.maxQueued = 1 })
        let engine = try XCTUnwrap(state.model?.engine)
        try await withServer(state) { client in
            // One request runs, one waits: the queue is full. (One after the other: submitted together, the second
            // could find the first still in the queue and be the one refused.)
            let running = Task { try await client.post("/v1/completions", Self.long) }
            let admitted = await eventually { engine.metrics.running == 1 }
            XCTAssertTrue(admitted)
            let waiting = Task { try await client.post("/v1/completions", Self.long) }
            let full = await eventually { engine.metrics.running == 1 && engine.metrics.waiting == 1 }
            XCTAssertTrue(full)
            let refused = try await client.post("/v1/completions", ["prompt": "me too", "max_tokens": 2])
            XCTAssertEqual(refused.status, .serviceUnavailable, refused.text)
            XCTAssertEqual(refused.headers[.retryAfter], "1")
            XCTAssertEqual(try refused.json()["error"]?["code"], "server_busy")
            running.cancel()
            waiting.cancel()
            _ = await (running.result, waiting.result)
            // Cancelling the clients frees the engine; the server serves again.
            let drained = await eventually { engine.metrics.running == 0 && engine.metrics.waiting == 0 && engine.metrics.cacheTokensInUse == 0 }
            XCTAssertTrue(drained, "\(engine.metrics)")
            let ok = try await client.post("/v1/completions", ["prompt": "me now", "max_tokens": 2])
            XCTAssertEqual(ok.status, .ok, ok.text)
            XCTAssertEqual(state.metrics.requestCount(endpoint: "completions", outcome: .rejected), 1)
        }
    }

    func testAClientThatDisconnectsCancelsItsGenerationAndFreesItsCache() async throws {
        let state = try testState()
        let engine = try XCTUnwrap(state.model?.engine)
        try await withServer(state) { client in
            for (uri, body) in [
                ("/v1/completions", Self.long),
                ("/v1/chat/completions", ["messages": [["role": "user", "content": "talk"]], "max_tokens": 4000, "ignore_eos": true, "stream": true]),
                ("/v1/chat/completions", ["messages": [["role": "user", "content": "talk"]], "max_tokens": 4000, "ignore_eos": true]),
            ] as [(String, JSONValue)] {
                let before = engine.metrics
                let request = Task { try await client.post(uri, body) }
                let started = await eventually { engine.metrics.generatedTokens >= before.generatedTokens + 5 }
                XCTAssertTrue(started)
                request.cancel()  // the HTTP client drops the connection
                let cancelled = await eventually {
                    let m = engine.metrics
                    return m.requestsCancelled == before.requestsCancelled + 1 && m.running == 0 && m.cacheTokensInUse == 0
                }
                XCTAssertTrue(cancelled, "\(uri): \(engine.metrics)")
                XCTAssertLessThan(engine.metrics.generatedTokens, before.generatedTokens + 4000, "stopped early")
            }
            let counted = await eventually {
                state.metrics.requestCount(endpoint: "chat", outcome: .cancelled) == 2
                    && state.metrics.requestCount(endpoint: "completions", outcome: .cancelled) == 1
            }
            XCTAssertTrue(counted)
            let r8 = try await client.post("/v1/completions", ["prompt": "still here", "max_tokens": 2])
            XCTAssertEqual(r8.status, .ok)
        }
    }
}
