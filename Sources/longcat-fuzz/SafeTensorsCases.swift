import Foundation
import LongCatModel
import LongCatTensor

/// A safetensors file taken apart: its tensors (name, dtype, shape, bytes) in file order and its metadata.
struct SafeTensorsImage {
    struct Tensor {
        var name: String
        var dtype: String
        var shape: [Int]
        var bytes: Data
    }

    var tensors: [Tensor]
    var metadata: FJ?

    init(_ data: Data) throws {
        guard data.count >= 8 else { throw FuzzError("fixture safetensors file is too short") }
        let length = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        guard case .object(let pairs) = try FJ.parse(data.subdata(in: 8..<8 + length)) else {
            throw FuzzError("fixture safetensors header is not an object")
        }
        let start = 8 + length
        var tensors: [(Int, Tensor)] = []
        for (name, entry) in pairs {
            if name == "__metadata__" {
                metadata = entry
                continue
            }
            guard case .string(let dtype)? = entry["dtype"], case .array(let shapeItems)? = entry["shape"],
                  case .array(let offsets)? = entry["data_offsets"], offsets.count == 2,
                  case .int(let begin) = offsets[0], case .int(let end) = offsets[1]
            else { throw FuzzError("fixture tensor \(name) is malformed") }
            let shape = shapeItems.compactMap { item -> Int? in
                if case .int(let i) = item { return i }
                return nil
            }
            tensors.append((begin, Tensor(name: name, dtype: dtype, shape: shape, bytes: data.subdata(in: start + begin..<start + end))))
        }
        self.tensors = tensors.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The header a writer produces: contiguous ranges in list order.
    func header() -> FJ {
        var pairs: [(key: String, value: FJ)] = []
        if let metadata { pairs.append(("__metadata__", metadata)) }
        var offset = 0
        for t in tensors {
            pairs.append((t.name, .object([
                ("dtype", .string(t.dtype)), ("shape", .array(t.shape.map(FJ.int))),
                ("data_offsets", .array([.int(offset), .int(offset + t.bytes.count)])),
            ])))
            offset += t.bytes.count
        }
        return .object(pairs)
    }

    var dataSection: Data { tensors.reduce(into: Data()) { $0 += $1.bytes } }

    /// A file from header bytes (padded with `padding` spaces) and a data section; `declaredLength` overrides the
    /// 8-byte length prefix.
    static func file(header: Data, padding: Int = 0, data: Data, declaredLength: UInt64? = nil) -> Data {
        let headerBytes = header + Data(repeating: 0x20, count: padding)
        var length = (declaredLength ?? UInt64(headerBytes.count)).littleEndian
        var out = Data(bytes: &length, count: 8)
        out += headerBytes
        out += data
        return out
    }
}

/// safetensors (+ config): header length absurd or past the end, offsets past the end, overlapping, reversed,
/// shapes that overflow or go negative, unknown dtypes, truncation, invalid or non-UTF-8 header; and files that
/// stay valid but change dtypes, alignment, order and values, so that the model loads and the kernels read them.
enum SafeTensorsCases {
    static func make(_ c: inout FuzzCase, _ corpus: Corpus, _ rng: inout FuzzRandom) {
        let base = corpus.models[rng.pick([0, 0, 0, 0, 1, 1, 2, 2])]
        c.mutations.append(base.name)
        var image = base.image
        var config = base.config
        var file: Data
        switch rng.below(10) {
        case 0, 1, 2:
            // Stays loadable: the model runs on the rewritten tensors.
            for _ in 0..<rng.int(1...3) { c.mutations.append(validChange(&image, &rng)) }
            file = layout(image, &rng, &c.mutations)
        case 3:
            file = layout(image, &rng, &c.mutations)
            let headerLength = Int(file.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
            let declared: UInt64 = rng.pick([
                0, 1, 2, 7, UInt64(headerLength - 1), UInt64(headerLength + 1), UInt64(file.count - 8), UInt64(file.count - 7),
                UInt64(file.count), 1 << 32, 100_000_001, 1 << 63, UInt64.max, UInt64.max - 7, UInt64(Int.max),
            ])
            file.replaceSubrange(0..<8, with: withUnsafeBytes(of: declared.littleEndian) { Data($0) })
            c.mutations.append("header length field = \(declared) (really \(headerLength), file \(file.count) bytes)")
        case 4:
            file = layout(image, &rng, &c.mutations)
            let cut = rng.chance(0.3) ? rng.below(min(file.count, 200)) : rng.below(file.count)
            file = file.prefix(cut)
            c.mutations.append("truncated to \(cut) of \(file.count) bytes")
        case 5, 6, 7:
            var header = image.header()
            for _ in 0..<rng.int(1...3) { c.mutations.append(headerChange(&header, image, &rng)) }
            file = SafeTensorsImage.file(header: header.data, data: image.dataSection)
        case 8:
            var header = image.header().data
            c.mutations.append(ByteDamage.apply(&header, &rng))
            file = SafeTensorsImage.file(header: header, data: image.dataSection)
        default:
            let header: Data = rng.pick([
                Data("[]".utf8), Data("null".utf8), Data("\"model\"".utf8), Data("{\"a\":".utf8), Data([0xFF, 0xFE, 0x7B, 0x7D]),
                Data("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}".utf8),
                Data(String(repeating: "{\"a\":", count: 3_000).utf8), Data(String(repeating: "[", count: 100_000).utf8),
                Data(), Data("{}".utf8), Data("{\"__metadata__\":[1,2]}".utf8), Data("{\"__metadata__\":{\"format\":{\"x\":[1]}}}".utf8),
            ])
            file = SafeTensorsImage.file(header: header, data: rng.chance(0.5) ? image.dataSection : Data())
            c.mutations.append("header replaced by \(String(decoding: header.prefix(60), as: UTF8.self).debugDescription) (\(header.count) bytes)")
        }
        if rng.chance(0.15) {
            let change: (String, FJ) = rng.pick([
                ("tie_word_embeddings", .bool(true)), ("dtype", .string("bfloat16")),
                ("quantization_config", .object([("quant_method", .string("fp8")), ("weight_block_size", .array([.int(16), .int(16)]))])),
                ("quantization_config", .object([("quant_method", .string("longcat")), ("format", .string("q8"))])),
                ("zero_expert_num", .int(0)), ("max_position_embeddings", .int(4)),
            ])
            config[change.0] = change.1
            c.mutations.append("config \(change.0) = \(change.1.brief)")
        }
        let configData = config.data
        let weights = file
        let tokenCount = rng.int(1...4)
        let tokens = (0..<tokenCount).map { _ in rng.below(base.vocab) }
        // Quantizing at load time runs the q8/q4 block quantizer over the (possibly NaN or infinite) weights.
        let quantize: WeightMatrix.Quantization? = base.name == "tiny-fp32" && rng.chance(0.25) ? rng.pick([.q8, .q4]) : nil
        if let quantize { c.mutations.append("loaded with --quantize \(quantize.rawValue)") }
        c.execute = { dir in
            try configData.write(to: dir, "config.json")
            try weights.write(to: dir, "model.safetensors")
            let direct = try SafeTensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
            for view in direct.tensors.values.sorted(by: { $0.name < $1.name }) where [.f32, .bf16, .f16, .f64].contains(view.dtype) {
                _ = try view.floats()
            }
            let model = try LongCatModel(directory: dir.path, quantize: quantize)
            let cache = KVCache(config: model.config)
            let logits = try model.forward(tokens: tokens, cache: cache)
            // One decode step on top of the prefill, as generation does.
            let next = try model.forward(tokens: [tokens[0]], cache: cache)
            return "loaded; prefill \(tokens.count) + 1 decode step, \(logits.count + next.count) logits"
        }
    }

    /// Bytes of a tensor as another float dtype (the shape stays, so the file is still consistent).
    static func convert(_ t: SafeTensorsImage.Tensor, to dtype: DType) -> Data? {
        guard t.dtype == "F32" else { return nil }
        let floats = t.bytes.withUnsafeBytes { raw in (0..<raw.count / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
        var out = Data()
        switch dtype {
        case .bf16: for f in floats { withUnsafeBytes(of: UInt16(f.bitPattern >> 16).littleEndian) { out += $0 } }
        case .f16: for f in floats { withUnsafeBytes(of: Float16(f).bitPattern.littleEndian) { out += $0 } }
        case .f64: for f in floats { withUnsafeBytes(of: Double(f).bitPattern.littleEndian) { out += $0 } }
        default: return nil
        }
        return out
    }

    /// A change that keeps the file consistent with the config: values, dtypes, order.
    static func validChange(_ image: inout SafeTensorsImage, _ rng: inout FuzzRandom) -> String {
        let i = rng.below(image.tensors.count)
        let name = image.tensors[i].name
        switch rng.below(4) {
        case 0:
            let dtype: DType = rng.pick([.bf16, .f16, .f64])
            guard let bytes = convert(image.tensors[i], to: dtype) else { return "nothing" }
            image.tensors[i].bytes = bytes
            image.tensors[i].dtype = dtype.rawValue
            return "\(name) stored as \(dtype.rawValue)"
        case 1:
            let values: [Float] = [.nan, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude, -0.0, 1e30]
            var bytes = image.tensors[i].bytes
            let width = image.tensors[i].dtype == "F32" ? 4 : 2
            for _ in 0..<rng.int(1...50) where bytes.count >= width {
                let at = rng.below(bytes.count / width) * width
                let v = rng.pick(values)
                if width == 4 {
                    withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.replaceSubrange(at..<at + 4, with: $0) }
                } else {
                    bytes.replaceSubrange(at..<at + 2, with: [UInt8(truncatingIfNeeded: rng.next()), UInt8(truncatingIfNeeded: rng.next())])
                }
            }
            image.tensors[i].bytes = bytes
            return "\(name): values set to NaN/Inf/extremes"
        case 2:
            image.tensors.shuffle(using: &rng)
            return "tensors reordered"
        default:
            // The tensor moves to the end of the data section, so a read past its end runs off the file.
            let t = image.tensors.remove(at: i)
            image.tensors.append(t)
            return "\(name) moved last"
        }
    }

    /// Serializes the image; sometimes with odd header padding (unaligned data) or with the file ending on a page
    /// boundary, so a read past the last tensor touches an unmapped page.
    static func layout(_ image: SafeTensorsImage, _ rng: inout FuzzRandom, _ mutations: inout [String]) -> Data {
        let header = image.header().data
        let data = image.dataSection
        var padding = 0
        switch rng.below(4) {
        case 0:
            padding = rng.int(1...7)
            mutations.append("header padded by \(padding) (data section unaligned)")
        case 1:
            let size = 8 + header.count + data.count
            padding = (4096 - size % 4096) % 4096
            mutations.append("file ends on a page boundary")
        default: break
        }
        return SafeTensorsImage.file(header: header, padding: padding, data: data)
    }

    /// A change to one or more header entries (the data section stays as it was).
    static func headerChange(_ header: inout FJ, _ image: SafeTensorsImage, _ rng: inout FuzzRandom) -> String {
        let names = image.tensors.map(\.name)
        let name = rng.pick(names)
        guard var entry = header[name] else { return "nothing" }
        let dataBytes = image.tensors.reduce(0) { $0 + $1.bytes.count }
        var begin = 0, end = 0
        if case .array(let o)? = entry["data_offsets"], case .int(let b) = o[0], case .int(let e) = o[1] { (begin, end) = (b, e) }
        var what: String
        switch rng.below(12) {
        case 0:
            let offsets: [Int] = rng.pick([
                [dataBytes, dataBytes + (end - begin)], [begin, dataBytes + 1], [end, begin], [-4, end - begin - 4],
                [begin, Int.max], [Int.max - 3, Int.max], [Int.min, begin], [begin + 1, end + 1], [begin, end - 1],
            ])
            entry["data_offsets"] = .array(offsets.map(FJ.int))
            what = "data_offsets = \(offsets)"
        case 1:
            // Overlap: the range of another tensor (or part of it).
            let other = rng.pick(names)
            if case .array(let o)? = header[other]?["data_offsets"], case .int(let b) = o[0] {
                entry["data_offsets"] = .array([.int(b + 4), .int(b + 4 + (end - begin))])
            }
            what = "range overlaps \(other)"
        case 2:
            let offsets: FJ = rng.pick([
                .array([.double(Double(begin) + 0.5), .int(end)]), .array([.string("\(begin)"), .int(end)]), .array([.int(begin)]),
                .array([.int(begin), .int(end), .int(end)]), .raw("[\(begin), 18446744073709551616]"), .array([.raw("1e400"), .int(end)]),
                .null, .string("0-4"), .array([.bool(false), .int(end)]),
            ])
            entry["data_offsets"] = offsets
            what = "data_offsets = \(offsets.brief)"
        case 3:
            let shape: [Int] = rng.pick([
                [-1, -(end - begin) / 4], [1 << 32, 1 << 32], [1 << 62, 4], [Int.max, 2], [0, 1 << 62, 1 << 62], [Int.max, Int.max],
                [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3],
                [], [0], [1, (end - begin) / 4], [(end - begin) / 4, 1], [-2, -((end - begin) / 8)],
            ])
            entry["shape"] = .array(shape.map(FJ.int))
            what = "shape = \(shape)"
        case 4:
            let shape: FJ = rng.pick([
                .array([.double(1.5)]), .array([.string("64")]), .string("[64]"), .null, .array([.raw("1e400")]),
                .raw("[18446744073709551615, 0]"), .array([.array([.int(64)])]), .array([.bool(true), .int(64)]),
            ])
            entry["shape"] = shape
            what = "shape = \(shape.brief)"
        case 5:
            if case .array(let s)? = entry["shape"], s.count == 2 {
                entry["shape"] = .array([s[1], s[0]])
                what = "shape transposed"
            } else {
                entry["shape"] = .array([.int(1)] + (entry["shape"].flatMap { if case .array(let a) = $0 { return a } else { return nil } } ?? []))
                what = "shape gains a leading 1"
            }
        case 6:
            let dtype: FJ = rng.pick([
                .string("F128"), .string(""), .string("f32"), .string("BOOL"), .string("I4"), .string("F8_E5M2"), .string("U64"),
                .string("BF16"), .string("F16"), .string("F64"), .string("I8"), .string("U8"), .string("F8_E4M3"), .int(5), .null,
                .string("F32\u{0}"), .array([.string("F32")]),
            ])
            entry["dtype"] = dtype
            what = "dtype = \(dtype.brief)"
        case 7:
            header[name] = nil
            return "\(name) removed"
        case 8:
            let replacement = Weird.value(&rng)
            header[name] = replacement
            return "\(name) entry = \(replacement.brief)"
        case 9:
            header["__metadata__"] = Weird.value(&rng)
            return "__metadata__ = \(header["__metadata__"]!.brief)"
        case 10:
            let newName = rng.pick([name + ".x", name.uppercased(), "", "\u{0}", String(repeating: "n", count: 5_000), "__metadata__"])
            header[name] = nil
            header[newName] = entry
            return "\(name) renamed \(newName.prefix(40).debugDescription)"
        default:
            return Weird.mutateAnywhere(&header, &rng)
        }
        header[name] = entry
        return "\(name): \(what)"
    }
}
