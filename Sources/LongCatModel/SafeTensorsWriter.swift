import Foundation
import LongCatTensor

/// Writes safetensors files: the header is laid out first (offsets follow from shapes), then each
/// tensor's bytes are produced by its `fill` closure straight into the file, one tensor at a time.
public enum SafeTensorsWriter {
    public struct Entry {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        /// Writes exactly `byteCount` bytes of the tensor into the buffer.
        public var fill: (UnsafeMutableRawBufferPointer) -> Void

        public init(name: String, dtype: DType, shape: [Int], fill: @escaping (UnsafeMutableRawBufferPointer) -> Void) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.fill = fill
        }

        public var byteCount: Int { shape.reduce(1, *) * dtype.byteSize }
    }

    /// The JSON header for `entries` (in order), padded with spaces to a multiple of 8 bytes.
    public static func header(for entries: [Entry], metadata: [String: String] = ["format": "pt"]) throws -> Data {
        var object: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for e in entries {
            object[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, offset + e.byteCount]]
            offset += e.byteCount
        }
        var json = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        return json
    }

    public static func write(path: String, entries: [Entry], metadata: [String: String] = ["format": "pt"]) throws {
        let header = try header(for: entries, metadata: metadata)
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CheckpointError.cannotOpen(path: path, reason: "cannot create file")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var length = UInt64(header.count).littleEndian
        try handle.write(contentsOf: Data(bytes: &length, count: 8))
        try handle.write(contentsOf: header)
        for e in entries {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(e.byteCount, 1), alignment: 64)
            defer { buffer.deallocate() }
            let body = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<e.byteCount])
            e.fill(body)
            try handle.write(contentsOf: Data(bytesNoCopy: body.baseAddress ?? buffer.baseAddress!, count: e.byteCount, deallocator: .none))
        }
    }
}
