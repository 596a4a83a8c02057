import Foundation
import Testing
@testable import ColdArchive

/// The tampering campaign (issue 5): every kind of damage or forgery is an integrity failure that
/// releases no plaintext and writes nothing. `make hostile` sets COLDARCHIVE_HOSTILE=full to run
/// every bit of every byte instead of one bit per byte and a sample of the payload.
@Suite struct TamperCampaignTests {
    static let full = ProcessInfo.processInfo.environment["COLDARCHIVE_HOSTILE"] == "full"

    /// A small archive with several data chunks of equal raw size, and its keys.
    final class Fixture {
        let scratch: Scratch
        let keys: TestKeys
        let path: String
        let bytes: [UInt8]
        let file: ArchiveFile

        init(name: String = "a.car", keys: TestKeys? = nil, scratch: Scratch? = nil) throws {
            self.scratch = try scratch ?? Scratch()
            self.keys = try keys ?? TestKeys(in: self.scratch)
            let source = self.scratch.sub("src-\(name)")
            try FileManager.default.createDirectory(atPath: "\(source)/crm", withIntermediateDirectories: true)
            try TreeBuilder.write("\(source)/crm/scan.bin", bytes: TreeBuilder.noise(5 * 4096 + 100, seed: UInt64(name.count)))
            try TreeBuilder.write("\(source)/crm/notes.txt", "customer notes")
            var options = CreateOptions(sources: ["\(source)/crm"], output: self.scratch.sub(name))
            options.chunkRawSize = 4096
            _ = try ArchiveCreator.create(options, signer: self.keys.signer, recipients: self.keys.recipients)
            path = self.scratch.sub(name)
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            file = try ArchiveFile(path: path)
        }

        /// Writes `bytes` as a damaged copy and checks that the keyless verify refuses it.
        func expectVerifyRefuses(_ damaged: [UInt8], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let copy = scratch.sub("damaged.car")
            try Data(damaged).write(to: URL(fileURLWithPath: copy))
            expectIntegrityFailure(Comment(rawValue: what), sourceLocation: sourceLocation) {
                _ = try Verifier.verify(path: copy, trusting: keys.signer.publicKey, workers: 1)
            }
        }

        /// The full keyed path: restore must refuse, write nothing, and leave no target behind.
        func expectRestoreRefuses(_ damaged: [UInt8], _ what: String, containing: String? = nil,
                                  sourceLocation: SourceLocation = #_sourceLocation) throws {
            let copy = scratch.sub("damaged.car")
            try Data(damaged).write(to: URL(fileURLWithPath: copy))
            let target = scratch.sub("target-\(UUID().uuidString.prefix(6))")
            do {
                _ = try Restorer.restore(archivePath: copy, to: target, keyring: keys.keyring, workers: 1)
                Issue.record("restore accepted: \(what)", sourceLocation: sourceLocation)
            } catch let error as ColdArchiveError {
                #expect(error.kind == .integrity, "\(what): \(error)", sourceLocation: sourceLocation)
                if let containing {
                    #expect(error.description.contains(containing), "\(what): \(error)", sourceLocation: sourceLocation)
                }
            }
            #expect(!FileManager.default.fileExists(atPath: target), "\(what): target left behind", sourceLocation: sourceLocation)
        }
    }

    @Test func truncationAtEveryByteOfHeaderAndTrailerAndAtEveryChunkBoundary() throws {
        let f = try Fixture()
        let payload = Int(f.file.footer.payloadOffset), trailer = Int(f.file.footer.trailerOffset)
        var cuts = Set(0..<payload + 1)
        cuts.formUnion(trailer..<f.bytes.count)
        var boundary = payload
        let cursor = f.file.chunkTable()
        while let (_, _, record) = try cursor.next() {
            boundary += Int(record.sealedLength)
            cuts.formUnion([boundary - 1, boundary, boundary + 1])
        }
        for cut in cuts.sorted() where cut < f.bytes.count {
            try f.expectVerifyRefuses(Array(f.bytes[0..<cut]), "truncated to \(cut) bytes")
        }
        try f.expectRestoreRefuses(Array(f.bytes[0..<payload]), "header only")
        try f.expectRestoreRefuses([], "zero-length file")
    }

    @Test func aBitFlipAtEveryByteOfHeaderAndTrailer() throws {
        let f = try Fixture()
        let payload = Int(f.file.footer.payloadOffset), trailer = Int(f.file.footer.trailerOffset)
        let positions = Array(0..<payload) + Array(trailer..<f.bytes.count)
        for position in positions {
            for bit in (Self.full ? Array(0..<8) : [position % 8]) {
                var damaged = f.bytes
                damaged[position] ^= 1 << bit
                try f.expectVerifyRefuses(damaged, "bit \(bit) of byte \(position)")
            }
        }
        // The keyed path on a sample of the same positions.
        for position in stride(from: 0, to: positions.count, by: 37).map({ positions[$0] }) {
            var damaged = f.bytes
            damaged[position] ^= 0x04
            try f.expectRestoreRefuses(damaged, "byte \(position)")
        }
    }

    @Test func bitFlipsAtSampledPayloadPositions() throws {
        let f = try Fixture()
        let payload = Int(f.file.footer.payloadOffset), trailer = Int(f.file.footer.trailerOffset)
        // Seeded: a failure names positions that the next run tries again.
        var generator = SplitMix64(seed: 0xC01D_A4C4)
        let positions = Self.full ? Array(payload..<trailer) : (0..<300).map { _ in Int.random(in: payload..<trailer, using: &generator) }
        for position in positions {
            var damaged = f.bytes
            damaged[position] ^= 1 << (position % 8)
            try f.expectVerifyRefuses(damaged, "payload byte \(position)")
        }
        for position in positions.prefix(20) {
            var damaged = f.bytes
            damaged[position] ^= 0x80
            try f.expectRestoreRefuses(damaged, "payload byte \(position)", containing: "chunk")
        }
    }

    // MARK: the compromised host: chunks moved around and the trailer re-signed with the real key

    @Test func reorderedChunksAreRefusedEvenWhenResigned() throws {
        let f = try Fixture()
        var surgeon = try ArchiveSurgeon(f.path)
        #expect(f.file.totals.manifestFirstChunk >= 4)
        surgeon.chunks.swapAt(1, 2)
        try f.expectVerifyRefuses(surgeon.assemble(), "reordered, not re-signed")
        try f.expectRestoreRefuses(surgeon.assemble(resignWith: f.keys.signer), "reordered and re-signed", containing: "failed authentication")
    }

    @Test func aDuplicatedChunkIsRefusedEvenWhenResigned() throws {
        let f = try Fixture()
        var surgeon = try ArchiveSurgeon(f.path)
        surgeon.chunks.insert(surgeon.chunks[1], at: 2)
        surgeon.rawLengths.insert(surgeon.rawLengths[1], at: 2)
        surgeon.totals.manifestFirstChunk += 1
        surgeon.totals.tarBytes += UInt64(surgeon.rawLengths[1])
        try f.expectVerifyRefuses(surgeon.assemble(), "duplicated, not re-signed")
        try f.expectRestoreRefuses(surgeon.assemble(resignWith: f.keys.signer), "duplicated and re-signed", containing: "failed authentication")
    }

    @Test func aRemovedChunkIsRefusedEvenWhenResigned() throws {
        let f = try Fixture()
        var surgeon = try ArchiveSurgeon(f.path)
        let raw = surgeon.rawLengths.remove(at: 1)
        surgeon.chunks.remove(at: 1)
        surgeon.totals.manifestFirstChunk -= 1
        surgeon.totals.tarBytes -= UInt64(raw)
        try f.expectVerifyRefuses(surgeon.assemble(), "removed, not re-signed")
        try f.expectRestoreRefuses(surgeon.assemble(resignWith: f.keys.signer), "removed and re-signed", containing: "failed authentication")
    }

    @Test func droppingTheLastChunkIsRefusedEvenWhenResigned() throws {
        let f = try Fixture()
        var surgeon = try ArchiveSurgeon(f.path)
        // Cut the archive after its data: the manifest's only chunk goes, and the new last chunk
        // was sealed without the last-chunk flag.
        let raw = surgeon.rawLengths.removeLast()
        surgeon.chunks.removeLast()
        surgeon.totals.manifestFirstChunk -= 1
        surgeon.totals.manifestBytes -= UInt64(raw)
        try f.expectRestoreRefuses(surgeon.assemble(resignWith: f.keys.signer), "tail dropped and re-signed")
    }

    @Test func aChunkFromAnotherArchiveSealedToTheSameKeyIsRefused() throws {
        let f = try Fixture()
        let other = try Fixture(name: "b.car", keys: f.keys, scratch: f.scratch)
        var surgeon = try ArchiveSurgeon(f.path)
        let donor = try ArchiveSurgeon(other.path)
        surgeon.chunks[1] = donor.chunks[1]
        try f.expectVerifyRefuses(surgeon.assemble(), "foreign chunk, not re-signed")
        try f.expectRestoreRefuses(surgeon.assemble(resignWith: f.keys.signer), "foreign chunk, re-signed", containing: "failed authentication")
    }

    @Test func swappingHeaderRecipientsTrailerOrSignatureBetweenArchivesIsRefused() throws {
        let f = try Fixture()
        let other = try Fixture(name: "b.car", keys: f.keys, scratch: f.scratch)
        let a = try ArchiveSurgeon(f.path), b = try ArchiveSurgeon(other.path)

        var header = a; header.headerBytes = b.headerBytes
        try f.expectRestoreRefuses(header.assemble(), "header from another archive")
        try f.expectRestoreRefuses(header.assemble(resignWith: f.keys.signer, headerDigestFromHeader: true), "header swapped and re-signed")

        var recipients = a; recipients.recipientBytes = b.recipientBytes
        // Its checksum is sound, so the keyless check passes; the header MAC catches it.
        try f.expectRestoreRefuses(recipients.assemble(), "recipient block from another archive", containing: "header failed authentication")

        var trailer = a; trailer.totals = b.totals
        try f.expectRestoreRefuses(trailer.assemble(), "trailer from another archive")

        var signature = a; signature.signature = b.signature
        try f.expectVerifyRefuses(signature.assemble(), "signature from another archive")
    }

    @Test func versionDowngradeAndUnknownSuiteAreRefused() throws {
        let f = try Fixture()
        var downgraded = f.bytes
        downgraded[8] = 0
        try f.expectRestoreRefuses(downgraded, "format version 0", containing: "version 0")
        var future = f.bytes
        future[8] = 3
        try f.expectRestoreRefuses(future, "format version 3", containing: "version 3")
        // A version 2 archive relabelled version 1 in its prelude: the footer still says 2.
        var relabelled = f.bytes
        relabelled[8] = 1
        try f.expectRestoreRefuses(relabelled, "prelude relabelled version 1", containing: "the prelude says format version 1, the footer 2")
        // suite is the first header field: tag (2) + length (4) after the 16-byte prelude.
        var suite = try ArchiveSurgeon(f.path)
        suite.headerBytes[22] = 9
        try f.expectRestoreRefuses(suite.assemble(resignWith: f.keys.signer, headerDigestFromHeader: true), "unknown suite", containing: "suite 9")
    }

    @Test(arguments: [UInt64.max, UInt64.max - 55, 1 << 63, 1 << 40])
    func footerOffsetsNear2To64AreRefusedWithoutACrash(value: UInt64) throws {
        let f = try Fixture()
        for field in [16, 24, 32] {
            var damaged = f.bytes
            let footer = damaged.count - 56
            withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { damaged[footer + field + i] = b } }
            damaged.replaceSubrange((footer + 40)..<(footer + 56), with: Sodium.blake2b(Array(damaged[footer..<(footer + 40)]), outputBytes: 16))
            try f.expectRestoreRefuses(damaged, "footer field \(field) = \(value)")
        }
    }

    @Test(arguments: [UInt32.max, UInt32.max - 15, 1 << 31])
    func chunkLengthsNear2To32AreRefusedBeforeAllocating(value: UInt32) throws {
        let f = try Fixture()
        let surgeon = try ArchiveSurgeon(f.path)
        // A re-signed table whose first record claims an absurd sealed length.
        var bytes = surgeon.assemble(resignWith: f.keys.signer)
        let tableStart = Int(f.file.footer.trailerOffset) + FormatV1.trailerFixedSize
        withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[tableStart + i] = b } }
        try f.expectRestoreRefuses(bytes, "sealed_len \(value)", containing: "sealed_len of chunk 0 is \(value), outside the allowed")
    }
}

/// A seeded generator (SplitMix64), so sampled positions are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
