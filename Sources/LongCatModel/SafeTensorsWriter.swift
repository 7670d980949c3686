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

        /// A tensor of a mapped file written again as it is, under its own name or `name`.
        public init(copying view: TensorView, as name: String? = nil) {
            self.init(name: name ?? view.name, dtype: view.dtype, shape: view.shape) { buffer in
                buffer.copyMemory(from: UnsafeRawBufferPointer(start: view.pointer, count: view.byteCount))
            }
        }
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

    /// Refuses to start a write the disk cannot hold, instead of failing (or filling the disk) part way.
    public static func checkDiskSpace(bytes: Int, directory: URL) throws {
        guard let attributes = try? FileManager.default.attributesOfFileSystem(forPath: directory.path),
              let free = (attributes[.systemFreeSize] as? NSNumber)?.int64Value, Int64(bytes) > free else { return }
        throw CheckpointError.cannotOpen(
            path: directory.path,
            reason: String(format: "writing %.2f GiB of weights needs more than the %.2f GiB free on its disk", Double(bytes) / Double(1 << 30), Double(free) / Double(1 << 30)))
    }

    /// `written` hears the byte count of each tensor once it is in the file.
    public static func write(
        path: String, entries: [Entry], metadata: [String: String] = ["format": "pt"], written: (Int) -> Void = { _ in }
    ) throws {
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
            written(e.byteCount)
        }
    }

    /// Writes a checkpoint's tensors into `directory`: one `model.safetensors`, or shards of at most
    /// `shardBytes` (unless one tensor is larger) listed in `model.safetensors.index.json`. Entries are
    /// filled in order.
    public static func writeCheckpoint(
        _ entries: [Entry], to directory: URL, shardBytes: Int, metadata: [String: String] = ["format": "pt"],
        progress: ProgressHandler? = nil
    ) throws {
        var shards: [[Entry]] = [[]]
        var shardSize = 0
        for e in entries {
            if shardSize > 0 && shardSize + e.byteCount > shardBytes {
                shards.append([])
                shardSize = 0
            }
            shards[shards.count - 1].append(e)
            shardSize += e.byteCount
        }
        // Bytes written over all shards, reported after each tensor.
        let total = entries.reduce(0) { $0 + $1.byteCount }
        try checkDiskSpace(bytes: total, directory: directory)
        var done = 0
        let written: (Int) -> Void = { bytes in
            done += bytes
            progress?(ProgressReport(stage: "writing", done: done, total: total, unit: .bytes))
        }
        if shards.count == 1 {
            try write(path: directory.appendingPathComponent("model.safetensors").path, entries: shards[0], metadata: metadata, written: written)
            return
        }
        var weightMap: [String: String] = [:]
        for (i, shard) in shards.enumerated() {
            let name = String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
            try write(path: directory.appendingPathComponent(name).path, entries: shard, metadata: metadata, written: written)
            for e in shard { weightMap[e.name] = name }
        }
        let index: [String: Any] = ["metadata": ["total_size": total], "weight_map": weightMap]
        try JSONSerialization.data(withJSONObject: index, options: [.prettyPrinted, .sortedKeys])
            .write(to: directory.appendingPathComponent("model.safetensors.index.json"))
    }
}
