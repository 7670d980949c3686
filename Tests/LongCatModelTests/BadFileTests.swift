import Foundation
import LongCatModel
import LongCatTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A safetensors file taken apart into named tensors (dtype, shape, bytes) so a test can change, drop or add
/// tensors and write it back with fresh contiguous offsets. `raw` builds files whose header is deliberately wrong.
struct SafeTensorsImage {
    struct Tensor {
        var name: String
        var dtype: String
        var shape: [Int]
        var bytes: Data
    }

    var tensors: [Tensor]
    var metadata: [String: String]?

    init(tensors: [Tensor], metadata: [String: String]? = nil) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Reads a well-formed file (a fixture); fails the test rather than trusting anything odd.
    init(contentsOf path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        let header = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: data.subdata(in: 8..<8 + headerLength)) as? [String: Any])
        let dataStart = 8 + headerLength
        var tensors: [Tensor] = []
        for (name, value) in header where name != "__metadata__" {
            let entry = try XCTUnwrap(value as? [String: Any])
            let offsets = try XCTUnwrap(entry["data_offsets"] as? [Int])
            tensors.append(Tensor(
                name: name, dtype: try XCTUnwrap(entry["dtype"] as? String), shape: try XCTUnwrap(entry["shape"] as? [Int]),
                bytes: data.subdata(in: dataStart + offsets[0]..<dataStart + offsets[1])))
        }
        // Keep the file's own order (by offset) so a rewrite changes only what a test changes.
        let begin = { (t: Tensor) in (header[t.name] as! [String: Any])["data_offsets"] as! [Int] }
        self.tensors = tensors.sorted { begin($0)[0] < begin($1)[0] }
        metadata = header["__metadata__"] as? [String: String]
    }

    subscript(name: String) -> Tensor {
        get { tensors.first { $0.name == name }! }
        set { tensors[tensors.firstIndex { $0.name == name }!] = newValue }
    }

    func has(_ name: String) -> Bool { tensors.contains { $0.name == name } }

    mutating func remove(_ name: String) {
        precondition(has(name), "no tensor \(name) to remove")
        tensors.removeAll { $0.name == name }
    }

    /// The header a writer would produce: contiguous ranges in list order.
    func header() -> [String: Any] {
        var header: [String: Any] = [:]
        var offset = 0
        for t in tensors {
            header[t.name] = ["dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]]
            offset += t.bytes.count
        }
        if let metadata { header["__metadata__"] = metadata }
        return header
    }

    func encoded() throws -> Data {
        try Self.raw(header: header(), data: tensors.reduce(into: Data()) { $0 += $1.bytes })
    }

    func write(to url: URL) throws { try encoded().write(to: url) }

    /// A file from any JSON header object (padded with spaces to 8 bytes, as writers do) and a data section.
    static func raw(header: Any, data: Data) throws -> Data {
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json += Data(repeating: 0x20, count: (8 - json.count % 8) % 8)
        return raw(headerBytes: json, data: data)
    }

    /// A file from literal header bytes; `declaredLength` overrides the 8-byte length prefix.
    static func raw(headerBytes: Data, data: Data = Data(), declaredLength: UInt64? = nil) -> Data {
        var length = (declaredLength ?? UInt64(headerBytes.count)).littleEndian
        var out = Data(bytes: &length, count: 8)
        out += headerBytes
        out += data
        return out
    }
}

/// Loading damaged or inconsistent checkpoints fails with the specific error that names what is wrong, and
/// never crashes or hangs. Every test works on copies in a fresh temporary directory.
final class BadFileTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("BadFileTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let tmp { try? FileManager.default.removeItem(at: tmp) }
    }

    // MARK: Helpers

    /// Copies a fixture model directory (config, weights, index; not the large expected outputs) into the temp
    /// directory. Files are rewritten rather than copied so they are writable (the fixtures are read-only).
    func copyFixture(_ name: String) throws -> URL {
        let source = try Fixtures.url(name)
        let dest = tmp.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dest, withIntermediateDirectories: true)
        for file in try FileManager.default.contentsOfDirectory(atPath: source.path)
        where file == "config.json" || file.hasSuffix(".safetensors") || file.hasSuffix(".index.json") {
            try Data(contentsOf: source.appendingPathComponent(file)).write(to: dest.appendingPathComponent(file))
        }
        return dest
    }

    /// Rewrites one safetensors file of a copied checkpoint after `change` has edited its tensors.
    func rewrite(_ dir: URL, _ file: String = "model.safetensors", _ change: (inout SafeTensorsImage) throws -> Void) throws {
        let url = dir.appendingPathComponent(file)
        var image = try SafeTensorsImage(contentsOf: url.path)
        try change(&image)
        try image.write(to: url)
    }

    /// Rewrites a copied config.json after `change` has edited its fields.
    func editConfig(_ dir: URL, _ change: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("config.json")
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        change(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
    }

    /// Writes bytes to a file in the temp directory and returns its path.
    func writeFile(_ data: Data, named name: String = "bad.safetensors") throws -> String {
        let url = tmp.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }

    /// The error thrown by `body`, as a CheckpointError (failing the test if nothing or something else is thrown).
    func checkpointError<T>(_ body: @autoclosure () throws -> T, file: StaticString = #filePath, line: UInt = #line) -> CheckpointError? {
        do {
            _ = try body()
            XCTFail("expected a CheckpointError, but loading succeeded", file: file, line: line)
        } catch let error as CheckpointError {
            return error
        } catch {
            XCTFail("expected a CheckpointError, got \(type(of: error)): \(error)", file: file, line: line)
        }
        return nil
    }

    func loadModel(_ dir: URL) throws -> LongCatModel { try LongCatModel(directory: dir.path) }

    /// A single-tensor header entry.
    func entry(_ dtype: String, _ shape: [Int], _ begin: Int, _ end: Int) -> [String: Any] {
        ["dtype": dtype, "shape": shape, "data_offsets": [begin, end]]
    }

    // MARK: Baselines: the helpers themselves produce loadable files

    /// A crafted file with metadata and one tensor loads with the right values (so failures below are not
    /// caused by the builder).
    func testCraftedFileLoads() throws {
        let values: [Float] = [1, 2, 3, 4]
        let image = SafeTensorsImage(
            tensors: [.init(name: "w", dtype: "F32", shape: [2, 2], bytes: values.withUnsafeBytes { Data($0) })],
            metadata: ["format": "pt"])
        let file = try SafeTensorsFile(path: writeFile(try image.encoded()))
        XCTAssertEqual(file.metadata, ["format": "pt"])
        XCTAssertEqual(file.tensors["w"]?.shape, [2, 2])
        XCTAssertEqual(try file.tensors["w"]?.floats(), values)
    }

    /// Re-encoding a fixture with the helper keeps every tensor, and the model built from it loads and gives the
    /// same logits as the original.
    func testRewrittenFixtureStillLoads() throws {
        let dir = try copyFixture("tiny-fp32")
        try rewrite(dir) { _ in }
        let original = try SafeTensorsFile(path: Fixtures.path("tiny-fp32") + "/model.safetensors")
        let copy = try SafeTensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
        XCTAssertEqual(Set(copy.tensors.keys), Set(original.tensors.keys))
        for (name, view) in original.tensors {
            let other = try XCTUnwrap(copy.tensors[name])
            XCTAssertEqual(other.shape, view.shape, name)
            XCTAssertEqual(other.dtype, view.dtype, name)
            XCTAssertEqual(Data(bytes: other.pointer, count: other.byteCount), Data(bytes: view.pointer, count: view.byteCount), name)
        }
        let a = try LongCatModel(directory: Fixtures.path("tiny-fp32"))
        let b = try loadModel(dir)
        XCTAssertEqual(
            try b.forward(tokens: [5, 9, 3], cache: KVCache(config: b.config)),
            try a.forward(tokens: [5, 9, 3], cache: KVCache(config: a.config)))
    }

    /// A header of "{}" that exactly fills the file is a valid, empty safetensors file (the boundary of the
    /// header-length check), and spaces padding the header are allowed.
    func testEmptyHeaderExactlyFillingFileIsValid() throws {
        let file = try SafeTensorsFile(path: writeFile(SafeTensorsImage.raw(headerBytes: Data("{}      ".utf8))))
        XCTAssertTrue(file.tensors.isEmpty)
    }

    /// Writers pad the header so the data section starts 8-byte aligned, but the format does not require it:
    /// a header padded to an odd length still loads, with the same numbers (F32, BF16 and FP8 + F32 scales).
    func testUnalignedDataSectionStillLoads() throws {
        for name in ["tiny-fp32", "small-fp8"] {
            let dir = try copyFixture(name)
            let image = try SafeTensorsImage(contentsOf: dir.appendingPathComponent("model.safetensors").path)
            var json = try JSONSerialization.data(withJSONObject: image.header(), options: [.sortedKeys])
            json += Data(repeating: 0x20, count: (8 - json.count % 8) % 8 + 3)
            try SafeTensorsImage.raw(headerBytes: json, data: image.tensors.reduce(into: Data()) { $0 += $1.bytes })
                .write(to: dir.appendingPathComponent("model.safetensors"))
            let original = try LongCatModel(directory: Fixtures.path(name))
            let shifted = try loadModel(dir)
            XCTAssertEqual(
                try shifted.forward(tokens: [5, 9, 3], cache: KVCache(config: shifted.config)),
                try original.forward(tokens: [5, 9, 3], cache: KVCache(config: original.config)), name)
        }
    }

    // MARK: 1. Truncated files

    func testFileShorterThanLengthPrefixIsTruncated() throws {
        for size in [0, 1, 7] {
            let path = try writeFile(Data(repeating: 0x7b, count: size), named: "short\(size).safetensors")
            guard case .truncated(let file, _)? = checkpointError(try SafeTensorsFile(path: path)) else {
                XCTFail("\(size) bytes: expected .truncated"); continue
            }
            XCTAssertEqual(file, "short\(size).safetensors")
        }
    }

    /// A fixture cut inside its JSON header: the declared header length runs past the end.
    func testFixtureCutInsideHeader() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny-fp32") + "/model.safetensors"))
        let headerLength = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
        let path = try writeFile(data.prefix(8 + 100), named: "model.safetensors")
        XCTAssertEqual(
            checkpointError(try SafeTensorsFile(path: path)),
            .headerPastEnd(file: "model.safetensors", headerBytes: headerLength, fileBytes: 108))
    }

    /// A fixture cut in the middle of its data section: the error names the tensor the cut runs through, with
    /// its declared range and the bytes actually left. Checked directly and through the model loader.
    func testFixtureCutInsideData() throws {
        let source = try Fixtures.path("tiny-fp32") + "/model.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        let headerLength = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        let original = try SafeTensorsFile(path: source)
        let dataBytes = 500_001  // odd, so it falls inside a tensor
        let cut = original.tensors.values
            .map { (name: $0.name, begin: original.mapping.base.distance(to: $0.pointer) - 8 - headerLength, count: $0.byteCount) }
            .filter { $0.begin + $0.count > dataBytes }
            .min { $0.begin < $1.begin }!
        XCTAssertLessThan(cut.begin, dataBytes, "the cut should fall inside \(cut.name)")
        let expected = CheckpointError.tensorOutOfBounds(
            file: "model.safetensors", tensor: cut.name, begin: cut.begin, end: cut.begin + cut.count, dataBytes: dataBytes)

        let dir = try copyFixture("tiny-fp32")
        let path = dir.appendingPathComponent("model.safetensors")
        try data.prefix(8 + headerLength + dataBytes).write(to: path)
        XCTAssertEqual(checkpointError(try SafeTensorsFile(path: path.path)), expected)
        XCTAssertEqual(checkpointError(try self.loadModel(dir)), expected)
    }

    /// Cut exactly at a tensor boundary: the first tensor wholly missing is reported.
    func testFixtureCutAtTensorBoundary() throws {
        let source = try Fixtures.path("tiny-fp32") + "/model.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        let image = try SafeTensorsImage(contentsOf: source)
        let headerLength = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        let kept = image.tensors.prefix(3).reduce(0) { $0 + $1.bytes.count }
        let next = image.tensors[3]
        let path = try writeFile(data.prefix(8 + headerLength + kept), named: "model.safetensors")
        XCTAssertEqual(
            checkpointError(try SafeTensorsFile(path: path)),
            .tensorOutOfBounds(file: "model.safetensors", tensor: next.name, begin: kept, end: kept + next.bytes.count, dataBytes: kept))
    }

    // MARK: 2. Header length past the end

    func testHeaderLengthPastEndOfFile() throws {
        let header = Data("{}      ".utf8)
        // One byte more than the file holds, and the largest possible length (must not overflow).
        for declared in [UInt64(header.count + 1), UInt64(1 << 40), UInt64.max] {
            let path = try writeFile(SafeTensorsImage.raw(headerBytes: header, declaredLength: declared))
            XCTAssertEqual(
                checkpointError(try SafeTensorsFile(path: path)),
                .headerPastEnd(file: "bad.safetensors", headerBytes: declared, fileBytes: 16), "declared \(declared)")
        }
    }

    /// A header longer than the format's 100 MB limit is refused before it is parsed (sparse file: no disk used).
    func testHeaderOverSizeLimit() throws {
        let declared: UInt64 = 100_000_001
        let url = tmp.appendingPathComponent("huge.safetensors")
        try SafeTensorsImage.raw(headerBytes: Data("{".utf8), declaredLength: declared).write(to: url)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 8 + declared)
        try handle.close()
        guard case .invalidHeader(let file, let detail)? = checkpointError(try SafeTensorsFile(path: url.path)) else {
            return XCTFail("expected .invalidHeader")
        }
        XCTAssertEqual(file, "huge.safetensors")
        XCTAssertTrue(detail.contains("100000001"), detail)
    }

    // MARK: 3. Malformed headers

    func testHeaderThatIsNotAJSONObject() throws {
        let headers = ["", "not json at all", "[1, 2, 3]", "\"a string\"", "42", "{\"a\": }", "{} trailing", "\u{0}\u{0}\u{0}\u{0}"]
        for text in headers {
            let path = try writeFile(SafeTensorsImage.raw(headerBytes: Data(text.utf8), data: Data(count: 8)))
            guard case .invalidHeader(let file, let detail)? = checkpointError(try SafeTensorsFile(path: path)) else {
                XCTFail("header \(text.debugDescription): expected .invalidHeader"); continue
            }
            XCTAssertEqual(file, "bad.safetensors")
            XCTAssertTrue(detail.contains("not a JSON object"), detail)
        }
    }

    /// Each broken entry is reported as an invalid header naming the tensor and the field at fault.
    func testMalformedEntries() throws {
        let good = entry("F32", [2], 0, 8)
        func without(_ key: String) -> [String: Any] { var e = good; e[key] = nil; return e }
        func with(_ key: String, _ value: Any) -> [String: Any] { var e = good; e[key] = value; return e }
        let cases: [(String, Any, String)] = [
            ("entry is a number", 5, "not an object"),
            ("entry is a list", [1, 2], "not an object"),
            ("no dtype", without("dtype"), "dtype"),
            ("dtype not a string", with("dtype", 4), "dtype"),
            ("no shape", without("shape"), "shape"),
            ("shape is a string", with("shape", "2"), "shape"),
            ("shape is a number", with("shape", 2), "shape"),
            ("negative dimension", with("shape", [-2]), "shape"),
            ("fractional dimension", with("shape", [1.5]), "shape"),
            ("boolean dimension", with("shape", [true]), "shape"),
            ("dimension as a string", with("shape", ["2"]), "shape"),
            ("no data_offsets", without("data_offsets"), "data_offsets"),
            ("one offset", with("data_offsets", [0]), "data_offsets"),
            ("three offsets", with("data_offsets", [0, 8, 16]), "data_offsets"),
            ("offsets as strings", with("data_offsets", ["0", "8"]), "data_offsets"),
            ("fractional offset", with("data_offsets", [0.5, 8]), "data_offsets"),
            ("offsets not a list", with("data_offsets", "0:8"), "data_offsets"),
            ("offset beyond Int", with("data_offsets", [0, 1e30]), "data_offsets"),
        ]
        for (what, value, keyword) in cases {
            let path = try writeFile(SafeTensorsImage.raw(header: ["weight": value], data: Data(count: 8)))
            guard case .invalidHeader(let file, let detail)? = checkpointError(try SafeTensorsFile(path: path)) else {
                XCTFail("\(what): expected .invalidHeader"); continue
            }
            XCTAssertEqual(file, "bad.safetensors", what)
            XCTAssertTrue(detail.contains("'weight'") && detail.contains(keyword), "\(what): \(detail)")
        }
    }

    func testMetadataThatIsNotAnObject() throws {
        let path = try writeFile(SafeTensorsImage.raw(header: ["__metadata__": "pt", "w": entry("F32", [2], 0, 8)], data: Data(count: 8)))
        guard case .invalidHeader(_, let detail)? = checkpointError(try SafeTensorsFile(path: path)) else {
            return XCTFail("expected .invalidHeader")
        }
        XCTAssertTrue(detail.contains("__metadata__"), detail)
    }

    // MARK: 4. Byte ranges outside the data section

    func testTensorRangeOutsideDataSection() throws {
        // 16 data bytes; each range below is wrong in a different way.
        let ranges: [(Int, Int)] = [(8, 24), (16, 20), (-4, 12), (12, 8), (0, Int.max), (Int.min, 0)]
        for (begin, end) in ranges {
            let path = try writeFile(SafeTensorsImage.raw(header: ["w": entry("F32", [4], begin, end)], data: Data(count: 16)))
            XCTAssertEqual(
                checkpointError(try SafeTensorsFile(path: path)),
                .tensorOutOfBounds(file: "bad.safetensors", tensor: "w", begin: begin, end: end, dataBytes: 16), "[\(begin), \(end))")
        }
    }

    // MARK: 5. Overlapping tensors

    func testOverlappingTensors() throws {
        let cases: [(String, [String: Any])] = [
            ("partial overlap", ["a": entry("F32", [4], 0, 16), "b": entry("F32", [4], 8, 24)]),
            ("same range", ["a": entry("F32", [4], 0, 16), "b": entry("F32", [4], 0, 16)]),
            ("one inside the other", ["a": entry("F32", [8], 0, 32), "b": entry("F32", [2], 8, 16)]),
        ]
        for (what, header) in cases {
            let path = try writeFile(SafeTensorsImage.raw(header: header, data: Data(count: 32)))
            guard case .tensorsOverlap(let file, let first, let second)? = checkpointError(try SafeTensorsFile(path: path)) else {
                XCTFail("\(what): expected .tensorsOverlap"); continue
            }
            XCTAssertEqual(file, "bad.safetensors")
            XCTAssertEqual(Set([first, second]), ["a", "b"], what)
        }
        // Touching ranges do not overlap.
        let path = try writeFile(SafeTensorsImage.raw(
            header: ["a": entry("F32", [4], 0, 16), "b": entry("F32", [4], 16, 32)], data: Data(count: 32)))
        XCTAssertEqual(try SafeTensorsFile(path: path).tensors.count, 2)
    }

    /// In a real file: a norm pointed into the middle of lm_head's bytes.
    func testFixtureTensorPointingIntoAnother() throws {
        let source = try Fixtures.path("tiny-fp32") + "/model.safetensors"
        let image = try SafeTensorsImage(contentsOf: source)
        var header = image.header()
        header["model.norm.weight"] = entry("F32", [64], 1000, 1256)
        let path = try writeFile(try SafeTensorsImage.raw(header: header, data: image.tensors.reduce(into: Data()) { $0 += $1.bytes }))
        guard case .tensorsOverlap(_, let first, let second)? = checkpointError(try SafeTensorsFile(path: path)) else {
            return XCTFail("expected .tensorsOverlap")
        }
        XCTAssertEqual(Set([first, second]), [image.tensors[0].name, "model.norm.weight"])
    }

    // MARK: 6. Shape x dtype against the byte count

    func testShapeAndDTypeDisagreeWithByteCount() throws {
        let dir = try copyFixture("tiny-fp32")
        let path = dir.appendingPathComponent("model.safetensors")
        // One element too many for 256 bytes of F32.
        try rewrite(dir) { $0["model.norm.weight"].shape = [65] }
        XCTAssertEqual(
            checkpointError(try SafeTensorsFile(path: path.path)),
            .byteCountMismatch(file: "model.safetensors", tensor: "model.norm.weight", shape: [65], dtype: "F32", expected: 260, actual: 256))
        // Right shape, but BF16 elements need half the bytes.
        try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny-fp32") + "/model.safetensors")).write(to: path)
        try rewrite(dir) { $0["model.norm.weight"].dtype = "BF16" }
        XCTAssertEqual(
            checkpointError(try SafeTensorsFile(path: path.path)),
            .byteCountMismatch(file: "model.safetensors", tensor: "model.norm.weight", shape: [64], dtype: "BF16", expected: 128, actual: 256))
        XCTAssertEqual(
            checkpointError(try self.loadModel(dir)),
            .byteCountMismatch(file: "model.safetensors", tensor: "model.norm.weight", shape: [64], dtype: "BF16", expected: 128, actual: 256))
    }

    func testByteCountEdgeCases() throws {
        // A shape whose element count overflows Int is a mismatch, not a crash.
        var path = try writeFile(SafeTensorsImage.raw(header: ["w": entry("F32", [Int.max, 2], 0, 8)], data: Data(count: 8)))
        XCTAssertEqual(
            checkpointError(try SafeTensorsFile(path: path)),
            .byteCountMismatch(file: "bad.safetensors", tensor: "w", shape: [Int.max, 2], dtype: "F32", expected: Int.max, actual: 8))
        // A zero-size tensor must have an empty range ...
        path = try writeFile(SafeTensorsImage.raw(header: ["w": entry("F32", [0, 4], 0, 8)], data: Data(count: 8)))
        XCTAssertEqual(
            checkpointError(try SafeTensorsFile(path: path)),
            .byteCountMismatch(file: "bad.safetensors", tensor: "w", shape: [0, 4], dtype: "F32", expected: 0, actual: 8))
        // ... and with one it is fine.
        path = try writeFile(SafeTensorsImage.raw(header: ["w": entry("F32", [0, 4], 8, 8)], data: Data(count: 8)))
        XCTAssertEqual(try SafeTensorsFile(path: path).tensors["w"]?.byteCount, 0)
    }

    // MARK: 7. Unknown dtype

    func testUnknownDTypeNamesTensorAndDType() throws {
        for dtype in ["F4_WEIRD", "f32", ""] {
            let dir = try copyFixture("tiny-fp32")
            try rewrite(dir) { $0["model.layers.1.mlp.router.e_score_correction_bias"].dtype = dtype }
            let expected = CheckpointError.unknownDType(
                file: "model.safetensors", tensor: "model.layers.1.mlp.router.e_score_correction_bias", dtype: dtype)
            XCTAssertEqual(checkpointError(try SafeTensorsFile(path: dir.path + "/model.safetensors")), expected)
            XCTAssertEqual(checkpointError(try self.loadModel(dir)), expected)
            XCTAssertTrue(expected.description.contains("e_score_correction_bias") && expected.description.contains("'\(dtype)'"))
            try FileManager.default.removeItem(at: dir)
        }
    }

    /// Known dtypes in places that cannot use them: integer norms and integer weight matrices.
    func testDTypeThatCannotBeUsedThere() throws {
        let norm = "model.layers.0.self_attn.0.q_a_layernorm.weight"
        var dir = try copyFixture("tiny-fp32")
        try rewrite(dir) { $0[norm].dtype = "I32" }
        XCTAssertEqual(
            checkpointError(try self.loadModel(dir)),
            .unsupportedDType(tensor: norm, dtype: "I32", allowed: ["F32", "BF16", "F16", "F64"]))

        try FileManager.default.removeItem(at: dir)
        let weight = "model.layers.0.self_attn.0.q_a_proj.weight"
        dir = try copyFixture("tiny-fp32")
        try rewrite(dir) { $0[weight].dtype = "I32" }
        XCTAssertEqual(
            checkpointError(try self.loadModel(dir)),
            .unsupportedDType(tensor: weight, dtype: "I32", allowed: ["F32", "BF16", "F16", "F8_E4M3"]))
    }

    // MARK: Files that are not files

    func testMissingDirectoryAndFIFOAsWeightFile() throws {
        let missing = tmp.appendingPathComponent("nope.safetensors").path
        XCTAssertEqual(checkpointError(try SafeTensorsFile(path: missing)), .fileNotFound(path: missing))

        let directory = tmp.appendingPathComponent("dir.safetensors").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        XCTAssertEqual(checkpointError(try SafeTensorsFile(path: directory)), .cannotOpen(path: directory, reason: "not a regular file"))

        // Opening a FIFO for reading blocks until a writer appears; the loader must refuse it instead of hanging.
        let fifo = tmp.appendingPathComponent("fifo.safetensors").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let done = expectation(description: "FIFO refused")
        let result = ResultBox()
        Thread.detachNewThread {
            do { _ = try SafeTensorsFile(path: fifo) } catch { result.error = error }
            done.fulfill()
        }
        wait(for: [done], timeout: 10)
        XCTAssertEqual(result.error as? CheckpointError, .cannotOpen(path: fifo, reason: "not a regular file"))
    }

    /// A directory where model.safetensors should be.
    func testDirectoryNamedModelSafetensors() throws {
        let dir = tmp.appendingPathComponent("ckpt")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("model.safetensors"), withIntermediateDirectories: true)
        try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny-fp32") + "/config.json")).write(to: dir.appendingPathComponent("config.json"))
        let path = dir.appendingPathComponent("model.safetensors").path
        XCTAssertEqual(checkpointError(try self.loadModel(dir)), .cannotOpen(path: path, reason: "not a regular file"))
    }

    // MARK: 8-10. Weights against the config

    func testTensorTheConfigNeedsIsMissing() throws {
        for name in ["model.layers.1.mlp.experts.7.down_proj.weight", "lm_head.weight", "model.norm.weight",
                     "model.layers.0.mlp.router.e_score_correction_bias"] {
            let dir = try copyFixture("tiny-fp32")
            try rewrite(dir) { $0.remove(name) }
            XCTAssertEqual(checkpointError(try self.loadModel(dir)), .missingTensor(name: name))
            try FileManager.default.removeItem(at: dir)
        }
    }

    /// Same byte count, wrong shape: the file is valid, the model is not.
    func testTensorWithWrongShape() throws {
        let weight = "model.layers.0.self_attn.0.q_a_proj.weight"
        var dir = try copyFixture("tiny-fp32")
        try rewrite(dir) { $0[weight].shape = [64, 32] }  // transposed
        guard case .wrongShape(let tensor, let expected, let actual, let because)? = checkpointError(try self.loadModel(dir)) else {
            return XCTFail("expected .wrongShape")
        }
        XCTAssertEqual(tensor, weight)
        XCTAssertEqual(expected, [32, 64])
        XCTAssertEqual(actual, [64, 32])
        XCTAssertTrue(because.contains("q_lora_rank=32"), because)

        try FileManager.default.removeItem(at: dir)
        let norm = "model.layers.1.self_attn.1.kv_a_layernorm.weight"
        dir = try copyFixture("tiny-fp32")
        try rewrite(dir) { $0[norm].shape = [4, 4] }
        guard case .wrongShape(norm, [16], [4, 4], _)? = checkpointError(try self.loadModel(dir)) else {
            return XCTFail("expected .wrongShape of \(norm)")
        }
    }

    /// A config.json edited so it no longer describes the weights: the error names the first tensor that
    /// disagrees and the config fields behind its expected shape.
    func testConfigThatContradictsTheWeights() throws {
        struct Case {
            let field: String
            let value: Any
            let tensor: String
            let expected: [Int]
            let actual: [Int]
            let because: String
        }
        let cases = [
            Case(field: "hidden_size", value: 32, tensor: "model.embed_tokens.weight", expected: [320, 32], actual: [320, 64], because: "hidden_size=32"),
            Case(field: "vocab_size", value: 321, tensor: "model.embed_tokens.weight", expected: [321, 64], actual: [320, 64], because: "vocab_size=321"),
            Case(field: "kv_lora_rank", value: 24, tensor: "model.layers.0.self_attn.0.kv_a_proj_with_mqa.weight",
                 expected: [32, 64], actual: [24, 64], because: "kv_lora_rank=24"),
            Case(field: "q_lora_rank", value: 16, tensor: "model.layers.0.self_attn.0.q_a_proj.weight",
                 expected: [16, 64], actual: [32, 64], because: "q_lora_rank=16"),
            Case(field: "ffn_hidden_size", value: 128, tensor: "model.layers.0.mlps.0.gate_proj.weight",
                 expected: [128, 64], actual: [96, 64], because: "ffn_hidden_size=128"),
            Case(field: "expert_ffn_hidden_size", value: 16, tensor: "model.layers.0.mlp.experts.0.gate_proj.weight",
                 expected: [16, 64], actual: [32, 64], because: "expert_ffn_hidden_size=16"),
            Case(field: "n_routed_experts", value: 6, tensor: "model.layers.0.mlp.router.classifier.weight",
                 expected: [10, 64], actual: [12, 64], because: "n_routed_experts=6"),
        ]
        for c in cases {
            let dir = try copyFixture("tiny-fp32")
            try editConfig(dir) { $0[c.field] = c.value }
            guard case .wrongShape(let tensor, let expected, let actual, let because)? = checkpointError(try self.loadModel(dir)) else {
                XCTFail("\(c.field)=\(c.value): expected .wrongShape"); continue
            }
            XCTAssertEqual(tensor, c.tensor, c.field)
            XCTAssertEqual(expected, c.expected, c.field)
            XCTAssertEqual(actual, c.actual, c.field)
            XCTAssertTrue(because.contains(c.because), "\(c.field): \(because)")
            try FileManager.default.removeItem(at: dir)
        }
        // More layers than the file has: the first tensor of the extra layer is missing.
        let dir = try copyFixture("tiny-fp32")
        try editConfig(dir) { $0["num_layers"] = 3 }
        XCTAssertEqual(checkpointError(try self.loadModel(dir)), .missingTensor(name: "model.layers.2.self_attn.0.q_a_proj.weight"))
    }

    // MARK: 11. Sharded checkpoints

    func testShardedCopyLoads() throws {
        let dir = try copyFixture("tiny-bf16-sharded")
        let checkpoint = try Checkpoint(directory: dir.path)
        XCTAssertEqual(checkpoint.files.count, 16)
        XCTAssertNoThrow(try LongCatModel(checkpoint: checkpoint))
    }

    func editIndex(_ dir: URL, _ change: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("model.safetensors.index.json")
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        change(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
    }

    func testIndexMapsTensorToShardThatLacksIt() throws {
        let dir = try copyFixture("tiny-bf16-sharded")
        let tensor = "model.layers.0.mlp.experts.0.gate_proj.weight"
        let wrongShard = "model-00002-of-00016.safetensors"
        try editIndex(dir) { json in
            var map = json["weight_map"] as! [String: Any]
            XCTAssertNotEqual(map[tensor] as? String, wrongShard)
            map[tensor] = wrongShard
            json["weight_map"] = map
        }
        guard case .invalidIndex(let file, let detail)? = checkpointError(try Checkpoint(directory: dir.path)) else {
            return XCTFail("expected .invalidIndex")
        }
        XCTAssertEqual(file, "model.safetensors.index.json")
        XCTAssertTrue(detail.contains(tensor) && detail.contains(wrongShard), detail)
    }

    func testIndexThatIsNotValid() throws {
        let cases: [(String, Data)] = [
            ("not JSON", Data("{\"weight_map\": {".utf8)),
            ("a list", Data("[]".utf8)),
            ("empty file", Data()),
            ("no weight_map", Data("{\"metadata\": {}}".utf8)),
            ("empty weight_map", Data("{\"weight_map\": {}}".utf8)),
            ("weight_map a list", Data("{\"weight_map\": [\"model-00001-of-00016.safetensors\"]}".utf8)),
            ("shard not a string", Data("{\"weight_map\": {\"lm_head.weight\": 1}}".utf8)),
            ("shard outside the directory", Data("{\"weight_map\": {\"lm_head.weight\": \"../model.safetensors\"}}".utf8)),
            ("empty shard name", Data("{\"weight_map\": {\"lm_head.weight\": \"\"}}".utf8)),
        ]
        for (what, data) in cases {
            let dir = try copyFixture("tiny-bf16-sharded")
            try data.write(to: dir.appendingPathComponent("model.safetensors.index.json"))
            guard case .invalidIndex(let file, _)? = checkpointError(try Checkpoint(directory: dir.path)) else {
                XCTFail("\(what): expected .invalidIndex"); continue
            }
            XCTAssertEqual(file, "model.safetensors.index.json", what)
            try FileManager.default.removeItem(at: dir)
        }
    }

    func testShardListedInIndexIsMissing() throws {
        let dir = try copyFixture("tiny-bf16-sharded")
        let shard = dir.appendingPathComponent("model-00005-of-00016.safetensors")
        try FileManager.default.removeItem(at: shard)
        XCTAssertEqual(checkpointError(try Checkpoint(directory: dir.path)), .fileNotFound(path: shard.path))
    }

    /// Damage inside one shard is reported with that shard's name.
    func testTruncatedShardIsNamed() throws {
        let dir = try copyFixture("tiny-bf16-sharded")
        let shard = dir.appendingPathComponent("model-00003-of-00016.safetensors")
        let data = try Data(contentsOf: shard)
        try data.prefix(data.count - 1).write(to: shard)
        guard case .tensorOutOfBounds(let file, _, _, let end, let dataBytes)? = checkpointError(try Checkpoint(directory: dir.path)) else {
            return XCTFail("expected .tensorOutOfBounds")
        }
        XCTAssertEqual(file, "model-00003-of-00016.safetensors")
        XCTAssertEqual(end, dataBytes + 1)
    }

    /// Without an index, the same tensor in two files is ambiguous; with an index, the index decides.
    func testDuplicateTensorAcrossShards() throws {
        let dir = tmp.appendingPathComponent("dup")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny-fp32") + "/config.json")).write(to: dir.appendingPathComponent("config.json"))
        let all = try SafeTensorsImage(contentsOf: Fixtures.path("tiny-fp32") + "/model.safetensors")
        try all.write(to: dir.appendingPathComponent("a.safetensors"))
        try SafeTensorsImage(tensors: [all["model.norm.weight"]]).write(to: dir.appendingPathComponent("b.safetensors"))
        XCTAssertEqual(
            checkpointError(try Checkpoint(directory: dir.path)),
            .duplicateTensor(name: "model.norm.weight", files: ["a.safetensors", "b.safetensors"]))

        // A zeroed copy of lm_head added to the last shard; the index still points at the first.
        let sharded = try copyFixture("tiny-bf16-sharded")
        let firstShard = sharded.appendingPathComponent("model-00001-of-00016.safetensors")
        var decoy = try SafeTensorsImage(contentsOf: firstShard.path)["lm_head.weight"]
        decoy.bytes = Data(count: decoy.bytes.count)
        try rewrite(sharded, "model-00016-of-00016.safetensors") { image in
            XCTAssertFalse(image.has("lm_head.weight"))
            image.tensors.append(decoy)
        }
        let checkpoint = try Checkpoint(directory: sharded.path)
        XCTAssertEqual(checkpoint.tensors["lm_head.weight"]?.file.path, firstShard.path)
    }

    // MARK: 12. FP8 block scales

    func testFP8ScaleMissing() throws {
        for weight in ["model.layers.0.self_attn.0.q_a_proj.weight", "model.layers.1.mlp.experts.15.down_proj.weight"] {
            let dir = try copyFixture("small-fp8")
            try rewrite(dir) { $0.remove(weight + "_scale_inv") }
            XCTAssertEqual(checkpointError(try self.loadModel(dir)), .missingTensor(name: weight + "_scale_inv"))
            try FileManager.default.removeItem(at: dir)
        }
    }

    func testFP8ScaleWithWrongShape() throws {
        // q_a_proj is [128, 256]: one row of two 128x128 blocks. Same bytes, transposed.
        let scale = "model.layers.0.self_attn.0.q_a_proj.weight_scale_inv"
        let dir = try copyFixture("small-fp8")
        try rewrite(dir) { $0[scale].shape = [2, 1] }
        guard case .wrongShape(let tensor, let expected, let actual, let because)? = checkpointError(try self.loadModel(dir)) else {
            return XCTFail("expected .wrongShape")
        }
        XCTAssertEqual(tensor, scale)
        XCTAssertEqual(expected, [1, 2])
        XCTAssertEqual(actual, [2, 1])
        XCTAssertTrue(because.contains("128x128"), because)
    }

    func testFP8ScaleWithWrongDType() throws {
        let scale = "model.layers.0.self_attn.0.kv_b_proj.weight_scale_inv"
        let dir = try copyFixture("small-fp8")
        try rewrite(dir) { image in
            XCTAssertEqual(image[scale].shape, [2, 1])
            image[scale].dtype = "BF16"
            image[scale].bytes = Data([0x80, 0x3f, 0x80, 0x3f])  // 1.0, 1.0
        }
        XCTAssertEqual(checkpointError(try self.loadModel(dir)), .unsupportedDType(tensor: scale, dtype: "BF16", allowed: ["F32"]))
    }

    /// A block size in quantization_config that the stored scales do not match.
    func testFP8BlockSizeContradictsScales() throws {
        let dir = try copyFixture("small-fp8")
        try editConfig(dir) { json in
            var q = json["quantization_config"] as! [String: Any]
            q["weight_block_size"] = [64, 64]
            json["quantization_config"] = q
        }
        guard case .wrongShape(let tensor, let expected, let actual, _)? = checkpointError(try self.loadModel(dir)) else {
            return XCTFail("expected .wrongShape")
        }
        XCTAssertEqual(tensor, "model.layers.0.self_attn.0.q_a_proj.weight_scale_inv")
        XCTAssertEqual(expected, [2, 4])
        XCTAssertEqual(actual, [1, 2])
    }

    // MARK: 13. Missing weights or config

    func testDirectoryWithConfigButNoWeights() throws {
        let dir = tmp.appendingPathComponent("config-only")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny-fp32") + "/config.json")).write(to: dir.appendingPathComponent("config.json"))
        try Data("not weights".utf8).write(to: dir.appendingPathComponent("model.bin"))
        XCTAssertEqual(checkpointError(try Checkpoint(directory: dir.path)), .noWeights(directory: dir.path))
    }

    /// config.json is read first, so a directory without one (empty, missing, or weights only) is a config error.
    func testMissingConfig() throws {
        let weightsOnly = try copyFixture("tiny-fp32")
        try FileManager.default.removeItem(at: weightsOnly.appendingPathComponent("config.json"))
        let empty = tmp.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let missing = tmp.appendingPathComponent("does-not-exist")
        for dir in [weightsOnly, empty, missing] {
            XCTAssertThrowsError(try Checkpoint(directory: dir.path)) { error in
                guard case .unreadable(let path, _)? = error as? ConfigError else { return XCTFail("\(dir.path): got \(error)") }
                XCTAssertEqual(path, dir.appendingPathComponent("config.json").path)
            }
        }
    }

    func testConfigThatIsNotJSON() throws {
        let dir = try copyFixture("tiny-fp32")
        try Data("{\"hidden_size\": 64,".utf8).write(to: dir.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try self.loadModel(dir)) { error in
            XCTAssertEqual(error as? ConfigError, .unreadable(path: dir.appendingPathComponent("config.json").path, reason: "not valid JSON"))
        }
    }

    /// A config that is readable JSON but invalid stops the load before any weight is mapped.
    func testInvalidConfigInCheckpoint() throws {
        let dir = try copyFixture("tiny-fp32")
        try editConfig(dir) { $0["moe_topk"] = 13 }
        XCTAssertThrowsError(try self.loadModel(dir)) { error in
            guard case .invalidValue(field: "moe_topk", _)? = error as? ConfigError else { return XCTFail("got \(error)") }
        }
    }
}

/// Carries the FIFO test's result back from its thread.
private final class ResultBox: @unchecked Sendable {
    var error: Error?
}
