import Foundation
import Hummingbird
import LongCatEngine
import LongCatTokenizer

/// The endpoints. Generation lives in ChatCompletions.swift and Completions.swift; this file has the router,
/// the small endpoints and the middleware.
struct Routes: Sendable {
    let state: ServerState
    var config: ServerConfiguration { state.configuration }
    static let startTime = Int(Date().timeIntervalSince1970)

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        // Middleware first: it wraps the routes added after it, the first added outermost. CORS lets browser apps on
        // other origins call the API (as vLLM allows by default); it is outside the error middleware so that error
        // responses carry its headers too.
        router.add(middleware: CORSMiddleware(allowOrigin: .all, allowHeaders: [.accept, .authorization, .contentType], allowMethods: [.get, .post, .options]))
        router.add(middleware: ErrorMiddleware(metrics: state.metrics))
        if let key = config.apiKey { router.add(middleware: AuthMiddleware(key: key)) }

        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: ChatPage.html)))
        }
        router.get("/health") { _, _ in
            state.model == nil
                ? Response.json(["status": "loading"], status: .serviceUnavailable, headers: [.retryAfter: "2"])
                : Response.json(["status": "ok"])
        }
        router.get("/metrics") { _, _ in
            let model = state.model
            let text = state.metrics.prometheusText(
                engine: model?.engine.metrics, cacheCapacity: model?.limits.cacheBudget, modelName: config.servedModelName)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/v1/models") { _, _ in Response.json(["object": "list", "data": [modelCard]]) }
        router.get("/v1/models/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard id == config.servedModelName else { throw APIError.modelNotFound(id, served: config.servedModelName) }
            return Response.json(modelCard)
        }
        router.post("/v1/chat/completions") { request, _ in try await chatCompletions(request) }
        router.post("/v1/completions") { request, _ in try await completions(request) }
        router.post("/tokenize") { request, _ in try await tokenize(request) }
        router.post("/detokenize") { request, _ in try await detokenize(request) }
        return router
    }

    var modelCard: JSONValue {
        var card: JSONObject = [
            "id": .string(config.servedModelName), "object": "model", "created": .int(Self.startTime), "owned_by": "longcat",
        ]
        if let limits = state.model?.limits { card["max_model_len"] = .int(limits.contextLength) }
        return .object(card)
    }

    // MARK: Request bodies

    /// The body as a JSON object. The size limit is checked on Content-Length first, so an oversized upload is
    /// refused before it is read into memory.
    func readObject(_ request: inout Request) async throws -> JSONObject {
        let limit = config.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw APIError.bodyTooLarge(limit: limit)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch let error as HTTPResponseError where error.status == .contentTooLarge {
            throw APIError.bodyTooLarge(limit: limit)
        }
        return try JSONValue.requestObject(Array(buffer.readableBytesView))
    }

    func readyModel() throws -> LoadedModel {
        guard let model = state.model else { throw APIError.loading }
        return model
    }

    /// The rule for a request's `model` field (its type is checked where it is parsed): a single-model server accepts
    /// any name, as llama-server does, so clients with a hard-coded name work; responses and `/v1/models` carry the
    /// served name. (`GET /v1/models/{id}` still answers 404 for another id: it looks a model card up.)
    func checkModelName(_ name: String?) throws {}

    // MARK: Tokenizer endpoints (vLLM's shapes)

    /// {"prompt": TEXT, "add_special_tokens": bool} or {"messages": [...], "tools": [...], "add_generation_prompt": bool}
    /// → {"tokens": [...], "count": N, "max_model_len": N}.
    func tokenize(_ request: Request) async throws -> Response {
        var request = request
        let model = try readyModel()
        let object = try await readObject(&request)
        let f = Fields(object)
        try checkModelName(try f.string("model"))
        let tokens: [Int]
        if f.has("messages") {
            let chat = try ChatRequest(object, maxChoices: config.maxChoices)
            tokens = try chatPrompt(chat, model)
        } else if let prompt = try f.string("prompt") {
            tokens = model.tokenizer.encode(prompt, addSpecialTokens: try f.bool("add_special_tokens") ?? true)
        } else {
            throw APIError.missing("prompt")
        }
        return Response.json([
            "tokens": .array(tokens.map(JSONValue.int)), "count": .int(tokens.count), "max_model_len": .int(model.limits.contextLength),
        ])
    }

    /// {"tokens": [ids]} → {"prompt": TEXT}.
    func detokenize(_ request: Request) async throws -> Response {
        var request = request
        let model = try readyModel()
        let f = Fields(try await readObject(&request))
        try checkModelName(try f.string("model"))
        guard let list = try f.array("tokens") else { throw APIError.missing("tokens") }
        let ids = try CompletionRequest.tokenList(list, path: "tokens")
        if let bad = ids.first(where: { $0 < 0 || $0 >= model.tokenizer.vocabularySize }) {
            throw APIError.invalid("token id \(bad) is outside the vocabulary (0..<\(model.tokenizer.vocabularySize))", param: "tokens")
        }
        return Response.json(["prompt": .string(model.tokenizer.decode(ids, skipSpecialTokens: try f.bool("skip_special_tokens") ?? false))])
    }

    /// The chat template's prompt tokens for a chat request.
    func chatPrompt(_ chat: ChatRequest, _ model: LoadedModel) throws -> [Int] {
        guard let formatter = model.formatter else {
            throw APIError.invalid(
                "this model cannot chat: \(model.templateProblem ?? "no chat template"); use /v1/completions", param: "messages",
                code: "no_chat_template")
        }
        do {
            return try formatter.tokens(messages: chat.messages, tools: chat.tools, addGenerationPrompt: chat.addGenerationPrompt)
        } catch {
            throw APIError.invalid("the chat template cannot render these messages: \(error)", param: "messages")
        }
    }
}

/// Turns every failure into an OpenAI error body (unknown routes included) and counts responses by status.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        metrics.requestStarted()
        defer { metrics.requestEnded() }
        let error: APIError
        do {
            let response = try await next(request, context)
            metrics.record(status: Int(response.status.code))
            return response
        } catch let e as APIError {
            error = e
        } catch let e as HTTPError where e.status == .notFound {
            error = APIError(
                status: .notFound, message: "no route for \(request.method) \(request.uri.path)", type: "not_found_error", code: "not_found")
        } catch let e as HTTPResponseError {
            error = APIError(status: e.status, message: "\(e)", type: e.status.code < 500 ? "invalid_request_error" : "server_error")
        } catch is CancellationError {
            throw CancellationError()  // the client is gone; there is no one to answer
        } catch let e {
            error = .internalError("\(e)")
        }
        metrics.record(status: Int(error.status.code))
        return try error.response(from: request, context: context)
    }
}

/// `--api-key`: the API and tokenizer endpoints need `Authorization: Bearer KEY`. The chat page, /health and
/// /metrics stay open (the page asks for the key and sends it itself).
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let open = path == "/" || path == "/health" || path == "/metrics"
        if !open {
            let given = request.headers[.authorization] ?? ""
            guard Self.equalInConstantTime(given, "Bearer " + key) else {
                var error = APIError.unauthorized
                error.headers[.wwwAuthenticate] = "Bearer"
                throw error
            }
        }
        return try await next(request, context)
    }

    /// Compares without stopping at the first difference, so timing does not reveal how much of a guess is right.
    static func equalInConstantTime(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }
}
