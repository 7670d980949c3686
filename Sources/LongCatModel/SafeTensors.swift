import Foundation
import LongCatTensor

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file. Tensor views point into it; the OS pages weights in on
/// demand and can drop them under pressure, so a checkpoint larger than RAM's free part still loads.
public final class MappedFile: ByteStorage {
    public let path: String
    public let size: Int
    public let base: UnsafeRawPointer

    public init(path: String) throws {
        self.path = path
        // O_NONBLOCK: opening a FIFO (or other special file) by mistake must fail below, not block forever.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw CheckpointError.fileNotFound(path: path) }
            throw CheckpointError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw CheckpointError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw CheckpointError.cannotOpen(path: path, reason: "not a regular file")
        }
        size = Int(st.st_size)
        if size == 0 {
            base = UnsafeRawPointer(bitPattern: 1)!  // never dereferenced: every range check fails first
            return
        }
        let mapped = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw CheckpointError.cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(mapped)
    }

    deinit {
        if size > 0 { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }
}

/// Tensors a token reads a row at a time from their mapping (LongCat-Flash-Lite's N-gram tables). The kernel is
/// told they are read at random, so a page-cache miss reads its page rather than a readahead window; and what
/// they hold resident can be measured (Linux: /proc/self/smaps) and handed back.
public final class SparselyReadTensors {
    /// Bytes of the tensors in the files.
    public let byteCount: Int
    /// The whole pages inside each tensor (its first and last partial pages are shared with its neighbours), and
    /// the mapping they belong to, which they keep alive.
    let regions: [(file: MappedFile, pages: Range<UInt>)]

    init(_ views: [TensorView]) {
        let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
        byteCount = views.reduce(0) { $0 + $1.byteCount }
        regions = views.compactMap { view in
            let start = UInt(bitPattern: view.pointer), end = start + UInt(view.byteCount)
            let pages = (start + pageSize - 1) / pageSize * pageSize ..< end / pageSize * pageSize
            return pages.isEmpty ? nil : (view.file, pages)
        }
        advise(MADV_RANDOM)
    }

    private func advise(_ advice: Int32) {
        for r in regions { madvise(UnsafeMutableRawPointer(bitPattern: r.pages.lowerBound), Int(r.pages.count), advice) }
    }

    /// Bytes of the tensors' pages mapped into this process now, or nil where /proc/self/smaps cannot be read.
    /// The advice above gives these pages mappings of their own, so whole smaps entries fall inside them.
    public func residentBytes() -> Int? {
        // Read to the end: /proc files report a size of 0, which a whole-file read would trust.
        guard let data = try? FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/smaps")).readToEnd(),
              let smaps = String(data: data, encoding: .utf8) else { return nil }
        var total = 0, inside = false
        for line in smaps.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), let space = line.firstIndex(of: " "), dash < space,
               let start = UInt(line[..<dash], radix: 16), let end = UInt(line[line.index(after: dash)..<space], radix: 16) {
                inside = regions.contains { $0.pages.lowerBound <= start && end <= $0.pages.upperBound }
            } else if inside, line.hasPrefix("Rss:"), let kB = Int(line.dropFirst(4).split(separator: " ").first ?? "") {
                total += kB * 1024
            }
        }
        return total
    }

    /// Unmaps the resident pages from this process (the page cache keeps them; the next read maps them again).
    public func release() { advise(MADV_DONTNEED) }

    /// `release`, and asks the kernel to drop the pages from the page cache too, so that the next read of a row goes
    /// to the disk (as it mostly does when the tables are larger than memory). Pages other processes map stay.
    public func evict() {
        release()
        #if os(Linux)
        for r in regions {
            let fd = open(r.file.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            fdatasync(fd)  // pages still waiting to be written (a file just made) would stay
            posix_fadvise(fd, off_t(r.pages.lowerBound - UInt(bitPattern: r.file.base)), off_t(r.pages.count), POSIX_FADV_DONTNEED)
            close(fd)
        }
        #endif
    }
}

/// One tensor inside a safetensors file: its dtype, shape and bytes, borrowed from the mapping.
public struct TensorView {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let pointer: UnsafeRawPointer
    public let byteCount: Int
    public let file: MappedFile

    public var elementCount: Int { shape.reduce(1, *) }

    /// Elements as float32 (for small tensors such as norms and biases; weights use `WeightMatrix`).
    public func floats() throws -> [Float] {
        // Reads are unaligned-safe: the format does not promise aligned data offsets.
        let n = elementCount
        func load<T>(_ type: T.Type, _ i: Int) -> T { pointer.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self) }
        switch dtype {
        case .f32:
            return (0..<n).map { load(Float.self, $0) }
        case .bf16:
            return (0..<n).map { FloatConversion.bf16ToFloat(load(UInt16.self, $0)) }
        case .f16:
            return (0..<n).map { FloatConversion.f16ToFloat(load(UInt16.self, $0)) }
        case .f64:
            return (0..<n).map { Float(load(Double.self, $0)) }
        default:
            throw CheckpointError.unsupportedDType(tensor: name, dtype: dtype.rawValue, allowed: ["F32", "BF16", "F16", "F64"])
        }
    }
}

/// A parsed safetensors file: an 8-byte little-endian header length, a JSON header, then the data section.
/// Every tensor's byte range is checked against the file and against its neighbours before any is used.
public final class SafeTensorsFile {
    public let mapping: MappedFile
    public let tensors: [String: TensorView]
    public let metadata: [String: String]

    /// Largest JSON header accepted (the format's own limit is 100 MB).
    static let maxHeaderBytes: UInt64 = 100_000_000

    public convenience init(path: String) throws {
        try self.init(mapping: MappedFile(path: path))
    }

    public init(mapping: MappedFile) throws {
        self.mapping = mapping
        let file = (mapping.path as NSString).lastPathComponent
        guard mapping.size >= 8 else {
            throw CheckpointError.truncated(file: file, detail: "\(mapping.size) bytes, less than the 8-byte header length")
        }
        let headerLength = mapping.base.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(mapping.size - 8) else {
            throw CheckpointError.headerPastEnd(file: file, headerBytes: headerLength, fileBytes: mapping.size)
        }
        guard headerLength <= Self.maxHeaderBytes else {
            throw CheckpointError.invalidHeader(file: file, detail: "header of \(headerLength) bytes exceeds the 100 MB limit")
        }
        let headerData = Data(bytes: mapping.base + 8, count: Int(headerLength))
        guard let json = try? JSONSerialization.jsonObject(with: headerData), let header = json as? [String: Any] else {
            throw CheckpointError.invalidHeader(file: file, detail: "header is not a JSON object")
        }
        let dataStart = 8 + Int(headerLength)
        let dataBytes = mapping.size - dataStart
        var meta: [String: String] = [:]
        var entries: [(name: String, dtype: DType, dtypeName: String, shape: [Int], begin: Int, end: Int)] = []
        // Entries are checked in name order and ranges in offset order (not in the dictionary's random order),
        // so the same bad file always reports the same tensor: for a cut-off file, the one the cut runs through.
        for (name, value) in header.sorted(by: { $0.key < $1.key }) {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw CheckpointError.invalidHeader(file: file, detail: "__metadata__ is not an object")
                }
                for (k, v) in m { meta[k] = (v as? String) ?? "\(v)" }
                continue
            }
            guard let entry = value as? [String: Any] else {
                throw CheckpointError.invalidHeader(file: file, detail: "entry '\(name)' is not an object")
            }
            guard let dtypeName = entry["dtype"] as? String else {
                throw CheckpointError.invalidHeader(file: file, detail: "tensor '\(name)' has no dtype")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw CheckpointError.unknownDType(file: file, tensor: name, dtype: dtypeName)
            }
            guard let shape = Self.intArray(entry["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
                throw CheckpointError.invalidHeader(file: file, detail: "tensor '\(name)' has no valid shape")
            }
            guard let offsets = Self.intArray(entry["data_offsets"]), offsets.count == 2 else {
                throw CheckpointError.invalidHeader(file: file, detail: "tensor '\(name)' has no valid data_offsets")
            }
            entries.append((name, dtype, dtypeName, shape, offsets[0], offsets[1]))
        }
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var views: [String: TensorView] = [:]
        var previous: (name: String, end: Int)? = nil
        for e in entries {
            let (name, begin, end) = (e.name, e.begin, e.end)
            guard begin >= 0, end >= begin, end <= dataBytes else {
                throw CheckpointError.tensorOutOfBounds(file: file, tensor: name, begin: begin, end: end, dataBytes: dataBytes)
            }
            let (elements, overflow) = e.shape.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                return (p, acc.1 || o)
            }
            let (expected, overflow2) = elements.multipliedReportingOverflow(by: e.dtype.byteSize)
            guard !overflow, !overflow2, expected == end - begin else {
                throw CheckpointError.byteCountMismatch(
                    file: file, tensor: name, shape: e.shape, dtype: e.dtypeName,
                    expected: overflow || overflow2 ? Int.max : expected, actual: end - begin)
            }
            // Sorted by start, any overlap shows up between neighbours.
            if let previous, begin < previous.end {
                throw CheckpointError.tensorsOverlap(file: file, first: previous.name, second: name)
            }
            views[name] = TensorView(
                name: name, dtype: e.dtype, shape: e.shape, pointer: mapping.base + dataStart + begin,
                byteCount: end - begin, file: mapping)
            previous = (name, end)
        }
        tensors = views
        metadata = meta
    }

    static func intArray(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        var out: [Int] = []
        for v in array {
            // JSON true/false bridge to 1/0; they are not integers.
            guard !isJSONBoolean(v), let n = v as? Int else { return nil }
            out.append(n)
        }
        return out
    }
}

/// Whether a value from JSONSerialization is a JSON boolean. Foundation hands booleans back as NSNumbers that
/// also answer `as? Int` and `as? Double`, so integer and number fields must rule them out explicitly.
func isJSONBoolean(_ value: Any) -> Bool {
    let valueType = type(of: value)
    return valueType == Bool.self || valueType == type(of: NSNumber(value: true))
}
