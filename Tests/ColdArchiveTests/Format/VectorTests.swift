import Foundation
import Testing
@testable import ColdArchive

/// The committed v1 test vector must keep opening, verifying and restoring exactly as recorded.
@Suite struct VectorTests {
    static let vectors = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Vectors").path
    var archive: String { "\(Self.vectors)/vector-v1.car" }

    /// The vector's keyring, copied so its secret files get mode 0600 (git does not keep modes).
    func keyring(in scratch: Scratch) throws -> Keyring {
        try FuzzHarness.copyVectorKeyring(to: scratch.sub("keys"))
    }

    @Test func theSummaryIsAsRecorded() throws {
        let recorded = try JSONDecoder().decode(ArchiveSummary.self,
                                                from: Data(contentsOf: URL(fileURLWithPath: "\(Self.vectors)/vector-v1.summary.json")))
        #expect(try ArchiveFile(path: archive).summary == recorded)
    }

    @Test func itVerifiesWithItsSigningKey() throws {
        let trusted = try SigningPublicKey(contentsOf: "\(Self.vectors)/keys/signing.pub")
        let report = try Verifier.verify(path: archive, trusting: trusted)
        #expect(report.signer == trusted.fingerprint)
        #expect(report.chunksChecked == report.summary.chunkCount && report.bytesHashed == report.summary.payloadBytes)
    }

    @Test func itRestoresToTheRecordedListing() throws {
        let scratch = try Scratch()
        let ring = try keyring(in: scratch)
        _ = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: ring)
        let lines = try String(contentsOfFile: "\(Self.vectors)/vector-v1.listing.json", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 11)
        for line in lines {
            let row = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let path = scratch.sub("out/\(row["path"] as! String)")
            switch row["type"] as! String {
            case "file":
                let content = try Data(contentsOf: URL(fileURLWithPath: path))
                #expect(Sodium.blake2b(Array(content)).hex == row["blake2b"] as? String)
                #expect(UInt64(content.count) == (row["size"] as? NSNumber)?.uint64Value)
            case "directory":
                #expect(FileSystem.isDirectory(path))
            case "symlink":
                #expect(try FileManager.default.destinationOfSymbolicLink(atPath: path) == row["link"] as? String)
            case "hardlink":
                let a = try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int
                let b = try FileManager.default.attributesOfItem(atPath: scratch.sub("out/\(row["link"] as! String)"))[.systemFileNumber] as? Int
                #expect(a == b)
            default:
                Issue.record("unknown type in listing")
            }
        }
    }

    @Test func aFlippedBitInTheVectorIsCaught() throws {
        let scratch = try Scratch()
        try copyFile(archive, scratch.sub("v.car"))
        try flipBit(scratch.sub("v.car"), at: 700)
        let trusted = try SigningPublicKey(contentsOf: "\(Self.vectors)/keys/signing.pub")
        expectIntegrityFailure { _ = try Verifier.verify(path: scratch.sub("v.car"), trusting: trusted) }
    }
}
