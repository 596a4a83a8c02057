// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "coldarchive",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "ColdArchive", targets: ["ColdArchive"]),
        .executable(name: "coldarchive", targets: ["coldarchive"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive",
                       providers: [.apt(["libarchive-dev"])]),
        .target(name: "ColdArchive", dependencies: ["CSodium", "CZstd", "CArchive"]),
        .executableTarget(name: "coldarchive", dependencies: [
            "ColdArchive",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "ColdArchiveTests", dependencies: ["ColdArchive", "coldarchive"],
                    exclude: ["Vectors"]),
    ]
)
