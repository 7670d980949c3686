#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bounds on what one render may do. jinja2 bounds only `range` (its sandbox's MAX_RANGE); without more, a broken or
/// hostile template could run for hours (nested loops, a macro that calls itself twice), build strings and lists
/// past memory (`'x' * 10**9`, a string doubled in a loop), or nest values so deep that printing or freeing them
/// overflows the stack. Each bound fails the render with a `.runtime` error that says which one was hit; real chat
/// templates stay far below all of them.
enum Limits {
    /// Loop iterations of one render, all loops together.
    static let maximumIterations = 1_000_000
    /// Work units of one render: one per statement or expression evaluated, per value visited when printing,
    /// comparing or serializing, and per 256 bytes of text copied.
    static let maximumWork = 5_000_000
    /// Bytes (UTF-8) of any one string, the rendered output included.
    static let maximumStringBytes = 32 << 20
    /// Elements of any one list, tuple or dict.
    static let maximumElements = 4 << 20
    /// Nesting of lists, tuples and dicts (as deep as `JSONValue.parse` accepts).
    static let maximumDepth = 512
    /// Width and precision of one `%` conversion.
    static let maximumFormatWidth = 1_000_000
    /// Spaces of one `tojson` indent level.
    static let maximumIndent = 1_000

    static func checkString(bytes: Int) throws {
        guard bytes <= maximumStringBytes else {
            throw TemplateError.runtime("template built a string of more than \(maximumStringBytes) bytes")
        }
    }

    /// A string of `count` copies of a `bytes`-byte piece, or the sum of pieces: checked before it is built.
    static func checkString(_ bytes: Int, times count: Int) throws {
        let (total, overflow) = bytes.multipliedReportingOverflow(by: count)
        guard !overflow else { return try checkString(bytes: Int.max) }
        try checkString(bytes: total)
        RenderBudget.current?.charge(bytes: total)
    }

    static func checkElements(_ count: Int, times repeats: Int = 1) throws {
        let (total, overflow) = count.multipliedReportingOverflow(by: repeats)
        guard !overflow, total <= maximumElements else {
            throw TemplateError.runtime("template built a list of more than \(maximumElements) elements")
        }
        RenderBudget.current?.charge(total)
    }

    /// Lists, tuples and dicts hold data only: a namespace, a loop object or a function inside one could link to
    /// another without bound (a chain that overflows the stack when it is printed or freed), and no chat template
    /// stores one there.
    static func checkStorable(_ value: Value, in container: String) throws {
        switch value {
        case .namespace, .loop, .function:
            throw TemplateError.runtime("a \(value.typeName) cannot be stored in a \(container); only data can")
        default: break
        }
    }

    /// The nesting depth of `value` (a scalar is 0), each shared list or dict visited once.
    static func depth(of value: Value) throws -> Int {
        var memo: [UnsafeRawPointer: Int] = [:]
        return try depth(of: value, memo: &memo)
    }

    private static func depth(of value: Value, memo: inout [UnsafeRawPointer: Int]) throws -> Int {
        let children: [Value]
        let identity: UnsafeRawPointer?
        switch value {
        case .list(let items), .tuple(let items):
            children = items
            identity = items.withUnsafeBufferPointer { $0.baseAddress.map(UnsafeRawPointer.init) }
        case .dict(let dict):
            children = dict.values
            identity = dict.storageIdentity
        default: return 0
        }
        if let identity, let known = memo[identity] { return known }
        RenderBudget.current?.charge(children.count + 1)
        var deepest = 0
        for child in children {
            switch child {
            case .list, .tuple, .dict: deepest = max(deepest, try depth(of: child, memo: &memo))
            default: continue
            }
            // Nothing deeper than the limit is ever built, so the recursion stops here.
            if deepest >= maximumDepth { break }
        }
        let result = deepest + 1
        if let identity { memo[identity] = result }
        return result
    }

    /// A list, tuple or dict built from `members` (by a literal, `dict()`, a macro's `varargs`): data only, not too
    /// many, not too deep.
    static func checkNewContainer(_ members: [Value], kind: String) throws {
        try checkElements(members.count)
        var deepest = 0
        for member in members {
            try checkStorable(member, in: kind)
            switch member {
            case .list, .tuple, .dict: deepest = max(deepest, try depth(of: member))
            default: continue
            }
            if deepest >= maximumDepth {
                throw TemplateError.runtime("template built a value nested deeper than \(maximumDepth) levels")
            }
        }
    }
}

/// The work counter of the render running on this thread; Value operations charge it without an interpreter at
/// hand, and the interpreter turns an exhausted budget into an error at its next step.
final class RenderBudget {
    private(set) var work = 0
    private(set) var iterations = 0

    var isExhausted: Bool { work > Limits.maximumWork }

    /// Charges `units`; returns false once the budget is spent (long loops stop early, their result is discarded).
    @discardableResult
    func charge(_ units: Int) -> Bool {
        work &+= units
        return work <= Limits.maximumWork
    }

    @discardableResult
    func charge(bytes: Int) -> Bool { charge(1 + bytes >> 8) }

    func chargeOrThrow(_ units: Int) throws {
        charge(units)
        try check()
    }

    func check() throws {
        guard work <= Limits.maximumWork else {
            throw TemplateError.runtime(
                "template rendering exceeded its work limit (\(Limits.maximumWork) steps): it loops, recurses or copies too much")
        }
    }

    func iterate() throws {
        iterations += 1
        guard iterations <= Limits.maximumIterations else {
            throw TemplateError.runtime("template loops exceeded \(Limits.maximumIterations) iterations")
        }
        work &+= 1
        try check()
    }

    // MARK: The current budget (thread-local)

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    static var current: RenderBudget? {
        guard let pointer = pthread_getspecific(key) else { return nil }
        return Unmanaged<RenderBudget>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Runs `body` with this budget current on this thread (renders nest: a template rendered inside a filter
    /// would get its own budget and restore this one).
    func install<T>(_ body: () throws -> T) rethrows -> T {
        let previous = pthread_getspecific(Self.key)
        pthread_setspecific(Self.key, Unmanaged.passUnretained(self).toOpaque())
        defer { pthread_setspecific(Self.key, previous) }
        return try body()
    }
}
