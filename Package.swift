// swift-tools-version:6.0
import PackageDescription

// Target layout and import direction: see ../shared/design/ARCHITECTURE.md.
// CLZ4 and CZstd are system-library shims (Debian's liblz4-dev and libzstd-dev, found through pkg-config);
// CSluiceCRC32C is our own small C target for the CPU's crc32 instruction.
let package = Package(
    name: "Sluice",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SluiceCore", targets: ["SluiceCore"]),
        .library(name: "SluiceCompression", targets: ["SluiceCompression"]),
        .library(name: "SluiceLog", targets: ["SluiceLog"]),
        .library(name: "SluiceWire", targets: ["SluiceWire"]),
        .library(name: "SluiceRaft", targets: ["SluiceRaft"]),
        .library(name: "SluiceSQL", targets: ["SluiceSQL"]),
        .library(name: "SluiceStreams", targets: ["SluiceStreams"]),
        .library(name: "SluiceBroker", targets: ["SluiceBroker"]),
        .library(name: "SluiceClient", targets: ["SluiceClient"]),
        .executable(name: "sluiced", targets: ["sluiced"]),
        .executable(name: "sluice", targets: ["sluice"]),
        .executable(name: "sluice-log", targets: ["sluice-log"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"]), .brew(["lz4"])]
        ),
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]
        ),
        .target(name: "CSluiceCRC32C"),
        // sync_file_range, which needs _GNU_SOURCE and so is not in Swift's Glibc module.
        .target(name: "CSluiceSys"),
        .target(
            name: "SluiceCore",
            dependencies: ["CSluiceCRC32C"]
        ),
        .target(
            name: "SluiceCompression",
            dependencies: ["SluiceCore", "CLZ4", "CZstd"]
        ),
        .target(
            name: "SluiceLog",
            dependencies: [
                "SluiceCore",
                "CSluiceSys",
                "SluiceCompression",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SluiceWire",
            // SluiceRaft: the replication API carries SluiceRaft.Message as it is (Raft is pure, no NIO).
            dependencies: ["SluiceCore", "SluiceRaft", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // Raft as a pure state machine: step/tick/ready/advance. Pure: no NIO, no SluiceLog, no clocks.
        .target(
            name: "SluiceRaft",
            dependencies: ["SluiceCore"]
        ),
        // The processor dialect: lexer, parser, AST. Pure: no NIO, no SluiceLog.
        .target(
            name: "SluiceSQL",
            dependencies: ["SluiceCore"]
        ),
        // The processing engine: JSON values, windows, watermarks, aggregates, state. Pure: no NIO, no SluiceLog.
        .target(
            name: "SluiceStreams",
            dependencies: ["SluiceCore", "SluiceSQL"]
        ),
        .target(
            name: "SluiceBroker",
            dependencies: [
                "SluiceCore", "SluiceCompression", "SluiceLog", "SluiceWire", "SluiceRaft", "SluiceSQL", "SluiceStreams",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "SluiceClient",
            dependencies: [
                "SluiceCore", "SluiceCompression", "SluiceWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The CLI's commands live in a library so tests can drive their parsing and formatting.
        .target(
            name: "SluiceCLI",
            dependencies: [
                "SluiceCore", "SluiceCompression", "SluiceClient", "SluiceSQL", "SluiceStreams",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .executableTarget(
            name: "sluiced",
            dependencies: [
                "SluiceBroker",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "sluice",
            dependencies: ["SluiceCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "sluice-log",
            dependencies: [
                "SluiceCore",
                "SluiceCompression",
                "SluiceLog",
                "CLZ4",
                "CZstd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "tools/sluice-log"
        ),
        .target(
            name: "SluiceTestSupport",
            dependencies: ["SluiceCore", "SluiceCompression", "SluiceLog"],
            path: "Tests/SluiceTestSupport"
        ),
        .testTarget(
            name: "SluiceCoreTests",
            dependencies: ["SluiceCore", "SluiceTestSupport"]
        ),
        .testTarget(
            name: "SluiceCompressionTests",
            dependencies: ["SluiceCore", "SluiceCompression", "SluiceTestSupport"]
        ),
        .testTarget(
            name: "SluiceLogTests",
            dependencies: ["SluiceCore", "SluiceCompression", "SluiceLog", "SluiceTestSupport"]
        ),
        .testTarget(
            name: "SluiceWireTests",
            dependencies: [
                "SluiceCore", "SluiceWire", "SluiceRaft", "SluiceTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SluiceRaftTests",
            dependencies: ["SluiceRaft", "SluiceTestSupport"]
        ),
        .testTarget(
            name: "SluiceSQLTests",
            dependencies: ["SluiceSQL", "SluiceTestSupport"]
        ),
        .testTarget(
            name: "SluiceStreamsTests",
            dependencies: ["SluiceStreams", "SluiceTestSupport"]
        ),
        .testTarget(
            name: "SluiceBrokerTests",
            dependencies: [
                "SluiceCore", "SluiceCompression", "SluiceLog", "SluiceWire", "SluiceRaft", "SluiceBroker", "SluiceClient",
                "SluiceTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SluiceCLITests",
            dependencies: ["SluiceCore", "SluiceClient", "SluiceCLI", "SluiceTestSupport"]
        ),
        // Starts the real sluiced and runs the real sluice binary.
        .testTarget(
            name: "SluiceEndToEndTests",
            dependencies: ["SluiceCore", "SluiceTestSupport"]
        ),
    ]
)
