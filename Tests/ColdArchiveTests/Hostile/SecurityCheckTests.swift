import Foundation
import Testing
@testable import ColdArchive

/// One test per archive-level check of docs/SECURITY.md that no other test reaches on its own: each
/// input is valid in every respect but one, and the test asserts the exact reason, so removing the
/// check (as `make mutants` does) makes the test fail instead of letting a neighbouring check catch it.
@Suite struct SecurityCheckTests {
    /// Two archives of the same tree with the same keys: the same layout, byte for byte in length.
    func twins() throws -> (Scratch, TestKeys, String, String) {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let source = try TreeBuilder.crmTree(at: scratch.sub("src"), attachmentBytes: 20_000)
        for name in ["a.car", "b.car"] {
            var options = CreateOptions(sources: [source], output: scratch.sub(name), label: "twin")
            options.chunkRawSize = 4096
            _ = try ArchiveCreator.create(options, signer: keys.signer, recipients: keys.recipients)
        }
        return (scratch, keys, scratch.sub("a.car"), scratch.sub("b.car"))
    }

    @Test func aFileWithoutTheMagicIsNotAnArchive() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys, attachmentBytes: 1000)
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: archive)))
        bytes[0] = UInt8(ascii: "X")
        try Data(bytes).write(to: URL(fileURLWithPath: archive))
        #expect(throws: IntegrityError.notAnArchive(reason: "the file does not start with the coldarchive magic bytes")) {
            _ = try ArchiveFile(path: archive)
        }
        // A short file of something else is named for what it is not, not as a truncated archive.
        try Data("PK\u{3}\u{4} a zip, not an archive".utf8).write(to: URL(fileURLWithPath: archive))
        #expect(throws: IntegrityError.notAnArchive(reason: "the file does not start with the coldarchive magic bytes")) {
            _ = try ArchiveFile(path: archive)
        }
    }

    /// A header taken from a twin archive (same length, so every offset still fits): only the
    /// trailer's header digest says the two do not belong together, before any key is used.
    @Test func aTrailerFromAnotherArchiveIsRefused() throws {
        let (scratch, keys, a, b) = try twins()
        var surgeon = try ArchiveSurgeon(a)
        surgeon.headerBytes = try ArchiveSurgeon(b).headerBytes
        try surgeon.write(to: scratch.sub("mixed.car"))
        #expect(throws: IntegrityError.inconsistent(what: "the trailer belongs to another archive (its header digest differs)")) {
            _ = try Verifier.verify(path: scratch.sub("mixed.car"), trusting: keys.signer.publicKey)
        }
    }

    @Test func aForgedSignatureIsRefused() throws {
        let (scratch, keys, a, _) = try twins()
        var surgeon = try ArchiveSurgeon(a)
        surgeon.signature[10] ^= 0x01
        try surgeon.write(to: scratch.sub("forged.car"))
        #expect(throws: IntegrityError.badSignature) { _ = try Verifier.verify(path: scratch.sub("forged.car"), trusting: keys.signer.publicKey) }
        #expect(throws: IntegrityError.badSignature) {
            _ = try Restorer.restore(archivePath: scratch.sub("forged.car"), to: scratch.sub("out"), keyring: keys.keyring)
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("out")))
    }

    /// The auditor's keyless check names the damaged chunk and where it starts.
    @Test func aFlippedPayloadByteIsNamedByChunk() throws {
        let (scratch, keys, a, _) = try twins()
        defer { withExtendedLifetime(scratch) {} }
        let file = try ArchiveFile(path: a)
        let cursor = file.chunkTable()
        var target: (index: UInt64, offset: UInt64)?
        while let (index, offset, _) = try cursor.next(), index < 3 { target = (index, offset) }
        let (index, offset) = try #require(target)
        try flipBit(a, at: offset + 7)
        #expect(throws: IntegrityError.chunkHashMismatch(index: index, offset: offset)) {
            _ = try Verifier.verify(path: a, trusting: keys.signer.publicKey)
        }
    }

    /// Restore hashes every chunk before it writes anything: a damaged chunk is reported by the
    /// keyless hash, not later by the AEAD during extraction.
    @Test func restoreRefusesADamagedChunkBeforeWritingAnything() throws {
        let (scratch, keys, a, _) = try twins()
        let file = try ArchiveFile(path: a)
        try flipBit(a, at: file.footer.payloadOffset + 100)
        #expect(throws: IntegrityError.chunkHashMismatch(index: 0, offset: file.footer.payloadOffset)) {
            _ = try Restorer.restore(archivePath: a, to: scratch.sub("out"), keyring: keys.keyring)
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("out")))
    }

    /// The manifest is checked on its own thread while the chunks are hashed: a damaged manifest chunk
    /// (which also fails its AEAD tag there) is still reported as the damaged chunk it is, first.
    @Test func aDamagedManifestChunkIsReportedByItsHashFirst() throws {
        let (scratch, keys, a, _) = try twins()
        let file = try ArchiveFile(path: a)
        let cursor = file.chunkTable()
        var target: (index: UInt64, offset: UInt64)?
        while let (index, offset, _) = try cursor.next() {
            if offset == file.manifestOffset { target = (index, offset) }
        }
        let (index, offset) = try #require(target)
        try flipBit(a, at: offset + 40)
        #expect(throws: IntegrityError.chunkHashMismatch(index: index, offset: offset)) {
            _ = try Restorer.restore(archivePath: a, to: scratch.sub("out"), keyring: keys.keyring)
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("out")))
    }

    /// A header MAC altered and the keyless checksum recomputed (what someone who can edit the file
    /// but holds no key would do): the auditor's check passes, restore refuses by the MAC alone.
    @Test func anAlteredRecipientBlockWithAFixedChecksumFailsTheHeaderMAC() throws {
        let (scratch, keys, a, _) = try twins()
        var surgeon = try ArchiveSurgeon(a)
        var block = surgeon.recipientBytes
        let checksumStart = block.count - 32
        block[checksumStart - 5] ^= 0x01                  // inside header_mac, the 32 bytes before the checksum
        block.replaceSubrange(checksumStart..., with: Sodium.blake2b(Array(block[0..<checksumStart])))
        surgeon.recipientBytes = block
        try surgeon.write(to: scratch.sub("mac.car"))
        _ = try Verifier.verify(path: scratch.sub("mac.car"), trusting: keys.signer.publicKey)
        #expect(throws: IntegrityError.headerMACMismatch) {
            _ = try Restorer.restore(archivePath: scratch.sub("mac.car"), to: scratch.sub("out"), keyring: keys.keyring)
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("out")))
    }

    /// The signer drops the manifest's last chunk and re-signs: index and section still match, so
    /// only the last-chunk flag in the nonce tells that the archive was cut short.
    @Test func droppingTheManifestsLastChunkIsRefusedByTheLastFlag() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let root = scratch.sub("src/crm")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for i in 0..<300 { try TreeBuilder.write("\(root)/customer-\(i)-with-a-name-long-enough.json", "{}") }
        var options = CreateOptions(sources: [root], output: scratch.sub("a.car"))
        options.chunkRawSize = 4096
        _ = try ArchiveCreator.create(options, signer: keys.signer, recipients: keys.recipients)
        var surgeon = try ArchiveSurgeon(scratch.sub("a.car"))
        let count = surgeon.chunks.count
        try #require(UInt64(count) - surgeon.totals.manifestFirstChunk >= 2)
        surgeon.totals.manifestBytes -= UInt64(surgeon.rawLengths.removeLast())
        surgeon.chunks.removeLast()
        try surgeon.write(to: scratch.sub("cut.car"), resignWith: keys.signer)
        let cursor = try ArchiveFile(path: scratch.sub("cut.car")).chunkTable()
        var last: UInt64 = 0
        while let (_, offset, _) = try cursor.next() { last = offset }
        #expect(throws: IntegrityError.chunkAuthenticationFailed(index: UInt64(count - 2), offset: last)) {
            _ = try Restorer.restore(archivePath: scratch.sub("cut.car"), to: scratch.sub("out"), keyring: keys.keyring)
        }
    }

    /// The signer moves the boundary between the sections down by one chunk and re-signs: the last
    /// data chunk (all zeros, after the end-of-archive marker) becomes the manifest's first. Index and
    /// last flag still match; only the section in the AEAD's associated data tells.
    @Test func aDataChunkPassedOffAsManifestIsRefusedByTheSection() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let data = Array("id,name\n1,Ada\n".utf8)
        var tar = HostileContentTests.crm + HandTar.entry("crm/a.csv", .file, data: data)
        // Up to a whole number of 4 KiB chunks once craftArchive's end marker and the writer's own
        // (1 KiB each) follow, then one more chunk of zeros.
        tar += [UInt8](repeating: 0, count: (4096 - (tar.count + 2 * HandTar.end.count) % 4096) % 4096 + 4096)
        let archive = try craftArchive(scratch, keys: keys, tar: tar, manifest: [.directory("crm"), .file("crm/a.csv", data)],
                                       chunkRawSize: 4096)
        _ = try Verifier.verifyDeep(path: archive, keyring: keys.keyring)
        var surgeon = try ArchiveSurgeon(archive)
        let moved = Int(surgeon.totals.manifestFirstChunk) - 1
        try #require(surgeon.rawLengths[moved] == 4096 && moved >= 1)
        surgeon.totals.manifestFirstChunk -= 1
        surgeon.totals.tarBytes -= 4096
        surgeon.totals.manifestBytes += 4096
        try surgeon.write(to: scratch.sub("moved.car"), resignWith: keys.signer)
        let file = try ArchiveFile(path: scratch.sub("moved.car"))
        let cursor = file.chunkTable()
        var offset: UInt64 = 0
        while let (index, at, _) = try cursor.next(), index <= UInt64(moved) { offset = at }
        #expect(throws: IntegrityError.chunkAuthenticationFailed(index: UInt64(moved), offset: offset)) {
            _ = try Restorer.restore(archivePath: scratch.sub("moved.car"), to: scratch.sub("out"), keyring: keys.keyring)
        }
    }

    /// Rewrites one u64 field of the footer (16: payload offset, 24: trailer offset) and its checksum.
    func withFooterField(_ path: String, at field: Int, _ change: (UInt64) -> UInt64) throws -> String {
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let footer = bytes.count - FormatV1.footerSize
        var reader = ByteReader(Array(bytes[(footer + field)..<(footer + field + 8)]), what: "test")
        let value = change(try reader.u64())
        withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[footer + field + i] = b } }
        bytes.replaceSubrange((footer + 40)..<(footer + 56), with: Sodium.blake2b(Array(bytes[footer..<(footer + 40)]), outputBytes: 16))
        let out = path + ".footer"
        try Data(bytes).write(to: URL(fileURLWithPath: out))
        return out
    }

    @Test func aFooterThatMisplacesThePayloadIsRefused() throws {
        let (scratch, keys, a, _) = try twins()
        defer { withExtendedLifetime(scratch) {} }
        let payload = try ArchiveFile(path: a).footer.payloadOffset
        let damaged = try withFooterField(a, at: 16) { $0 + 1 }
        #expect(throws: IntegrityError.inconsistent(what: "the footer puts the payload at byte \(payload + 1), the header ends at \(payload)")) {
            _ = try Verifier.verify(path: damaged, trusting: keys.signer.publicKey)
        }
    }

    @Test func aFooterThatMisplacesTheTrailerIsRefused() throws {
        let (scratch, keys, a, _) = try twins()
        defer { withExtendedLifetime(scratch) {} }
        let damaged = try withFooterField(a, at: 24) { $0 + 512 }
        #expect(throws: IntegrityError.inconsistent(what: "the footer's trailer position does not match the file's length (\(fileSize(damaged)) bytes)")) {
            _ = try Verifier.verify(path: damaged, trusting: keys.signer.publicKey)
        }
    }

    /// Someone holding a file key and the signing key (a recipient gone rogue on the archiving host)
    /// alters the header, recomputes the header MAC and re-signs: the chunks were sealed under the
    /// original header's digest, so none of them opens.
    @Test func chunksAreBoundToTheirHeaderEvenForAHolderOfTheFileKey() throws {
        let (scratch, keys, a, _) = try twins()
        let original = try ArchiveFile(path: a)
        var surgeon = try ArchiveSurgeon(a)
        let label = Array("twin".utf8)
        let at = try #require((0...(surgeon.headerBytes.count - label.count)).first { Array(surgeon.headerBytes[$0..<($0 + label.count)]) == label })
        surgeon.headerBytes.replaceSubrange(at..<(at + label.count), with: Array("TWIN".utf8))
        let fileKey = try original.unwrapFileKey { try keys.keyring.encryptionKey(id: $0) }
        var block = original.recipientBlock
        block.headerMAC = RecipientBlock.mac(headerDigest: Sodium.blake2b(surgeon.headerBytes), entries: block.entriesEncoded(),
                                             macKey: fileKey.headerMACKey(salt: original.header.payloadSalt))
        surgeon.recipientBytes = block.encoded()
        try surgeon.write(to: scratch.sub("relabelled.car"), resignWith: keys.signer, headerDigestFromHeader: true)
        let forged = try ArchiveFile(path: scratch.sub("relabelled.car"))
        #expect(forged.header.label == "TWIN")
        #expect(throws: IntegrityError.chunkAuthenticationFailed(index: forged.totals.manifestFirstChunk, offset: forged.manifestOffset)) {
            _ = try Restorer.restore(archivePath: scratch.sub("relabelled.car"), to: scratch.sub("out"), keyring: keys.keyring)
        }
    }

    /// A name of restore's own staging directory at the top level would collide with it.
    @Test func aTopLevelNameLikeTheStagingDirectoryIsRefused() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let name = Restorer.stagingPrefix + "1-abc"
        let archive = try craftArchive(scratch, keys: keys, tar: HandTar.entry(name + "/", .directory), manifest: [.directory(name)])
        #expect(throws: IntegrityError.unsafeEntry(path: name, reason: .reservedName(prefix: Restorer.stagingPrefix))) {
            _ = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring)
        }
    }
}

/// The extractor is the last line of defence: the manifest checks stop every archive-borne attempt
/// to write through a link before extraction starts, so these tests reach the extractor directly,
/// as a local user racing a restore would (planting into the tree being written).
@Suite struct SafeExtractorTests {
    @Test func aSymlinkPlantedInTheStagingTreeIsNeverFollowed() throws {
        let scratch = try Scratch()
        let root = scratch.sub("staging")
        let outside = scratch.sub("outside")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let extractor = try SafeExtractor(root: root, writers: 1)
        defer { extractor.shutdown() }
        try extractor.begin(.directory("crm"))
        // Someone replaces the directory just made with a link to elsewhere.
        try FileManager.default.removeItem(atPath: "\(root)/crm")
        try FileManager.default.createSymbolicLink(atPath: "\(root)/crm", withDestinationPath: outside)
        #expect(throws: IntegrityError.unsafeEntry(path: "crm/a.csv", reason: .pathThroughSymlink)) {
            try extractor.begin(.file("crm/a.csv", Array("x".utf8)))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
    }

    @Test func anExistingFileIsNeverReplacedOrWrittenThrough() throws {
        let scratch = try Scratch()
        let root = scratch.sub("staging")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("victim.txt"), "precious")
        try FileManager.default.createSymbolicLink(atPath: "\(root)/a.csv", withDestinationPath: scratch.sub("victim.txt"))
        try TreeBuilder.write("\(root)/b.csv", "already here")
        for name in ["a.csv", "b.csv"] {
            let extractor = try SafeExtractor(root: root, writers: 1)
            defer { extractor.shutdown() }
            let data = Array("new".utf8)
            #expect(throws: IntegrityError.unsafeEntry(path: name, reason: .appearsTwice)) {
                try extractor.begin(.file(name, data))
                let space = try extractor.space()
                space.copyBytes(from: data)
                try extractor.commit(data.count)
                try extractor.end(.file(name, data))
                try extractor.finishContent()
            }
        }
        #expect(try String(contentsOfFile: scratch.sub("victim.txt"), encoding: .utf8) == "precious")
        #expect(try String(contentsOfFile: "\(root)/b.csv", encoding: .utf8) == "already here")
    }
}
