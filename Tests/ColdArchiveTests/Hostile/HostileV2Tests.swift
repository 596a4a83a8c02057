import Foundation
import Testing
@testable import ColdArchive

/// Validly signed version 2 archives that break a rule of FORMAT.md (the compromised-host case), and
/// the version 1 rules the reader did not enforce before (issue 15: "make the reader as strict as the
/// spec"). Each is refused for exactly its reason, by `verify --deep` and by restore, and the target
/// is left as it was.
@Suite struct HostileV2Tests {
    let data = Array("name,email\n".utf8)

    /// Hand-made tar pieces with their manifest entries; the entries' `tar_offset`s are where the
    /// pieces start, unless a test moves one.
    func placed(_ pieces: [([UInt8], ManifestEntry)]) -> (tar: [UInt8], manifest: [ManifestEntry]) {
        var tar: [UInt8] = [], manifest: [ManifestEntry] = []
        for (bytes, entry) in pieces {
            var e = entry
            e.tarOffset = UInt64(tar.count)
            manifest.append(e)
            tar += bytes
        }
        return (tar, manifest)
    }

    func expectRefused(_ tar: [UInt8], _ manifest: [ManifestEntry], version: UInt16, because reason: IntegrityError,
                       restoreOnly: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try craftArchive(scratch, keys: keys, tar: tar, manifest: manifest, formatVersion: version)
        _ = try Verifier.verify(path: archive, trusting: keys.signer.publicKey)
        if !restoreOnly {
            expectError({ $0 == reason }, sourceLocation: sourceLocation) { _ = try Verifier.verifyDeep(path: archive, keyring: keys.keyring) }
        }
        let target = scratch.sub("target")
        expectError({ $0 == reason }, sourceLocation: sourceLocation) {
            _ = try Restorer.restore(archivePath: archive, to: target, keyring: keys.keyring)
        }
        #expect(!FileManager.default.fileExists(atPath: target), sourceLocation: sourceLocation)
    }

    @Test func aWellFormedCraftedV2ArchiveRestores() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let (tar, manifest) = placed([(HandTar.entry("crm/", .directory), .directory("crm")),
                                      (HandTar.entry("crm/a.csv", .file, data: data), .file("crm/a.csv", data))])
        let archive = try craftArchive(scratch, keys: keys, tar: tar, manifest: manifest, formatVersion: 2)
        _ = try Verifier.verifyDeep(path: archive, keyring: keys.keyring)
        _ = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring)
        #expect(try Data(contentsOf: URL(fileURLWithPath: scratch.sub("out/crm/a.csv"))) == Data(data))
    }

    @Test func anEntryThatIsNotWhereTheManifestSaysIsRefused() throws {
        var (tar, manifest) = placed([(HandTar.entry("crm/", .directory), .directory("crm")),
                                      (HandTar.entry("crm/a.csv", .file, data: data), .file("crm/a.csv", data))])
        manifest[1].tarOffset += 512
        try expectRefused(tar, manifest, version: 2, because: .manifestMismatch(path: "crm/a.csv", reason: .tarOffset(tar: 512, manifest: 1024)))
    }

    /// A global pax header is not one of the format's entry types: it would silently change how
    /// every later entry reads (GNU tar and libarchive apply it). Refused wherever the manifest's
    /// offsets point: past it, or at it.
    @Test(arguments: [false, true]) func aGlobalPaxHeaderIsRefused(offsetAtTheGlobalHeader: Bool) throws {
        let global = HandTar.pax(["comment=injected"], global: true)
        var (tar, manifest) = placed([(HandTar.entry("crm/", .directory), .directory("crm")),
                                      (HandTar.entry("crm/a.csv", .file, data: data), .file("crm/a.csv", data))])
        tar = Array(tar[0..<512]) + global + Array(tar[512...])
        if !offsetAtTheGlobalHeader { manifest[1].tarOffset += UInt64(global.count) }
        try expectRefused(tar, manifest, version: 2, because: .tarStream(reason: Self.structure("a global pax header", at: 512)))
    }

    static func structure(_ what: String, at offset: Int) -> String {
        "\(what) at byte \(offset) of the tar stream; the format carries only files, directories, symlinks, hardlinks and their pax headers (FORMAT.md §10)"
    }

    /// GNU long names (`L`) and other types libarchive reads are refused in both versions.
    @Test func aGNULongNameIsRefused() throws {
        var long = HandTar.entry("././@LongLink", .file, data: Array("crm/a.csv".utf8))
        long[156] = UInt8(ascii: "L")
        for i in 148..<156 { long[i] = 0x20 }
        let sum = String(long[0..<512].reduce(0) { $0 + Int($1) }, radix: 8)
        for (i, b) in Array((String(repeating: "0", count: 6 - sum.count) + sum).utf8).enumerated() { long[148 + i] = b }
        long[154] = 0
        try expectRefused(HandTar.entry("crm/", .directory) + long + HandTar.entry("crm/a.csv", .file, data: data),
                          [.directory("crm"), .file("crm/a.csv", data)], version: 1,
                          because: .tarStream(reason: Self.structure("a GNU long-name header", at: 512)))
    }

    /// A deleted entry (FORMAT.md §8) belongs to incremental and differential archives only.
    @Test func aDeletedEntryInAFullArchiveIsRefused() throws {
        var (tar, manifest) = placed([(HandTar.entry("crm/", .directory), .directory("crm")),
                                      (HandTar.entry("crm/a.csv", .file, data: data), .file("crm/a.csv", data))])
        let deleted = ManifestEntry(kind: .deleted, path: "crm/b.csv", mode: 0, mtime: 0, mtimeNanoseconds: 0, size: 0,
                                    contentHash: ManifestEntry.zeroHash, linkTarget: "")
        manifest.append(deleted)
        manifest[2].tarOffset = UInt64(tar.count)
        tar += []
        try expectRefused(tar, manifest, version: 2, because: .malformed(what: "manifest entry 'crm/b.csv' (a deleted entry in a full archive)"))
    }

    /// tar_offset rises from 0 (FORMAT.md §8), checked on the manifest before anything is written.
    @Test func offsetsThatDoNotRiseAreRefused() throws {
        var (tar, manifest) = placed([(HandTar.entry("crm/", .directory), .directory("crm")),
                                      (HandTar.entry("crm/a.csv", .file, data: data), .file("crm/a.csv", data))])
        manifest[1].tarOffset = 0
        try expectRefused(tar, manifest, version: 2, because: .malformed(what: "manifest entry 'crm/a.csv' (tar_offset 0 out of order)"))
        tar += []
    }

    @Test func anOwnerThatDiffersFromTheManifestIsRefused() throws {
        let (tar, manifest) = placed([(HandTar.entry("crm/", .directory), .directory("crm")),
                                      (HandTar.entry("crm/a.csv", .file, data: data, uid: 1000), .file("crm/a.csv", data))])
        try expectRefused(tar, manifest, version: 2, because: .manifestMismatch(path: "crm/a.csv", reason: .owner))
    }

    @Test func anExtendedAttributeTheManifestDoesNotListIsRefused() throws {
        let (tar, manifest) = placed([(HandTar.entry("crm/", .directory), .directory("crm")),
                                      (HandTar.pax(["SCHILY.xattr.user.injected=1"]) + HandTar.entry("crm/a.csv", .file, data: data),
                                       .file("crm/a.csv", data))])
        try expectRefused(tar, manifest, version: 2, because: .manifestMismatch(path: "crm/a.csv", reason: .extendedAttributes))
    }

    @Test func anACLTheManifestDoesNotListIsRefused() throws {
        let (tar, manifest) = placed([(HandTar.entry("crm/", .directory), .directory("crm")),
                                      (HandTar.pax(["SCHILY.acl.access=user::rw-,user:nobody:rwx:65534,group::r--,mask::rwx,other::r--"])
                                        + HandTar.entry("crm/a.csv", .file, data: data), .file("crm/a.csv", data))])
        try expectRefused(tar, manifest, version: 2, because: .manifestMismatch(path: "crm/a.csv", reason: .acl))
    }

    /// Version 1 keeps no owners: a non-zero uid in its tar stream breaks FORMAT.md §10.
    @Test func aVersionOneArchiveWithAnOwnerIsRefused() throws {
        try expectRefused(HandTar.entry("crm/", .directory) + HandTar.entry("crm/a.csv", .file, data: data, uid: 1000),
                          [.directory("crm"), .file("crm/a.csv", data)], version: 1,
                          because: .manifestMismatch(path: "crm/a.csv", reason: .owner))
    }

    @Test func aDirectoryWhoseTarNameHasNoSlashIsRefused() throws {
        try expectRefused(HandTar.entry("crm", .directory) + HandTar.entry("crm/a.csv", .file, data: data),
                          [.directory("crm"), .file("crm/a.csv", data)], version: 1,
                          because: .manifestMismatch(path: "crm", reason: .directoryWithoutSlash))
    }

    /// A hardlink carries its file's metadata (FORMAT.md §8): one that claims another mode (v1) or
    /// another owner (v2) is refused on the manifest, before anything is written.
    @Test func aHardlinkWhoseMetadataDiffersFromItsFileIsRefused() throws {
        var link = ManifestEntry.link(.hardlink, "crm/b", to: "crm/a.csv")
        link.mode = 0o600
        try expectRefused(HandTar.entry("crm/", .directory) + HandTar.entry("crm/a.csv", .file, data: data)
                            + HandTar.entry("crm/b", .hardlink, mode: 0o600, link: "crm/a.csv"),
                          [.directory("crm"), .file("crm/a.csv", data), link], version: 1,
                          because: .manifestMismatch(path: "crm/b", reason: .hardlinkMetadata))
        var owned = ManifestEntry.link(.hardlink, "crm/b", to: "crm/a.csv")
        owned.uid = 1000
        let (tar, manifest) = placed([(HandTar.entry("crm/", .directory), .directory("crm")),
                                      (HandTar.entry("crm/a.csv", .file, data: data), .file("crm/a.csv", data)),
                                      (HandTar.entry("crm/b", .hardlink, link: "crm/a.csv", uid: 1000), owned)])
        try expectRefused(tar, manifest, version: 2, because: .manifestMismatch(path: "crm/b", reason: .hardlinkMetadata))
    }

    /// A hardlink to an earlier directory passes the order rule; the manifest check knows the types.
    @Test func aHardlinkToADirectoryIsRefusedOnTheManifest() throws {
        let (tar, manifest) = placed([(HandTar.entry("crm/", .directory), .directory("crm")),
                                      (HandTar.entry("crm/a/", .directory), .directory("crm/a")),
                                      (HandTar.entry("crm/b", .hardlink, link: "crm/a"), .link(.hardlink, "crm/b", to: "crm/a"))])
        try expectRefused(tar, manifest, version: 2, because: .unsafeEntry(path: "crm/b", reason: .hardlinkNotToRestoredFile))
    }

    /// Version 1's plaintext `sources` field must name the top-level entries (FORMAT.md §5).
    @Test func aVersionOneSourcesFieldThatDoesNotMatchIsRefused() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = scratch.sub("a.car")
        _ = try ArchiveCreator.write(to: archive, signer: keys.signer, recipients: keys.recipients, label: nil, sources: ["crm", "hidden"],
                                     compressionLevel: 3, chunkRawSize: FormatV1.defaultChunkRawSize, workers: 2, now: Date(),
                                     formatVersion: 1) { content in
            try (HandTar.entry("crm/", .directory) + HandTar.end).withUnsafeBytes { try content.raw($0) }
            try content.record(.directory("crm"))
            return (1, 0)
        }
        let reason = IntegrityError.inconsistent(what: "the header's sources field names 'crm', 'hidden', the archive's top-level entries are 'crm'")
        expectError({ $0 == reason }) { _ = try Verifier.verifyDeep(path: archive, keyring: keys.keyring) }
        expectError({ $0 == reason }) { _ = try Restorer.restore(archivePath: archive, to: scratch.sub("t"), keyring: keys.keyring) }
    }

    /// The version 2 source description must name the top-level entries.
    @Test func aSourceDescriptionThatDoesNotMatchIsRefused() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = scratch.sub("a.car")
        let (tar, manifest) = placed([(HandTar.entry("crm/", .directory), .directory("crm"))])
        let description = SourceDescription(sources: [.init(name: "crm", origin: "/srv/crm", kind: "directory"),
                                                      .init(name: "hidden", origin: "/srv/hidden", kind: "directory")], host: nil)
        _ = try ArchiveCreator.write(to: archive, signer: keys.signer, recipients: keys.recipients, label: nil, sources: [],
                                     compressionLevel: 3, chunkRawSize: FormatV1.defaultChunkRawSize, workers: 2, now: Date(),
                                     description: description, describeAsGiven: true) { content in
            try (tar + HandTar.end).withUnsafeBytes { try content.raw($0) }
            for entry in manifest { try content.record(entry) }
            return (1, 0)
        }
        let reason = IntegrityError.inconsistent(what: "the source description names 'crm', 'hidden', the archive's top-level entries are 'crm'")
        expectError({ $0 == reason }) { _ = try Verifier.verifyDeep(path: archive, keyring: keys.keyring) }
        expectError({ $0 == reason }) { _ = try Restorer.restore(archivePath: archive, to: scratch.sub("t"), keyring: keys.keyring) }
    }
}

/// The block walk itself, on streams no writer test reaches cheaply.
@Suite struct TarStructureCheckTests {
    func feed(_ stream: [UInt8], pieces: Int = 1) throws -> TarStructureCheck {
        var check = TarStructureCheck()
        let step = max(1, stream.count / pieces)
        var i = 0
        while i < stream.count {
            let end = min(stream.count, i + step)
            try Array(stream[i..<end]).withUnsafeBytes { try check.feed($0) }
            i = end
        }
        return check
    }

    /// A file of 8 GiB or more: libarchive writes its size in base-256 in the ustar field and in a pax
    /// `size` record; the walk skips exactly that much data (here a tiny stand-in stream: the header
    /// claims 2^33 bytes, and the end marker would come after them).
    @Test func base256SizesAndPaxSizesAreFollowed() throws {
        var h = HandTar.header("crm/big.bin", .file, size: 0)
        h[124] = 0x80
        for i in 125..<136 { h[i] = 0 }
        h[131] = 0x02  // 2^33
        let stream = HandTar.pax(["size=8589934592"]) + h
        let check = try feed(stream + [UInt8](repeating: 0, count: 4096), pieces: 7)
        // Still inside the file's data: the zeros were not taken for the end marker.
        #expect(!check.ended)
    }

    @Test func theEndMarkerEndsTheWalk() throws {
        let check = try feed(HandTar.entry("crm/", .directory) + HandTar.entry("crm/a", .file, data: [1, 2, 3]) + HandTar.end, pieces: 5)
        #expect(check.ended)
    }

    @Test func twoPaxHeadersInARowAreRefused() throws {
        #expect(throws: IntegrityError.tarStream(reason: HostileV2Tests.structure("two pax headers in a row", at: 1024))) {
            _ = try feed(HandTar.pax(["path=a"]) + HandTar.pax(["path=b"]) + HandTar.entry("crm/", .directory))
        }
    }
}

/// The extractor's own checks on hardlinks, behind the manifest's (which refuse such archives first):
/// driven directly, as a writer bug that slipped past the manifest check would reach them.
@Suite struct ExtractorHardlinkTests {
    @Test func theExtractorLinksOnlyToRestoredFilesOfTheSameMode() throws {
        let scratch = try Scratch()
        try FileManager.default.createDirectory(atPath: scratch.sub("root"), withIntermediateDirectories: true)
        let x = try SafeExtractor(root: scratch.sub("root"))
        for dir in ["crm", "crm/a"] {
            try x.begin(.directory(dir))
            try x.end(.directory(dir))
        }
        #expect(throws: IntegrityError.unsafeEntry(path: "crm/b", reason: .hardlinkNotToRestoredFile)) {
            try x.begin(.link(.hardlink, "crm/b", to: "crm/a"))
        }
        let data = Array("id\n".utf8)
        let file = ManifestEntry.file("crm/f", data)
        try x.begin(file)
        let space = try x.space()
        space.copyBytes(from: data)
        try x.commit(data.count)
        try x.end(file)
        var link = ManifestEntry.link(.hardlink, "crm/g", to: "crm/f")
        link.mode = 0o600
        #expect(throws: IntegrityError.manifestMismatch(path: "crm/g", reason: .mode(tar: 0o644, manifest: 0o600))) { try x.begin(link) }
        try x.begin(.link(.hardlink, "crm/h", to: "crm/f"))
    }
}
