import Foundation
import Testing
@testable import ColdArchive

/// `restore --include` (issue 19): only the matching entries and what they need, reading of the data
/// section only the chunks that hold them — every chunk it reads checked, the others not read at all.
@Suite struct SelectiveRestoreTests {
    /// A CRM tree whose 2 MB attachment fills most of an archive cut into 64 KiB chunks.
    static func archive(_ scratch: Scratch, keys: TestKeys) throws -> (archive: String, source: String) {
        let path = try makeArchive(scratch, keys: keys, chunkRawSize: 64 << 10, attachmentBytes: 2_000_000)
        return (path, scratch.sub("src-a.car/crm"))
    }

    static func restored(_ root: String) throws -> [String] {
        try TreeSnapshot(root).description.split(separator: "\n").map(String.init)
    }

    @Test func onePathRestoresExactlyItAndItsParentsReadingFewChunks() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let (archive, source) = try Self.archive(scratch, keys: keys)
        let report = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring, include: ["crm/tickets"])
        #expect(try Self.restored(scratch.sub("out")) == ["crm", "crm/tickets", "crm/tickets/T-1001.json", "crm/tickets/Zürich–Straße.json",
                                                          "crm/tickets/latest.json"])
        // Byte for byte and metadata for metadata, the parents included.
        let original = try TreeSnapshot(source), copy = try TreeSnapshot("\(scratch.sub("out"))/crm")
        #expect(copy.nodes.keys.allSatisfy { copy.nodes[$0] == original.nodes[$0] }, "\(copy) vs \(original)")
        #expect(report.entries == 5 && report.hardlinkTargets == [])
        let all = try #require(report.dataChunks), read = try #require(report.dataChunksRead)
        #expect(all > 30 && read <= 2, "read \(read) of \(all) data chunks")
        #expect(report.bytesRead < fileSize(archive) / 8, "read \(report.bytesRead) of \(fileSize(archive)) bytes")
    }

    @Test func aNamePatternMatchesInEveryDirectoryAndAHardlinkBringsItsFile() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let (archive, _) = try Self.archive(scratch, keys: keys)
        _ = try Restorer.restore(archivePath: archive, to: scratch.sub("json"), keyring: keys.keyring, include: ["*.json"])
        #expect(try Self.restored(scratch.sub("json")) == ["crm", "crm/tickets", "crm/tickets/T-1001.json", "crm/tickets/Zürich–Straße.json",
                                                           "crm/tickets/latest.json"])
        // customers-copy.csv sorts first ('-' < '.'), so it is the file and customers.csv the hardlink.
        let linked = try Restorer.restore(archivePath: archive, to: scratch.sub("link"), keyring: keys.keyring, include: ["crm/exports/customers.csv"])
        #expect(try Self.restored(scratch.sub("link")) == ["crm", "crm/exports", "crm/exports/customers-copy.csv", "crm/exports/customers.csv"])
        #expect(linked.hardlinkTargets == ["crm/exports/customers-copy.csv"])
        let snapshot = try TreeSnapshot(scratch.sub("link"))
        #expect(snapshot["crm/exports/customers-copy.csv"]?.inodeGroup != nil
                && snapshot["crm/exports/customers-copy.csv"]?.inodeGroup == snapshot["crm/exports/customers.csv"]?.inodeGroup)
    }

    /// A damaged chunk the selection does not need is never read; one it needs stops the restore before
    /// the target changes.
    @Test func onlyTheChunksReadAreCheckedAndADamagedOneLeavesTheTargetAlone() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let (archive, _) = try Self.archive(scratch, keys: keys)
        try flipBit(archive, at: fileSize(archive) / 3)   // inside the attachment's chunks
        let tickets = try Restorer.restore(archivePath: archive, to: scratch.sub("tickets"), keyring: keys.keyring, include: ["crm/tickets"])
        #expect(tickets.entries == 5)
        try FileManager.default.createDirectory(atPath: scratch.sub("target"), withIntermediateDirectories: false)
        try TreeBuilder.write(scratch.sub("target/keep.txt"), "mine\n")
        let before = try TreeSnapshot(scratch.sub("target"))
        expectError({ if case .chunkHashMismatch = $0 { true } else { false } }) {
            _ = try Restorer.restore(archivePath: archive, to: scratch.sub("target"), keyring: keys.keyring, force: true, include: ["scan.pdf"])
        }
        #expect(try TreeSnapshot(scratch.sub("target")).ignoringDirectoryTimes == before.ignoringDirectoryTimes)
    }

    @Test func theCommandSaysWhatItReadAndRefusesAPatternThatMatchesNothing() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let (archive, _) = try Self.archive(scratch, keys: keys)
        let run = try CLI.run(["restore", archive, "--keyring", keys.directory, "--to", scratch.sub("out"), "--include", "crm/tickets/T-1001.json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("restored 3 entries"), "\(run.stdout)")
        #expect(run.stdout.range(of: #"read .* of the archive: 1 of its \d+ data chunks, and the manifest"#, options: .regularExpression) != nil, "\(run.stdout)")
        let none = try CLI.run(["restore", archive, "--keyring", keys.directory, "--to", scratch.sub("none"), "--include", "crm/nothing"])
        #expect(none.status == 2 && none.stderr.contains("no entry of '\(archive)' matches 'crm/nothing'; nothing was restored"), "\(none.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("none")))
    }
}
