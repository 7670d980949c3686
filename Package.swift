// swift-tools-version:6.0
import PackageDescription

// Kernels are C with explicit SIMD paths chosen at run time (AVX2/FMA/F16C on x86-64, NEON on arm64, portable
// fallback), so one binary runs everywhere and still uses the machine's vector unit. They are always optimised,
// even in debug builds, so the test suite runs real kernels at real speed.
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno"])]

let package = Package(
    name: "LongCat",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "longcat", targets: ["longcat"]),
        .executable(name: "longcat-fuzz", targets: ["longcat-fuzz"]),
        .library(name: "LongCatModel", targets: ["LongCatModel"]),
        .library(name: "LongCatTokenizer", targets: ["LongCatTokenizer"]),
        .library(name: "LongCatEngine", targets: ["LongCatEngine"]),
        .library(name: "LongCatTrain", targets: ["LongCatTrain"]),
        .library(name: "LongCatServer", targets: ["LongCatServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The OpenAI-compatible server (`longcat serve`): HTTP/1.1, SSE streaming, graceful shutdown.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
        // Already in the build through Hummingbird; named for its IOError (telling a busy port from other failures).
        .package(url: "https://github.com/apple/swift-nio", from: "2.0.0"),
    ],
    targets: [
        .target(name: "LongCatKernels", cSettings: kernelFlags),
        .target(name: "LongCatTensor", dependencies: ["LongCatKernels"]),
        .target(name: "LongCatModel", dependencies: ["LongCatTensor"]),
        .target(name: "LongCatTokenizer"),
        // The trainer (`longcat train`): backward passes, the report's objective, AdamW, the expert-bias controller.
        .target(name: "LongCatTrain", dependencies: ["LongCatModel", "LongCatTensor", "LongCatTokenizer"]),
        .target(name: "LongCatEngine", dependencies: ["LongCatModel", "LongCatTensor", "LongCatTokenizer"]),
        .target(
            name: "LongCatServer",
            dependencies: [
                "LongCatEngine",
                "LongCatTokenizer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]),
        .executableTarget(
            name: "longcat",
            dependencies: [
                "LongCatEngine",
                "LongCatTrain",
                "LongCatTokenizer",
                "LongCatServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // A seeded fuzzer over the input files (config.json, safetensors, tokenizer.json, chat templates) with a
        // supervisor that records crashes and hangs; only the model and tokenizer modules, so it builds alone.
        .executableTarget(name: "longcat-fuzz", dependencies: ["LongCatModel", "LongCatTensor", "LongCatTokenizer"]),
        // The golden fixtures the repository carries (Tests/Fixtures), found and checked for the tests.
        .target(name: "LongCatTestSupport", path: "Tests/LongCatTestSupport"),
        .testTarget(name: "LongCatTensorTests", dependencies: ["LongCatTensor"]),
        .testTarget(name: "LongCatModelTests", dependencies: ["LongCatModel", "LongCatTensor", "LongCatTestSupport"]),
        .testTarget(name: "LongCatTokenizerTests", dependencies: ["LongCatTokenizer", "LongCatTestSupport"]),
        .testTarget(name: "LongCatEngineTests", dependencies: ["LongCatEngine", "LongCatModel", "LongCatTensor", "LongCatTestSupport"]),
        .testTarget(name: "LongCatTrainTests", dependencies: ["LongCatTrain", "LongCatModel", "LongCatTensor", "LongCatTokenizer", "LongCatTestSupport"]),
        // A live server on a loopback port, driven by the tests' own small HTTP client (no TLS stack to build).
        .testTarget(
            name: "LongCatServerTests",
            dependencies: [
                "LongCatServer", "LongCatEngine", "LongCatModel", "LongCatTokenizer", "LongCatTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]),
    ],
    swiftLanguageModes: [.v5]
)
