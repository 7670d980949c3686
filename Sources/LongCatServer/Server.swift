import Foundation
import Hummingbird
import LongCatEngine
import LongCatTokenizer
import Logging
import NIOCore
import ServiceLifecycle

/// Settings of `longcat serve`.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port (printed once listening).
    public var port = 8000
    /// The name clients pass as `model` and /v1/models lists.
    public var servedModelName = "longcat-flash"
    /// When set, /v1/*, /tokenize and /detokenize need `Authorization: Bearer KEY`.
    public var apiKey: String?
    /// Larger request bodies get 413.
    public var maxBodyBytes = 4 << 20
    /// max_tokens when a request gives none (and the context and cache budget allow that much).
    public var defaultMaxTokens = 1024
    /// Speculative decoding for requests that do not choose (`"speculative": "mtp"` or `"none"`).
    public var defaultSpeculation = Speculation.none
    /// Highest n (choices per prompt).
    public var maxChoices = 16
    /// On SIGINT/SIGTERM, in-flight requests may finish for this long; then they are cancelled.
    public var drainTimeout: Duration = .seconds(30)

    public init() {}
}

/// A model ready to serve: the engine, its tokenizer and chat formatter.
public struct LoadedModel: Sendable {
    public let engine: Engine
    public let tokenizer: Tokenizer
    /// nil when the tokenizer has no usable chat template (then chat requests get a 400 saying so).
    let formatter: ChatFormatter?
    let templateProblem: String?
    let limits: ModelLimits

    public init(engine: Engine, tokenizer: Tokenizer) {
        self.engine = engine
        self.tokenizer = tokenizer
        do {
            formatter = try ChatFormatter(tokenizer: tokenizer)
            templateProblem = nil
        } catch {
            formatter = nil
            templateProblem = "\(error)"
        }
        limits = ModelLimits(
            contextLength: engine.model.config.maxPositionEmbeddings, vocabularySize: engine.model.config.vocabSize,
            cacheBudget: engine.options.maxCacheTokens)
    }
}

/// What every route shares: the configuration, the metrics, and the model once loaded (the server listens,
/// and answers /health with 503, while it loads).
public final class ServerState: @unchecked Sendable {
    public let configuration: ServerConfiguration
    public let metrics = ServerMetrics()
    private let lock = NSLock()
    private var loaded: LoadedModel?

    public init(configuration: ServerConfiguration, model: LoadedModel? = nil) {
        self.configuration = configuration
        loaded = model
    }

    public var model: LoadedModel? {
        lock.lock()
        defer { lock.unlock() }
        return loaded
    }

    public func modelLoaded(_ model: LoadedModel) {
        lock.lock()
        loaded = model
        lock.unlock()
    }
}

/// Why the server could not start listening.
public enum ServerStartError: Error, Equatable, CustomStringConvertible {
    case portInUse(host: String, port: Int)

    public var description: String {
        switch self {
        case .portInUse(let host, let port):
            return "port \(port) on \(host) is already in use: stop what listens there, or choose another port with --port (0 picks a free one)"
        }
    }
}

/// The OpenAI-compatible HTTP server on Hummingbird.
public enum LongCatHTTPServer {
    /// The application: routes, middleware, bind address. `onListening` gets the bound port (useful with port 0).
    public static func application(
        state: ServerState, logger: Logger? = nil, onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let config = state.configuration
        return Application(
            router: Routes(state: state).router(),
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "longcat"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? config.port) },
            logger: logger ?? Logger(label: "longcat.serve"))
    }

    /// Serves until SIGINT or SIGTERM. Then the listener closes, in-flight requests get up to the drain timeout to
    /// finish, the rest are cancelled, and it returns. `load` runs on its own thread while the server already
    /// answers /health (503 until it succeeds); if it throws, the server stops and the error is rethrown.
    public static func run(
        state: ServerState, logger: Logger = defaultLogger, onListening: @escaping @Sendable (Int) -> Void,
        load: @escaping @Sendable () throws -> LoadedModel
    ) async throws {
        // Loading starts once the port is bound, so a busy port fails at once, before minutes of loading.
        let (listening, listened) = AsyncStream<Int>.makeStream()
        let app = application(state: state, logger: logger, onListening: { port in
            onListening(port)
            listened.yield(port)
            listened.finish()
        })
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = state.configuration.drainTimeout
        configuration.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: configuration)

        let failure = LoadFailure()
        Task {
            var ports = listening.makeAsyncIterator()
            guard await ports.next() != nil else { return }
            do {
                let model = try await runOnThread(load)
                state.modelLoaded(model)
                logger.info("model loaded; ready")
            } catch {
                failure.error = error
                await group.triggerGracefulShutdown()
            }
        }
        do {
            try await group.run()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            listened.finish()
            throw ServerStartError.portInUse(host: state.configuration.host, port: state.configuration.port)
        } catch {
            listened.finish()
            throw error
        }
        state.model?.engine.shutdown()
        if let error = failure.error { throw error }
    }

    /// Info level unless LOG_LEVEL says otherwise (trace, debug, info, notice, warning, error, critical).
    public static var defaultLogger: Logger {
        var logger = Logger(label: "longcat.serve")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        return logger
    }

    private final class LoadFailure: @unchecked Sendable {
        private let lock = NSLock()
        private var _error: Error?
        var error: Error? {
            get { lock.withLock { _error } }
            set { lock.withLock { _error = newValue } }
        }
    }

    /// Loading is long, blocking work; it gets a thread of its own instead of one of the few concurrency threads
    /// that serve requests.
    static func runOnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try work() }) }
            thread.name = "longcat-load"
            thread.start()
        }
    }
}
