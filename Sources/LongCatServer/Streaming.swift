import Foundation
import Hummingbird
import LongCatEngine
import LongCatTokenizer

// Answering with a generation job, shared by chat and completions: a JSON body or server-sent events, with client
// disconnects turned into cancellation.

extension Routes {
    /// Runs a job and answers: one JSON body, or server-sent events. Either way a client that disconnects
    /// cancels the job's generations at once (the inbound side closing cancels the task), without waiting for a
    /// write to fail. That watch takes over the connection's input, hence `Connection: close` on these responses.
    /// It needs a request from a live connection (Hummingbird's `.router` test mode has none; tests run `.live`
    /// or `.ahc`).
    func respond(
        job: GenerationJob, stream: Bool, body: RequestBody, promptParam: String,
        complete: @escaping @Sendable () -> JSONValue,
        streamer: @escaping @Sendable (inout any ResponseBodyWriter) async throws -> Void
    ) async throws -> Response {
        if stream {
            return Response(status: .ok, headers: SSE.headers, body: ResponseBody { writer in
                try await body.consumeWithCancellationOnInboundClose { _ in try await streamer(&writer) }
                try await writer.finish(nil)
            })
        }
        do {
            try await body.consumeWithCancellationOnInboundClose { _ in try await job.collect() }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw APIError.from(error, promptParam: promptParam)
        }
        return Response.json(complete(), headers: [.connection: "close"])
    }
}

/// A failed write: the client is gone.
struct ClientGone: Error {}

extension ResponseBodyWriter {
    mutating func send(_ event: JSONValue) async throws {
        do { try await write(SSE.event(event)) } catch { throw ClientGone() }
    }
}

/// Drives a streamed job: writes each choice's events, then the usage chunk and `[DONE]`, and records how the
/// request ended. Shared by chat and completions; `events` turns one engine chunk into response events.
func streamJob(
    _ job: GenerationJob, to writer: inout any ResponseBodyWriter, includeUsage: Bool, usageChunk: (TokenUsage) -> JSONValue,
    events: (Int, GenerationChunk) -> [JSONValue]
) async throws {
    var engineFailure: Error?
    do {
        for try await (index, chunk) in job.chunks() {
            for event in events(index, chunk) { try await writer.send(event) }
        }
    } catch is ClientGone {
        job.record(.cancelled)
        throw CancellationError()
    } catch {
        engineFailure = error
    }
    if let engineFailure {
        // Headers are out already: the error goes in the stream, as vLLM and OpenAI do.
        job.record(.failed)
        try? await writer.send(APIError.from(engineFailure, promptParam: "prompt").json)
        try? await writer.write(SSE.done)
        return
    }
    guard job.allFinished else {
        // The task was cancelled: the client closed its side, or the drain timeout ran out at shutdown (then the
        // connection is cancelled too, and nothing more can be written). The engine has dropped the generations.
        job.record(.cancelled)
        throw CancellationError()
    }
    job.record(.finished)
    if includeUsage { try await writer.send(usageChunk(job.usage)) }
    try await writer.write(SSE.done)
}
