import Foundation
import Testing
@testable import ColdArchive

/// Builds tar streams by hand (ustar), so tests can seal what no honest writer produces — the
/// compromised-host case: a validly signed archive with hostile content.
enum HandTar {
    enum TypeFlag: UInt8 {
        case file = 0x30, hardlink = 0x31, symlink = 0x32, charDevice = 0x33, blockDevice = 0x34, directory = 0x35, fifo = 0x36
    }

    static func header(_ name: String, _ type: TypeFlag, size: Int = 0, mode: Int = 0o644, link: String = "", mtime: Int = 1_700_000_000,
                       uid: Int = 0) -> [UInt8] {
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
        octal(uid, at: 108, width: 8)
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

    /// A whole entry: header and padded data. Modes default to what an honest writer stores, so a
    /// crafted entry differs from its manifest entry only where a test means it to.
    static func entry(_ name: String, _ type: TypeFlag, data: [UInt8] = [], mode: Int? = nil, link: String = "", uid: Int = 0) -> [UInt8] {
        let mode = mode ?? (type == .symlink ? 0o777 : type == .directory ? 0o755 : 0o644)
        var out = header(name, type, size: data.count, mode: mode, link: link, uid: uid) + data
        if data.count % 512 != 0 { out += [UInt8](repeating: 0, count: 512 - data.count % 512) }
        return out
    }

    static let end = [UInt8](repeating: 0, count: 1024)

    /// A pax extended header (typeflag `x`, or `g` for a global one) holding `records` ("key=value"),
    /// each framed as "LEN key=value\n".
    static func pax(_ records: [String], global: Bool = false) -> [UInt8] {
        var data: [UInt8] = []
        for record in records {
            let body = " \(record)\n"
            var length = body.utf8.count + 1
            while String(length).utf8.count + body.utf8.count != length { length += 1 }
            data += Array("\(length)\(body)".utf8)
        }
        var h = header(global ? "pax_global_header" : "PaxHeaders/entry", .file, size: data.count, mode: 0o644)
        h[156] = global ? 0x67 : 0x78
        // The checksum covers the type flag: recompute it.
        for i in 148..<156 { h[i] = 0x20 }
        let sum = String(h.reduce(0) { $0 + Int($1) }, radix: 8)
        let digits = Array((String(repeating: "0", count: max(0, 6 - sum.count)) + sum).utf8)
        for (i, b) in digits.enumerated() { h[148 + i] = b }
        h[154] = 0
        h[155] = 0x20
        var out = h + data
        if data.count % 512 != 0 { out += [UInt8](repeating: 0, count: 512 - data.count % 512) }
        return out
    }
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
        // A hardlink carries its target file's mode (0644 here); a symlink's mode is 0777.
        ManifestEntry(kind: kind, path: path, mode: kind == .symlink ? 0o777 : 0o644, mtime: 1_700_000_000, mtimeNanoseconds: 0,
                      size: 0, contentHash: zeroHash, linkTarget: target)
    }
}

/// Seals a hand-made tar stream and manifest with the library's own writer, validly signed.
func craftArchive(_ scratch: Scratch, keys: TestKeys, tar: [UInt8], manifest: [ManifestEntry],
                  chunkRawSize: UInt32 = FormatV1.defaultChunkRawSize, formatVersion: UInt16 = 1) throws -> String {
    let path = scratch.sub("crafted-\(UUID().uuidString.prefix(6)).car")
    // A version 1 archive (hand-made ustar carries no v2 metadata); its plaintext sources field names the
    // top-level entries, as FORMAT.md §5 requires.
    let topLevel = manifest.filter { PathRules.isTopLevel($0.path) }.map(\.path)
    _ = try ArchiveCreator.write(to: path, signer: keys.signer, recipients: keys.recipients, label: "crafted", sources: topLevel,
                                 compressionLevel: 3, chunkRawSize: chunkRawSize, workers: 2, now: Date(), formatVersion: formatVersion) { content in
        try (tar + HandTar.end).withUnsafeBytes { try content.raw($0) }
        for entry in manifest { try content.record(entry) }
        return (UInt64(manifest.count), manifest.reduce(0) { $0 + $1.size })
    }
    return path
}

@Suite struct HostileContentTests {
    let data = Array("name,email\n".utf8)
    static let crm = HandTar.entry("crm/", .directory)

    /// Restores and deep-verifies a crafted archive: both must refuse it for exactly `reason` (so the
    /// test reaches the check it names and no other), the target must stay as it was, and nothing may
    /// appear outside it. Every crafted input is valid in every respect but the one under test.
    func expectRefused(tar: [UInt8], manifest: [ManifestEntry], because reason: IntegrityError, outside: [String] = [],
                       checkContent: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try expectRefused(tar: tar, manifest: manifest, where: { $0 == reason }, outside: outside, checkContent: checkContent,
                          sourceLocation: sourceLocation)
    }

    /// The same, for a reason that carries a library's own message (libarchive's, zstd's).
    func expectRefused(tar: [UInt8], manifest: [ManifestEntry], where matches: @escaping (IntegrityError) -> Bool, outside: [String] = [],
                       checkContent: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try craftArchive(scratch, keys: keys, tar: tar, manifest: manifest)
        // The archive itself is intact and validly signed: the auditor's check passes.
        _ = try Verifier.verify(path: archive, trusting: keys.signer.publicKey)
        expectError(matches, sourceLocation: sourceLocation) { _ = try Verifier.verifyDeep(path: archive, keyring: keys.keyring) }
        let target = scratch.sub("deep/er/target")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try TreeBuilder.write("\(target)/existing.txt", "keep")
        let before = try TreeSnapshot(scratch.sub("deep")).ignoringDirectoryTimes
        expectError(matches, sourceLocation: sourceLocation) {
            _ = try Restorer.restore(archivePath: archive, to: target, keyring: keys.keyring, force: true, checkContent: checkContent)
        }
        #expect(try TreeSnapshot(scratch.sub("deep")).ignoringDirectoryTimes == before, sourceLocation: sourceLocation)
        for path in outside {
            let full = path.hasPrefix("/") ? path : "\(target)/\(path)"
            #expect(!FileManager.default.fileExists(atPath: full), "\(full) was written", sourceLocation: sourceLocation)
        }
    }

    /// The crafting itself is sound: the same kind of archive, without the defect, restores.
    @Test func aWellFormedCraftedArchiveRestores() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try craftArchive(scratch, keys: keys,
                                       tar: Self.crm + HandTar.entry("crm/a.csv", .file, data: data) + HandTar.entry("crm/b", .hardlink, link: "crm/a.csv")
                                        + HandTar.entry("crm/sub/", .directory) + HandTar.entry("crm/sub/up", .symlink, link: "../a.csv"),
                                       manifest: [.directory("crm"), .file("crm/a.csv", data), .link(.hardlink, "crm/b", to: "crm/a.csv"),
                                                  .directory("crm/sub"), .link(.symlink, "crm/sub/up", to: "../a.csv")])
        _ = try Verifier.verifyDeep(path: archive, keyring: keys.keyring)
        _ = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring, checkContent: true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: scratch.sub("out/crm/sub/up"))) == Data(data))
    }

    // MARK: path rules (checked on the manifest before anything is written, and on every tar entry)

    @Test func dotDotPathsAreRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/../../../escape.txt", .file, data: data),
                          manifest: [.directory("crm"), .file("crm/../../../escape.txt", data)],
                          because: .unsafeEntry(path: "crm/../../../escape.txt", reason: .dotDotComponent),
                          outside: ["../../../escape.txt", "../escape.txt"])
    }

    @Test func absolutePathsAreRefused() throws {
        let victim = "/tmp/coldarchive-absolute-\(UUID().uuidString.prefix(8))"
        try expectRefused(tar: HandTar.entry(victim, .file, data: data), manifest: [.file(victim, data)],
                          because: .unsafeEntry(path: victim, reason: .absolutePath), outside: [victim])
    }

    @Test func dotAndEmptyComponentsAreRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/./a.csv", .file, data: data), manifest: [.directory("crm"), .file("crm/./a.csv", data)],
                          because: .unsafeEntry(path: "crm/./a.csv", reason: .emptyOrDotComponent))
    }

    @Test func aComponentLongerThan255BytesIsRefused() throws {
        let name = "crm/" + String(repeating: "c", count: 256)
        try expectRefused(tar: Self.crm + HostileStreamTests().paxEntry(path: Array(name.utf8), data: data),
                          manifest: [.directory("crm"), .file(name, data)], because: .unsafeEntry(path: name, reason: .componentTooLong))
    }

    // MARK: links

    /// A directory entry the archive made is replaced... no: a symlink made by the archive is used as
    /// a directory by a later entry. The manifest's parent rule refuses it before anything is written.
    @Test func writingThroughASymlinkMadeByTheArchiveIsRefused() throws {
        try expectRefused(
            tar: Self.crm + HandTar.entry("crm/alias", .symlink, link: "sub") + HandTar.entry("crm/alias/x.csv", .file, data: data)
                + HandTar.entry("crm/sub/", .directory),
            manifest: [.directory("crm"), .link(.symlink, "crm/alias", to: "sub"), .file("crm/alias/x.csv", data), .directory("crm/sub")],
            because: .unsafeEntry(path: "crm/alias/x.csv", reason: .parentNotBefore))
    }

    @Test func symlinksThatLeaveTheTargetAreRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/etc", .symlink, link: "../../../../../../etc"),
                          manifest: [.directory("crm"), .link(.symlink, "crm/etc", to: "../../../../../../etc")],
                          because: .unsafeEntry(path: "crm/etc", reason: .symlinkEscapes(target: "../../../../../../etc")))
        try expectRefused(tar: Self.crm + HandTar.entry("crm/passwd", .symlink, link: "/etc/passwd"),
                          manifest: [.directory("crm"), .link(.symlink, "crm/passwd", to: "/etc/passwd")],
                          because: .unsafeEntry(path: "crm/passwd", reason: .symlinkEscapes(target: "/etc/passwd")))
    }

    @Test func aSymlinkThatGoesUpAfterGoingDownIsRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/a/", .directory)
                            + HandTar.entry("crm/a/s", .symlink, link: "../..") + HandTar.entry("crm/a/t", .symlink, link: "s/../../etc"),
                          manifest: [.directory("crm"), .directory("crm/a"), .link(.symlink, "crm/a/s", to: "../.."),
                                     .link(.symlink, "crm/a/t", to: "s/../../etc")],
                          because: .unsafeEntry(path: "crm/a/t", reason: .symlinkEscapes(target: "s/../../etc")))
        try expectRefused(tar: Self.crm + HandTar.entry("crm/a/", .directory) + HandTar.entry("crm/a/t", .symlink, link: "b/../../../etc"),
                          manifest: [.directory("crm"), .directory("crm/a"), .link(.symlink, "crm/a/t", to: "b/../../../etc")],
                          because: .unsafeEntry(path: "crm/a/t", reason: .symlinkEscapes(target: "b/../../../etc")))
    }

    @Test func aHardlinkToALaterEntryIsRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/a", .hardlink, link: "crm/b") + HandTar.entry("crm/b", .file, data: data),
                          manifest: [.directory("crm"), .link(.hardlink, "crm/a", to: "crm/b"), .file("crm/b", data)],
                          because: .unsafeEntry(path: "crm/a", reason: .hardlinkForward), outside: ["crm"])
    }

    @Test func hardlinksToOutsideAreRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/shadow", .hardlink, link: "../../etc/shadow"),
                          manifest: [.directory("crm"), .link(.hardlink, "crm/shadow", to: "../../etc/shadow")],
                          because: .unsafeEntry(path: "../../etc/shadow", reason: .dotDotComponent))
    }

    /// A hardlink to an earlier directory passes the order rule (which keeps O(depth) memory and does
    /// not know earlier entries' types); the extractor links only to regular files it restored.
    @Test func aHardlinkToADirectoryIsRefusedByRestore() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try craftArchive(scratch, keys: keys, tar: Self.crm + HandTar.entry("crm/a/", .directory) + HandTar.entry("crm/b", .hardlink, link: "crm/a"),
                                       manifest: [.directory("crm"), .directory("crm/a"), .link(.hardlink, "crm/b", to: "crm/a")])
        #expect(throws: IntegrityError.unsafeEntry(path: "crm/b", reason: .hardlinkNotToRestoredFile)) {
            _ = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring)
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("out")))
    }

    // MARK: entry types and bits

    @Test(arguments: [(HandTar.TypeFlag.charDevice, UnsafeReason.deviceNode), (.blockDevice, .deviceNode), (.fifo, .fifo)])
    func specialFilesAreRefused(type: HandTar.TypeFlag, reason: UnsafeReason) throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/dev", type), manifest: [.directory("crm"), .file("crm/dev", [])],
                          because: .unsafeEntry(path: "crm/dev", reason: reason), outside: ["crm"])
    }

    /// The manifest decoder refuses such modes (FORMAT.md: 0o777 at most); the tar stream's are
    /// checked on their own, before the field-by-field comparison.
    @Test(arguments: [0o4755, 0o2755, 0o1777])
    func setuidSetgidAndStickyBitsAreRefused(mode: Int) throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/tool", .file, data: data, mode: mode),
                          manifest: [.directory("crm"), .file("crm/tool", data, mode: UInt16(mode & 0o777))],
                          because: .unsafeEntry(path: "crm/tool", reason: .privilegeBits), outside: ["crm"])
    }

    // MARK: the tar stream against the manifest, field by field

    @Test func aTarPathThatDiffersFromTheManifestIsRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/b.csv", .file, data: data), manifest: [.directory("crm"), .file("crm/a.csv", data)],
                          because: .manifestMismatch(path: "crm/b.csv", reason: .path(manifest: "crm/a.csv")), outside: ["crm"])
    }

    @Test func aTarTypeThatDiffersFromTheManifestIsRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/a/", .directory),
                          manifest: [.directory("crm"), ManifestEntry(kind: .file, path: "crm/a", mode: 0o755, mtime: 1_700_000_000,
                                                                       mtimeNanoseconds: 0, size: 0, contentHash: Sodium.blake2b([]), linkTarget: "")],
                          because: .manifestMismatch(path: "crm/a", reason: .kind(tar: .directory, manifest: .file)), outside: ["crm"])
    }

    @Test func aTarModeThatDiffersFromTheManifestIsRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/a.csv", .file, data: data, mode: 0o600), manifest: [.directory("crm"), .file("crm/a.csv", data)],
                          because: .manifestMismatch(path: "crm/a.csv", reason: .mode(tar: 0o600, manifest: 0o644)), outside: ["crm"])
    }

    @Test func aTarTimeThatDiffersFromTheManifestIsRefused() throws {
        var entry = ManifestEntry.file("crm/a.csv", data)
        entry.mtime += 1
        try expectRefused(tar: Self.crm + HandTar.entry("crm/a.csv", .file, data: data), manifest: [.directory("crm"), entry],
                          because: .manifestMismatch(path: "crm/a.csv", reason: .modificationTime), outside: ["crm"])
    }

    @Test func aTarSizeThatDiffersFromTheManifestIsRefused() throws {
        // The manifest says 5 bytes with the hash of 5 bytes; the tar entry holds all of `data`.
        var entry = ManifestEntry.file("crm/a.csv", Array(data.prefix(5)))
        entry.size = 5
        try expectRefused(tar: Self.crm + HandTar.entry("crm/a.csv", .file, data: data), manifest: [.directory("crm"), entry],
                          because: .manifestMismatch(path: "crm/a.csv", reason: .size(tar: UInt64(data.count), manifest: 5)), outside: ["crm"])
    }

    @Test func aTarLinkTargetThatDiffersFromTheManifestIsRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/a.csv", .file, data: data) + HandTar.entry("crm/l", .symlink, link: "a.csv"),
                          manifest: [.directory("crm"), .file("crm/a.csv", data), .link(.symlink, "crm/l", to: "b.csv")],
                          because: .manifestMismatch(path: "crm/l", reason: .linkTarget), outside: ["crm"])
    }

    /// The signer's tar stream and its manifest disagree on a file's bytes (same size). Every byte is
    /// still authenticated, so only the content hash can tell: `verify --deep` and
    /// `restore --check-content` refuse it; a default restore, which relies on the AEAD, writes what
    /// was signed.
    @Test func contentThatDisagreesWithTheManifestIsRefusedByTheContentCheck() throws {
        let other = Array("name,phone\n".utf8)
        #expect(other.count == data.count)
        let tar = Self.crm + HandTar.entry("crm/a.csv", .file, data: data)
        let manifest: [ManifestEntry] = [.directory("crm"), .file("crm/a.csv", other)]
        try expectRefused(tar: tar, manifest: manifest, because: .manifestMismatch(path: "crm/a.csv", reason: .contentHash),
                          outside: ["crm"], checkContent: true)

        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try craftArchive(scratch, keys: keys, tar: tar, manifest: manifest)
        _ = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: scratch.sub("out/crm/a.csv")))) == data)
    }

    @Test func aManifestListingMoreThanTheTarStreamIsRefused() throws {
        try expectRefused(tar: Self.crm, manifest: [.directory("crm"), .file("crm/ghost.csv", [])],
                          because: .manifestMismatch(path: "crm/ghost.csv", reason: .notInTarStream), outside: ["crm"])
    }

    @Test func aTarEntryMissingFromTheManifestIsRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/extra.csv", .file, data: data), manifest: [.directory("crm")],
                          because: .manifestMismatch(path: "crm/extra.csv", reason: .notInManifest), outside: ["crm"])
    }

    // MARK: manifest order (before anything is written)

    @Test func anEntryAppearingTwiceIsRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/a.csv", .file, data: data) + HandTar.entry("crm/a.csv", .file, data: data),
                          manifest: [.directory("crm"), .file("crm/a.csv", data), .file("crm/a.csv", data)],
                          because: .unsafeEntry(path: "crm/a.csv", reason: .outOfOrderOrRepeated), outside: ["crm"])
    }

    @Test func entriesOutOfCanonicalOrderAreRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/b.csv", .file, data: data) + HandTar.entry("crm/a.csv", .file, data: data),
                          manifest: [.directory("crm"), .file("crm/b.csv", data), .file("crm/a.csv", data)],
                          because: .unsafeEntry(path: "crm/a.csv", reason: .outOfOrderOrRepeated), outside: ["crm"])
    }

    @Test func anEntryWhoseParentIsNotListedBeforeItIsRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.entry("crm/sub/a.csv", .file, data: data),
                          manifest: [.directory("crm"), .file("crm/sub/a.csv", data)],
                          because: .unsafeEntry(path: "crm/sub/a.csv", reason: .parentNotBefore), outside: ["crm"])
    }

    @Test func aPayloadThatIsNotTarIsRefused() throws {
        let junk = Array("this is not a tar stream at all".utf8)
        try expectRefused(tar: junk + [UInt8](repeating: 0x41, count: 2048 - junk.count), manifest: [.directory("crm")],
                          where: { if case .tarStream = $0 { true } else { false } }, outside: ["crm"])
    }

    @Test func bytesAfterTheEndOfArchiveMarkerAreRefused() throws {
        try expectRefused(tar: Self.crm + HandTar.end + [UInt8](repeating: 0x58, count: 512), manifest: [.directory("crm")],
                          because: .tarStream(reason: "bytes other than zeros follow the end-of-archive marker"))
    }
}
