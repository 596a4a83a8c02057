// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "coldarchive",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "ColdArchive", targets: ["ColdArchive"]),
        // The vault's catalog: SQLite through GRDB, kept out of the core so that a reader of the format
        // links only libsodium, libzstd and libarchive.
        .library(name: "ColdArchiveCatalog", targets: ["ColdArchiveCatalog"]),
        .executable(name: "coldarchive", targets: ["coldarchive"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
    ],
    targets: [
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive",
                       providers: [.apt(["libarchive-dev"])]),
        .target(name: "ColdArchive", dependencies: ["CSodium", "CZstd", "CArchive"]),
        .target(name: "ColdArchiveCatalog", dependencies: ["ColdArchive", .product(name: "GRDB", package: "GRDB.swift")]),
        .executableTarget(name: "coldarchive", dependencies: [
            "ColdArchive",
            "ColdArchiveCatalog",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "ColdArchiveTests", dependencies: ["ColdArchive", "ColdArchiveCatalog", "coldarchive"],
                    exclude: ["Vectors"]),
    ]
)
