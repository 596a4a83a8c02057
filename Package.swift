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
        // Reed–Solomon parity sidecars through Intel ISA-L (docs/FORMAT.md §21), kept out of the core for
        // the same reason: reading or restoring an archive needs no parity.
        .library(name: "ColdArchiveParity", targets: ["ColdArchiveParity"]),
        // Copies in S3-compatible object stores (AWS Signature V4, multipart, Object Lock) through
        // async-http-client, which brings swift-nio: its own target, so the core links none of it.
        .library(name: "ColdArchiveS3", targets: ["ColdArchiveS3"]),
        .executable(name: "coldarchive", targets: ["coldarchive"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client", exact: "1.37.0"),
    ],
    targets: [
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive",
                       providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CIsal", pkgConfig: "libisal",
                       providers: [.apt(["libisal-dev"])]),
        .target(name: "ColdArchive", dependencies: ["CSodium", "CZstd", "CArchive"]),
        .target(name: "ColdArchiveParity", dependencies: ["ColdArchive", "CIsal"]),
        .target(name: "ColdArchiveS3", dependencies: ["ColdArchive", .product(name: "AsyncHTTPClient", package: "async-http-client")]),
        .target(name: "ColdArchiveCatalog", dependencies: ["ColdArchive", .product(name: "GRDB", package: "GRDB.swift")]),
        .executableTarget(name: "coldarchive", dependencies: [
            "ColdArchive",
            "ColdArchiveCatalog",
            "ColdArchiveParity",
            "ColdArchiveS3",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "ColdArchiveTests", dependencies: ["ColdArchive", "ColdArchiveCatalog", "ColdArchiveParity", "ColdArchiveS3", "coldarchive"],
                    exclude: ["Vectors"]),
    ]
)
