import Foundation
import Hummingbird
import LongCatEngine
import LongCatModel
import LongCatTokenizer

/// An error as the OpenAI API reports it: an HTTP status and `{"error": {"message", "type", "param", "code"}}`.
/// Every failure a client can cause ends up as one of these, so clients' error handling (the `openai` package
/// raises `BadRequestError` etc. from the status and reads `message`) works unchanged.
public struct APIError: Error, HTTPResponseError, CustomStringConvertible, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    /// OpenAI's error class: invalid_request_error, authentication_error, not_found_error, server_error...
    public var type: String
    /// The request field at fault (`max_tokens`, `messages[1].role`), when there is one.
    public var param: String?
    /// A stable machine-readable reason.
    public var code: String?
    public var headers: HTTPFields = [:]

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    public var description: String { "\(status.code) \(type): \(message)" }

    /// The body's JSON.
    public var json: JSONValue {
        ["error": [
            "message": .string(message), "type": .string(type),
            "param": param.map(JSONValue.string) ?? .null, "code": code.map(JSONValue.string) ?? .null,
        ]]
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: json.dumps())))
    }
}

extension APIError {
    static func invalid(_ message: String, param: String?, code: String = "invalid_value") -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    static func wrongType(_ param: String, expected: String, got value: JSONValue) -> APIError {
        invalid("\(param) must be \(expected), got \(value.typeName)", param: param, code: "invalid_type")
    }

    static func missing(_ param: String) -> APIError {
        invalid("\(param) is required", param: param, code: "missing_required_parameter")
    }

    static func unsupported(_ message: String, param: String) -> APIError {
        invalid(message, param: param, code: "unsupported_parameter")
    }

    static let unauthorized = APIError(
        status: .unauthorized, message: "missing or wrong API key: send the header 'Authorization: Bearer KEY'",
        type: "authentication_error", code: "invalid_api_key")

    static func modelNotFound(_ name: String, served: String) -> APIError {
        APIError(
            status: .notFound, message: "the model '\(name)' does not exist; this server serves '\(served)'",
            type: "not_found_error", param: "model", code: "model_not_found")
    }

    static func bodyTooLarge(limit: Int) -> APIError {
        APIError(
            status: .contentTooLarge, message: "the request body is larger than the limit of \(limit) bytes",
            type: "invalid_request_error", code: "request_too_large")
    }

    /// 503 with Retry-After: the client should come back, nothing was wrong with its request.
    static func unavailable(_ message: String, code: String, retryAfterSeconds: Int = 1) -> APIError {
        var error = APIError(status: .serviceUnavailable, message: message, type: "server_error", code: code)
        error.headers[.retryAfter] = String(retryAfterSeconds)
        return error
    }

    static let loading = unavailable("the model is still loading; retry shortly", code: "model_loading", retryAfterSeconds: 2)

    static func internalError(_ message: String) -> APIError {
        APIError(status: .internalServerError, message: message, type: "server_error", code: "internal_error")
    }

    /// Maps what the engine refuses to the field a client can fix. `promptParam` names where the prompt came
    /// from (`messages` for chat, `prompt` for completions).
    static func from(_ error: Error, promptParam: String) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as EngineError:
            switch error {
            case .emptyPrompt: return invalid("\(promptParam): the prompt is empty", param: promptParam)
            case .promptTooLong:
                return invalid("\(promptParam): \(error.description)", param: promptParam, code: "context_length_exceeded")
            case .cannotFit: return invalid(error.description, param: "max_tokens", code: "context_length_exceeded")
            case .queueFull: return unavailable(error.description, code: "server_busy")
            case .shutDown: return unavailable("the server is shutting down", code: "shutting_down")
            }
        case let error as GenerationError:
            switch error {
            case .invalidOption(let field, _): return invalid(error.description, param: field)
            }
        case let error as InferenceError:
            switch error {
            case .tokenOutOfRange, .emptyInput: return invalid("\(promptParam): \(error.description)", param: promptParam)
            case .contextOverflow:
                return invalid("\(promptParam): \(error.description)", param: promptParam, code: "context_length_exceeded")
            case .noMTPHead: return invalid(error.description, param: "speculative")
            }
        case is CancellationError:
            return unavailable("the request was cancelled", code: "cancelled")
        default:
            return internalError("\(error)")
        }
    }
}

extension JSONValue {
    /// How an error message names a JSON value's type.
    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int: return "an integer"
        case .double: return "a number"
        case .string: return "a string"
        case .array: return "a list"
        case .object: return "an object"
        }
    }
}
