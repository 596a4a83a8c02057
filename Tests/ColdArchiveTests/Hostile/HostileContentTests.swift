import Foundation
import Testing
@testable import ColdArchive

/// Builds tar streams by hand (ustar), so tests can seal what no honest writer produces — the
/// compromised-host case: a validly signed archive with hostile content.
enum HandTar {
    enum TypeFlag: UInt8 {
        case file = 0x30, hardlink = 0x31, symlink = 0x32, charDevice = 0x33, blockDevice = 0x34, directory = 0x35, fifo = 0x36
    }

    static func header(_ name: String, _ type: TypeFlag, size: Int = 0, mode: Int = 0o644, link: String = "", mtime: Int = 1_700_000_000) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, at offset: Int, width: Int) {
            for (i, b) in Array(s.utf8).prefix(width).enumerated() { h[offset + i] = b }
        }
        func octal(_ v: Int, at offset: Int, width: Int) {
            let digits = String(v, radix: 8)
            put(String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits, at: offset, width: width - 1)
        }
        put(name, at: 0, width: 100)
        octal(mode, at: 100, width: 8)
        octal(0, at: 108, width: 8)
        octal(0, at: 116, width: 8)
        octal(size, at: 124, width: 12)
        octal(mtime, at: 136, width: 12)
        h[156] = type.rawValue
        put(link, at: 157, width: 100)
        put("ustar", at: 257, width: 6)
        put("00", at: 263, width: 2)
        for i in 148..<156 { h[i] = 0x20 }
        let sum = h.reduce(0) { $0 + Int($1) }
        octal(sum, at: 148, width: 7)
        h[154] = 0
        h[155] = 0x20
        return h
    }

    static func entry(_ name: String, _ type: TypeFlag, data: [UInt8] = [], mode: Int = 0o644, link: String = "") -> [UInt8] {
        var out = header(name, type, size: data.count, mode: mode, link: link) + data
        if data.count % 512 != 0 { out += [UInt8](repeating: 0, count: 512 - data.count % 512) }
        return out
    }

    static let end = [UInt8](repeating: 0, count: 1024)
}

extension ManifestEntry {
    static func file(_ path: String, _ data: [UInt8], mode: UInt16 = 0o644) -> ManifestEntry {
        ManifestEntry(kind: .file, path: path, mode: mode, mtime: 1_700_000_000, mtimeNanoseconds: 0, size: UInt64(data.count),
                      contentHash: Sodium.blake2b(data), linkTarget: "")
    }

    static func directory(_ path: String) -> ManifestEntry {
        ManifestEntry(kind: .directory, path: path, mode: 0o755, mtime: 1_700_000_000, mtimeNanoseconds: 0, size: 0,
                      contentHash: zeroHash, linkTarget: "")
    }

    static func link(_ kind: Kind, _ path: String, to target: String) -> ManifestEntry {
        ManifestEntry(kind: kind, path: path, mode: kind == .symlink ? 0o777 : 0o644, mtime: 1_700_000_000, mtimeNanoseconds: 0,
                      size: 0, contentHash: zeroHash, linkTarget: target)
    }
}

/// Seals a hand-made tar stream and manifest with the library's own writer, validly signed.
func craftArchive(_ scratch: Scratch, keys: TestKeys, tar: [UInt8], manifest: [ManifestEntry]) throws -> String {
    let path = scratch.sub("crafted-\(UUID().uuidString.prefix(6)).car")
    _ = try ArchiveCreator.write(to: path, signer: keys.signer, recipients: keys.recipients, label: "crafted", sources: ["crm"],
                                 compressionLevel: 3, chunkRawSize: FormatV1.defaultChunkRawSize, workers: 2, now: Date()) { content in
        try (tar + HandTar.end).withUnsafeBytes { try content.raw($0) }
        for entry in manifest { try content.record(entry) }
        return (UInt64(manifest.count), manifest.reduce(0) { $0 + $1.size })
    }
    return path
}

@Suite struct HostileContentTests {
    let data = Array("name,email\n".utf8)

    /// Restores and deep-verifies a crafted archive: both must refuse it as unsafe or inconsistent,
    /// the target must stay as it was, and nothing may appear outside it.
    func expectRefused(tar: [UInt8], manifest: [ManifestEntry], outside: [String] = [], checkContent: Bool = false,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try craftArchive(scratch, keys: keys, tar: tar, manifest: manifest)
        // The archive itself is intact and validly signed: the auditor's check passes.
        _ = try Verifier.verify(path: archive, trusting: keys.signer.publicKey)
        expectIntegrityFailure(sourceLocation: sourceLocation) { _ = try Verifier.verifyDeep(path: archive, keyring: keys.keyring) }
        let target = scratch.sub("deep/er/target")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try TreeBuilder.write("\(target)/existing.txt", "keep")
        let before = try TreeSnapshot(scratch.sub("deep")).ignoringDirectoryTimes
        expectIntegrityFailure(sourceLocation: sourceLocation) {
            _ = try Restorer.restore(archivePath: archive, to: target, keyring: keys.keyring, force: true, checkContent: checkContent)
        }
        #expect(try TreeSnapshot(scratch.sub("deep")).ignoringDirectoryTimes == before, sourceLocation: sourceLocation)
        for path in outside {
            let full = path.hasPrefix("/") ? path : "\(target)/\(path)"
            #expect(!FileManager.default.fileExists(atPath: full), "\(full) was written", sourceLocation: sourceLocation)
        }
    }

    @Test func aWellFormedCraftedArchiveRestores() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try craftArchive(scratch, keys: keys,
                                       tar: HandTar.entry("crm/", .directory, mode: 0o755) + HandTar.entry("crm/a.csv", .file, data: data),
                                       manifest: [.directory("crm"), .file("crm/a.csv", data)])
        _ = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring)
        #expect(try Data(contentsOf: URL(fileURLWithPath: scratch.sub("out/crm/a.csv"))) == Data(data))
    }

    @Test func dotDotPathsAreRefused() throws {
        try expectRefused(tar: HandTar.entry("crm/", .directory, mode: 0o755) + HandTar.entry("crm/../../../escape.txt", .file, data: data),
                          manifest: [.directory("crm"), .file("crm/../../../escape.txt", data)], outside: ["../../../escape.txt", "../escape.txt"])
    }

    @Test func absolutePathsAreRefused() throws {
        let victim = "/tmp/coldarchive-absolute-\(UUID().uuidString.prefix(8))"
        try expectRefused(tar: HandTar.entry(victim, .file, data: data), manifest: [.file(victim, data)], outside: [victim])
    }

    @Test func writingThroughASymlinkPlantedEarlierIsRefused() throws {
        try expectRefused(
            tar: HandTar.entry("crm/", .directory, mode: 0o755) + HandTar.entry("crm/sub/", .directory, mode: 0o755)
                + HandTar.entry("crm/alias", .symlink, link: "sub") + HandTar.entry("crm/alias/x.csv", .file, data: data),
            manifest: [.directory("crm"), .directory("crm/sub"), .link(.symlink, "crm/alias", to: "sub"), .file("crm/alias/x.csv", data)])
    }

    @Test func symlinksThatLeaveTheTargetAreRefused() throws {
        try expectRefused(tar: HandTar.entry("crm/", .directory, mode: 0o755) + HandTar.entry("crm/etc", .symlink, link: "../../../../../../etc"),
                          manifest: [.directory("crm"), .link(.symlink, "crm/etc", to: "../../../../../../etc")])
        try expectRefused(tar: HandTar.entry("crm/", .directory, mode: 0o755) + HandTar.entry("crm/passwd", .symlink, link: "/etc/passwd"),
                          manifest: [.directory("crm"), .link(.symlink, "crm/passwd", to: "/etc/passwd")])
    }

    @Test func aSymlinkThatGoesUpAfterGoingDownIsRefused() throws {
        try expectRefused(tar: HandTar.entry("crm/", .directory, mode: 0o755) + HandTar.entry("crm/a/", .directory, mode: 0o755)
                            + HandTar.entry("crm/a/s", .symlink, link: "../..") + HandTar.entry("crm/a/t", .symlink, link: "s/../../etc"),
                          manifest: [.directory("crm"), .directory("crm/a"), .link(.symlink, "crm/a/s", to: "../.."),
                                     .link(.symlink, "crm/a/t", to: "s/../../etc")])
    }

    @Test func aHardlinkToALaterEntryIsRefused() throws {
        try expectRefused(tar: HandTar.entry("crm/", .directory, mode: 0o755) + HandTar.entry("crm/a", .hardlink, link: "crm/b")
                            + HandTar.entry("crm/b", .file, data: data),
                          manifest: [.directory("crm"), .link(.hardlink, "crm/a", to: "crm/b"), .file("crm/b", data)], outside: ["crm"])
    }

    @Test func hardlinksToOutsideAreRefused() throws {
        try expectRefused(tar: HandTar.entry("crm/", .directory, mode: 0o755) + HandTar.entry("crm/shadow", .hardlink, link: "../../etc/shadow"),
                          manifest: [.directory("crm"), .link(.hardlink, "crm/shadow", to: "../../etc/shadow")])
    }

    @Test(arguments: [HandTar.TypeFlag.charDevice, .blockDevice, .fifo])
    func specialFilesAreRefused(type: HandTar.TypeFlag) throws {
        try expectRefused(tar: HandTar.entry("crm/", .directory, mode: 0o755) + HandTar.entry("crm/dev", type),
                          manifest: [.directory("crm"), .file("crm/dev", [])], outside: ["crm"])
    }

    @Test(arguments: [0o4755, 0o2755, 0o1777])
    func setuidSetgidAndStickyBitsAreRefused(mode: Int) throws {
        try expectRefused(tar: HandTar.entry("crm/", .directory, mode: 0o755) + HandTar.entry("crm/tool", .file, data: data, mode: mode),
                          manifest: [.directory("crm"), .file("crm/tool", data, mode: 0o755)], outside: ["crm"])
    }

    /// The signer's tar stream and its manifest disagree on a file's bytes (same size). Every byte is
    /// still authenticated, so only the content hash can tell: `verify --deep` and
    /// `restore --check-content` refuse it; a default restore, which relies on the AEAD, writes what
    /// was signed.
    @Test func contentThatDisagreesWithTheManifestIsRefusedByTheContentCheck() throws {
        let other = Array("name,phone\n".utf8)
        #expect(other.count == data.count)
        let tar = HandTar.entry("crm/", .directory, mode: 0o755) + HandTar.entry("crm/a.csv", .file, data: data)
        let manifest: [ManifestEntry] = [.directory("crm"), .file("crm/a.csv", other)]
        try expectRefused(tar: tar, manifest: manifest, outside: ["crm"], checkContent: true)

        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try craftArchive(scratch, keys: keys, tar: tar, manifest: manifest)
        _ = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: scratch.sub("out/crm/a.csv")))) == data)
    }

    @Test func aManifestListingMoreThanTheTarStreamIsRefused() throws {
        try expectRefused(tar: HandTar.entry("crm/", .directory, mode: 0o755),
                          manifest: [.directory("crm"), .file("crm/ghost.csv", [])], outside: ["crm"])
    }

    @Test func aTarEntryMissingFromTheManifestIsRefused() throws {
        try expectRefused(tar: HandTar.entry("crm/", .directory, mode: 0o755) + HandTar.entry("crm/extra.csv", .file, data: data),
                          manifest: [.directory("crm")], outside: ["crm"])
    }

    @Test func anEntryAppearingTwiceIsRefused() throws {
        try expectRefused(tar: HandTar.entry("crm/", .directory, mode: 0o755) + HandTar.entry("crm/a.csv", .file, data: data)
                            + HandTar.entry("crm/a.csv", .file, data: data),
                          manifest: [.directory("crm"), .file("crm/a.csv", data), .file("crm/a.csv", data)], outside: ["crm"])
    }

    @Test func aPayloadThatIsNotTarIsRefused() throws {
        let junk = Array("this is not a tar stream at all".utf8)
        try expectRefused(tar: junk + [UInt8](repeating: 0x41, count: 2048 - junk.count), manifest: [.directory("crm")], outside: ["crm"])
    }

    @Test func bytesAfterTheEndOfArchiveMarkerAreRefused() throws {
        try expectRefused(tar: HandTar.entry("crm/", .directory, mode: 0o755) + HandTar.end + [UInt8](repeating: 0x58, count: 512),
                          manifest: [.directory("crm")])
    }
}
