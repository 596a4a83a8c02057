import Foundation
import Testing
@testable import ColdArchive

/// Damage anywhere is an integrity failure (exit 1), and a restore of a damaged archive leaves its
/// target exactly as it was.
@Suite struct TamperTests {
    /// Where to damage an archive, as a function of its layout.
    enum Region: String, CaseIterable, CustomTestStringConvertible {
        case magic, version, headerLength, headerField, headerTail, recipientCount, wrappedKey, headerMAC, recipientChecksum
        case firstChunk, middleChunk, lastChunk, trailerMagic, trailerDigest, chunkCount, totals, chunkTable, signature
        case footerOffsets, footerChecksum

        var testDescription: String { rawValue }

        func offset(in file: ArchiveFile) -> UInt64 {
            let headerEnd = 16 + UInt64(file.header.encoded().count - 16)
            let trailer = file.footer.trailerOffset
            let payload = file.footer.payloadOffset
            switch self {
            case .magic: return 1
            case .version: return 8
            case .headerLength: return 13
            case .headerField: return 16 + 6 + 1
            case .headerTail: return headerEnd - 3
            case .recipientCount: return headerEnd + 4
            case .wrappedKey: return headerEnd + 4 + 2 + 1 + 16 + 2 + 40
            case .headerMAC: return payload - 64 + 5
            case .recipientChecksum: return payload - 5
            case .firstChunk: return payload + 3
            case .middleChunk: return payload + file.totals.payloadBytes / 2
            case .lastChunk: return trailer - 2
            case .trailerMagic: return trailer + 1
            case .trailerDigest: return trailer + 8 + 5
            case .chunkCount: return trailer + 40
            case .totals: return trailer + 72
            case .chunkTable: return trailer + 96 + 40 + 10
            case .signature: return file.fileSize - 56 - 30
            case .footerOffsets: return file.fileSize - 56 + 17
            case .footerChecksum: return file.fileSize - 3
            }
        }
    }

    /// A restore target holding one file: after a refused restore it must hold exactly that.
    func prepareTarget(_ scratch: Scratch) throws -> (String, TreeSnapshot) {
        let target = scratch.sub("target")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try TreeBuilder.write("\(target)/existing.txt", "keep")
        return (target, try TreeSnapshot(target))
    }

    func expectRefusedEverywhere(_ archive: String, keys: TestKeys, scratch: Scratch, sourceLocation: SourceLocation = #_sourceLocation) throws {
        expectIntegrityFailure(sourceLocation: sourceLocation) { _ = try Verifier.verify(path: archive, trusting: keys.signer.publicKey) }
        expectIntegrityFailure(sourceLocation: sourceLocation) { _ = try Verifier.verifyDeep(path: archive, keyring: keys.keyring) }
        let (target, before) = try prepareTarget(scratch)
        expectIntegrityFailure(sourceLocation: sourceLocation) {
            _ = try Restorer.restore(archivePath: archive, to: target, keyring: keys.keyring, force: true)
        }
        #expect(try TreeSnapshot(target) == before, "the restore target changed", sourceLocation: sourceLocation)
        expectIntegrityFailure(sourceLocation: sourceLocation) {
            _ = try Restorer.restore(archivePath: archive, to: scratch.sub("fresh"), keyring: keys.keyring)
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("fresh")), "a failed restore left a new target behind",
                sourceLocation: sourceLocation)
    }

    @Test(arguments: Region.allCases)
    func aFlippedBitIsAnIntegrityFailure(region: Region) throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys, chunkRawSize: 64 << 10)
        let offset = region.offset(in: try ArchiveFile(path: archive))
        try flipBit(archive, at: offset)
        try expectRefusedEverywhere(archive, keys: keys, scratch: scratch)
    }

    @Test(arguments: [0, 1, 7, 15, 16, 100, 500, -1, -55, -57, -200])
    func truncationIsAnIntegrityFailure(cut: Int) throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys)
        let size = fileSize(archive)
        let keep = cut >= 0 ? UInt64(cut) : size - UInt64(-cut)
        try FileHandle(forUpdating: URL(fileURLWithPath: archive)).truncate(atOffset: keep)
        try expectRefusedEverywhere(archive, keys: keys, scratch: scratch)
    }

    @Test(arguments: [Data([0]), Data("x\n".utf8), Data(count: 56), Data(count: 4096)])
    func appendedBytesAreAnIntegrityFailure(extra: Data) throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: archive))
        try handle.seekToEnd()
        try handle.write(contentsOf: extra)
        try handle.close()
        try expectRefusedEverywhere(archive, keys: keys, scratch: scratch)
    }

    @Test func anArchiveCutAtAChunkBoundaryWithAFooterCopiedBackIsRefused() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys, chunkRawSize: 64 << 10)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        let file = try ArchiveFile(path: archive)
        let cutAt = Int(file.footer.payloadOffset) + 5000
        var forged = bytes.prefix(cutAt)
        forged.append(bytes.suffix(Int(file.footer.trailerLength) + FormatV1.footerSize))
        try forged.write(to: URL(fileURLWithPath: archive))
        try expectRefusedEverywhere(archive, keys: keys, scratch: scratch)
    }

    @Test func anArchiveSignedByAnotherKeyIsRefused() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let intruder = try TestKeys(in: scratch, name: "intruder")
        // Sealed to our encryption key, but signed by someone else's key.
        let source = try TreeBuilder.crmTree(at: scratch.sub("src"))
        _ = try ArchiveCreator.create(CreateOptions(sources: [source], output: scratch.sub("forged.car")),
                                      signer: intruder.signer, recipients: keys.recipients)
        #expect(throws: IntegrityError.untrustedSigner(fingerprint: intruder.signer.publicKey.fingerprint,
                                                       trusted: keys.signer.publicKey.fingerprint)) {
            try Verifier.verify(path: scratch.sub("forged.car"), trusting: keys.signer.publicKey)
        }
        try expectRefusedEverywhere(scratch.sub("forged.car"), keys: keys, scratch: scratch)
    }

    @Test func anEmptyFileIsRefused() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        try Data().write(to: URL(fileURLWithPath: scratch.sub("empty.car")))
        try expectRefusedEverywhere(scratch.sub("empty.car"), keys: keys, scratch: scratch)
    }

    @Test func aChunkTableWithAHugeCountIsRefusedWithoutAllocating() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys)
        let file = try ArchiveFile(path: archive)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: archive))
        try handle.seek(toOffset: file.footer.trailerOffset + 40)
        try handle.write(contentsOf: Data([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))
        try handle.close()
        #expect(throws: IntegrityError.outOfRange(field: "chunk_count", value: UInt64(Int64.max), min: 2, max: FormatV1.maxChunkCount)) {
            _ = try ArchiveFile(path: archive)
        }
        try expectRefusedEverywhere(archive, keys: keys, scratch: scratch)
    }
}
