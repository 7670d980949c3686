import Foundation
import Hummingbird
import LongCatTokenizer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole HTTP response as the tests read it.
struct TestResponse: Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let body: ByteBuffer
}

/// A minimal HTTP/1.1 client for the tests, over a blocking loopback socket on a thread of its own: one connection
/// per request (`Connection: close`, so the body ends where the stream ends). Cancelling the calling task closes the
/// connection, as a client that goes away does. Written for these tests so they need no TLS-capable HTTP client.
struct TestClient: Sendable {
    let port: Int

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    func execute(uri: String, method: HTTPRequest.Method, headers: HTTPFields = [:], body: ByteBuffer? = nil) async throws -> TestResponse {
        var head = "\(method.rawValue) \(uri) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for field in headers { head += "\(field.name.rawName): \(field.value)\r\n" }
        let bodyBytes = body.map { Array($0.readableBytesView) } ?? []
        if body != nil || method == .post { head += "Content-Length: \(bodyBytes.count)\r\n" }
        let request = Array((head + "\r\n").utf8) + bodyBytes

        let socket = try Socket(port: port)
        let raw = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8], Error>) in
                Thread { continuation.resume(with: Result { try socket.exchange(request) }) }.start()
            }
        } onCancel: {
            socket.shutdown()
        }
        try Task.checkCancellation()
        return try Self.parse(raw)
    }

    func post(_ uri: String, _ body: JSONValue, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await post(uri, raw: body.dumps(), headers: headers)
    }

    func post(_ uri: String, raw: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var fields = headers
        fields[.contentType] = "application/json"
        return try await execute(uri: uri, method: .post, headers: fields, body: ByteBuffer(string: raw))
    }

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: headers)
    }

    /// Status line, header fields, then the body: de-chunked when sent in chunks.
    static func parse(_ raw: [UInt8]) throws -> TestResponse {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = raw.indices.dropLast(3).first(where: { raw[$0..<($0 + 4)].elementsEqual(separator) }) else {
            throw Failure(description: "incomplete response head: \(String(decoding: raw, as: UTF8.self).prefix(200))")
        }
        let lines = String(decoding: raw[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, let code = Int(statusParts[1]) else { throw Failure(description: "bad status line \(lines[0])") }
        var fields = HTTPFields()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), let name = HTTPFields.Element.Name(String(line[..<colon])) else { continue }
            fields.append(HTTPFields.Element(name: name, value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var body = Array(raw[(end + 4)...])
        if fields[.transferEncoding]?.lowercased() == "chunked" { body = try dechunk(body) }
        return TestResponse(status: .init(code: code), headers: fields, body: ByteBuffer(bytes: body))
    }

    static func dechunk(_ bytes: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = [], i = 0
        while i < bytes.count {
            guard let lineEnd = (i..<(bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }),
                  let size = Int(String(decoding: bytes[i..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16)
            else { throw Failure(description: "bad chunk header at byte \(i)") }
            if size == 0 { break }
            let start = lineEnd + 2
            guard start + size <= bytes.count else { throw Failure(description: "truncated chunk at byte \(i)") }
            out += bytes[start..<(start + size)]
            i = start + size + 2
        }
        return out
    }
}

#if os(Linux)
private let noSignal = Int32(MSG_NOSIGNAL)
#else
private let noSignal: Int32 = 0
#endif

/// A connected loopback TCP socket.
private final class Socket: @unchecked Sendable {
    private let fd: Int32

    init(port: Int) throws {
        #if canImport(Glibc)
        fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        fd = Darwin.socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw TestClient.Failure(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else {
            close(fd)
            throw TestClient.Failure(description: "connect to 127.0.0.1:\(port): errno \(errno)")
        }
    }

    deinit { close(fd) }

    /// Sends the request and reads until the server closes the connection.
    func exchange(_ request: [UInt8]) throws -> [UInt8] {
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, noSignal) }
            guard n > 0 else { throw TestClient.Failure(description: "send: errno \(errno)") }
            sent += n
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return response }
            guard n > 0 else { throw TestClient.Failure(description: "recv: errno \(errno)") }
            response += buffer[..<n]
        }
    }

    /// Ends the exchange from another thread: the reader sees end of stream at once.
    func shutdown() {
        #if canImport(Glibc)
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
        #else
        _ = Darwin.shutdown(fd, SHUT_RDWR)
        #endif
    }
}
