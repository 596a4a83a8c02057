import Foundation
import Testing
@testable import ColdArchive

/// The committed test vectors (format versions 1 and 2) must keep opening, verifying and restoring
/// exactly as recorded.
@Suite struct VectorTests {
    static let vectors = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Vectors").path
    static let versions = ["v1", "v2"]
    var archive: String { archive("v1") }
    func archive(_ version: String) -> String { "\(Self.vectors)/vector-\(version).car" }

    /// The vector's keyring, copied so its secret files get mode 0600 (git does not keep modes).
    func keyring(in scratch: Scratch) throws -> Keyring {
        try FuzzHarness.copyVectorKeyring(to: scratch.sub("keys"))
    }

    @Test(arguments: versions) func theSummaryIsAsRecorded(version: String) throws {
        let recorded = try JSONDecoder().decode(ArchiveSummary.self,
                                                from: Data(contentsOf: URL(fileURLWithPath: "\(Self.vectors)/vector-\(version).summary.json")))
        #expect(try ArchiveFile(path: archive(version)).summary == recorded)
        #expect(recorded.formatVersion == (version == "v1" ? 1 : 2))
    }

    @Test(arguments: versions) func itVerifiesWithItsSigningKey(version: String) throws {
        let trusted = try SigningPublicKey(contentsOf: "\(Self.vectors)/keys/signing.pub")
        let report = try Verifier.verify(path: archive(version), trusting: trusted)
        #expect(report.signer == trusted.fingerprint)
        #expect(report.chunksChecked == report.summary.chunkCount && report.bytesHashed == report.summary.payloadBytes)
    }

    @Test(arguments: versions) func itRestoresToTheRecordedListing(version: String) throws {
        let scratch = try Scratch()
        let ring = try keyring(in: scratch)
        _ = try Restorer.restore(archivePath: archive(version), to: scratch.sub("out"), keyring: ring)
        let lines = try String(contentsOfFile: "\(Self.vectors)/vector-\(version).listing.json", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == (version == "v1" ? 11 : 20))
        for line in lines {
            let row = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            // A name that is not UTF-8 comes as pathHex (FORMAT.md §18): reach it by its bytes.
            let fromHex = [UInt8](hex: row["pathHex"] as? String ?? "") ?? []
            let name = (row["path"] as? String) ?? NameCodec.decode(fromHex)
            let path = scratch.sub("out/\(name)")
            var st = stat()
            try #require(NameCodec.withCString(path, { lstat($0, &st) }) == 0, "\(path)")
            // Times to the nanosecond (1955-01-01 00:00:00.5 included), modes with their special bits,
            // and, when root restores a v2 archive, the owners.
            if row["type"] as? String != "symlink" {
                #expect(String(UInt16(st.st_mode) & 0o7777, radix: 8) == row["mode"] as? String, "\(path)")
            }
            let seconds = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec)))
            #expect(seconds.dropLast() + "." + String(format: "%09ld", st.st_mtim.tv_nsec) + "Z" == row["mtime"] as? String, "\(path)")
            if version == "v2" && geteuid() == 0 {
                #expect(NSNumber(value: st.st_uid) == row["uid"] as? NSNumber && NSNumber(value: st.st_gid) == row["gid"] as? NSNumber, "\(path)")
            }
            switch row["type"] as! String {
            case "file":
                let file = try OpenFile.forReading(path)
                let content = try file.readExactly(Int(try file.size()), at: 0, what: path)
                #expect(Sodium.blake2b(content).hex == row["blake2b"] as? String)
                #expect(UInt64(content.count) == (row["size"] as? NSNumber)?.uint64Value)
            case "directory":
                #expect(FileSystem.isDirectory(path))
            case "symlink":
                var target = [UInt8](repeating: 0, count: 4097)
                let n = NameCodec.withCString(path) { p in target.withUnsafeMutableBufferPointer { readlink(p, UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), 4097) } }
                let expected = (row["link"] as? String).map { Array($0.utf8) } ?? [UInt8](hex: row["linkHex"] as? String ?? "")
                #expect(n >= 0 && Array(target[0..<max(0, n)]) == expected, "\(path)")
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
