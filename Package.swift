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
        .executable(name: "sluice-log", targets: ["sluice-log"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
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
                "SluiceCompression",
                .product(name: "Logging", package: "swift-log"),
            ]
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
    ]
)
