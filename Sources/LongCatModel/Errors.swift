/// Everything that can be wrong with a checkpoint on disk, each naming the file, tensor or field at fault.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case cannotOpen(path: String, reason: String)
    case truncated(file: String, detail: String)
    case headerPastEnd(file: String, headerBytes: UInt64, fileBytes: Int)
    case invalidHeader(file: String, detail: String)
    case unknownDType(file: String, tensor: String, dtype: String)
    case tensorOutOfBounds(file: String, tensor: String, begin: Int, end: Int, dataBytes: Int)
    case tensorsOverlap(file: String, first: String, second: String)
    case byteCountMismatch(file: String, tensor: String, shape: [Int], dtype: String, expected: Int, actual: Int)
    case invalidIndex(file: String, detail: String)
    case duplicateTensor(name: String, files: [String])
    case missingTensor(name: String)
    case wrongShape(tensor: String, expected: [Int], actual: [Int], because: String)
    case unsupportedDType(tensor: String, dtype: String, allowed: [String])
    case invalidQuantization(tensor: String, detail: String)
    case noWeights(directory: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "file not found: \(path)"
        case .cannotOpen(let path, let reason):
            return "cannot open \(path): \(reason)"
        case .truncated(let file, let detail):
            return "\(file): file is truncated (\(detail))"
        case .headerPastEnd(let file, let headerBytes, let fileBytes):
            return "\(file): header length \(headerBytes) runs past the end of the \(fileBytes)-byte file"
        case .invalidHeader(let file, let detail):
            return "\(file): invalid safetensors header: \(detail)"
        case .unknownDType(let file, let tensor, let dtype):
            return "\(file): tensor '\(tensor)' has unknown dtype '\(dtype)'"
        case .tensorOutOfBounds(let file, let tensor, let begin, let end, let dataBytes):
            return "\(file): tensor '\(tensor)' byte range [\(begin), \(end)) lies outside the \(dataBytes)-byte data section"
        case .tensorsOverlap(let file, let first, let second):
            return "\(file): tensors '\(first)' and '\(second)' overlap"
        case .byteCountMismatch(let file, let tensor, let shape, let dtype, let expected, let actual):
            return "\(file): tensor '\(tensor)' of shape \(shape) and dtype \(dtype) needs \(expected) bytes but its range holds \(actual)"
        case .invalidIndex(let file, let detail):
            return "\(file): invalid index: \(detail)"
        case .duplicateTensor(let name, let files):
            return "tensor '\(name)' appears in more than one file: \(files.joined(separator: ", "))"
        case .missingTensor(let name):
            return "the checkpoint lacks tensor '\(name)', which the config requires"
        case .wrongShape(let tensor, let expected, let actual, let because):
            return "tensor '\(tensor)' has shape \(actual) but the config implies \(expected) (\(because))"
        case .unsupportedDType(let tensor, let dtype, let allowed):
            return "tensor '\(tensor)' has dtype \(dtype); supported here: \(allowed.joined(separator: ", "))"
        case .invalidQuantization(let tensor, let detail):
            return "tensor '\(tensor)' cannot be read as a block-quantized matrix: \(detail)"
        case .noWeights(let directory):
            return "\(directory): no model.safetensors, model.safetensors.index.json or *.safetensors file"
        }
    }
}

/// A config.json that is missing a field, has a field of the wrong type, or contradicts itself.
public enum ConfigError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case missingField(String)
    case wrongType(field: String, expected: String)
    case invalidValue(field: String, reason: String)
    case unsupportedArchitecture(found: String, supported: [String])
    case tooLarge(detail: String)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let found, let supported):
            return "config: architecture \(found) is not supported; this engine runs \(supported.joined(separator: ", "))"
        case .tooLarge(let detail):
            return "config: describes a model too large to address (\(detail); at most \(String(format: "%.3g", ModelConfig.maxParameters)) parameters): check num_layers, hidden_size, vocab_size and the expert counts"
        case .unreadable(let path, let reason): return "cannot read config \(path): \(reason)"
        case .missingField(let field): return "config: missing required field '\(field)'"
        case .wrongType(let field, let expected): return "config: field '\(field)' must be \(expected)"
        case .invalidValue(let field, let reason): return "config: field '\(field)' \(reason)"
        }
    }
}
