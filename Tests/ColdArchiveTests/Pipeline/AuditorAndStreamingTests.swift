import Foundation
import Testing
@testable import ColdArchive

@Suite struct AuditorTests {
    @Test func anAuditorVerifiesWithTheSigningPublicKeyAlone() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys, chunkRawSize: 64 << 10)
        // The auditor has a copy of signing.pub and nothing else.
        try FileManager.default.createDirectory(atPath: scratch.sub("auditor"), withIntermediateDirectories: true)
        try copyFile("\(keys.directory)/signing.pub", scratch.sub("auditor/signing.pub"))
        let trusted = try SigningPublicKey(contentsOf: scratch.sub("auditor/signing.pub"))
        let report = try Verifier.verify(path: archive, trusting: trusted)
        #expect(report.chunksChecked == report.summary.chunkCount)
        #expect(report.bytesHashed == report.summary.payloadBytes)
        #expect(report.entriesChecked == nil)
        #expect(report.signer == keys.signer.publicKey.fingerprint)
    }

    @Test func theAuditorsSummaryRevealsNoNames() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        for secret in ["customers.csv", "Customer 17", "T-1001", "Refund"] {
            #expect(bytes.range(of: Data(secret.utf8)) == nil, "'\(secret)' is readable in the archive file")
        }
    }
}

@Suite struct StreamingTests {
    /// Memory is bounded by design: however many chunks an archive has, only a handful are ever held
    /// at once, in create and in restore.
    @Test func chunksInFlightStayBoundedWhateverTheSize() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys, chunkRawSize: 4096, attachmentBytes: 2 << 20)
        let chunks = try ArchiveFile(path: archive).summary.chunkCount
        #expect(chunks > 500)
        var options = CreateOptions(sources: [scratch.sub("src-a.car/crm")], output: scratch.sub("b.car"))
        options.chunkRawSize = 4096
        options.workers = 2
        let created = try ArchiveCreator.create(options, signer: keys.signer, recipients: keys.recipients)
        #expect(created.peakChunksInFlight <= 2 * 2 + 1 + 2)
        let restored = try Restorer.restore(archivePath: scratch.sub("b.car"), to: scratch.sub("out"), keyring: keys.keyring, workers: 2)
        #expect(restored.peakChunksInFlight <= 2 * 2 + 2)
    }

    @Test func thePipelineKeepsOrderAndItsBound() throws {
        let pipeline = OrderedPipeline<Int, Int>(workers: 3, maxInFlight: 5) {
            { value in
                // Uneven, repeatable stage times, so later items often finish first; the order must hold
                // whatever the timing (the delay shuffles completions, it is not what the test relies on).
                usleep(UInt32(value * 7_919 % 2_000))
                return value * 2
            }
        }
        var seen: [Int] = []
        for i in 0..<200 { try pipeline.submit(i) { seen.append($0) } }
        try pipeline.finish { seen.append($0) }
        #expect(seen == (0..<200).map { $0 * 2 })
        #expect(pipeline.peakInFlight <= 5)
    }

    @Test func aFailingStageCancelsThePipeline() throws {
        struct Boom: Error {}
        let pipeline = OrderedPipeline<Int, Int>(workers: 2, maxInFlight: 4) {
            { value in
                if value == 37 { throw Boom() }
                return value
            }
        }
        var next = 0
        #expect(throws: Boom.self) {
            while try pipeline.next(refill: { next < 1000 ? { next += 1; return next - 1 }() : nil }) != nil {}
        }
        #expect(next < 1000)
    }
}
