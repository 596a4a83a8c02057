import Foundation
import Testing
@testable import ColdArchive

@Suite struct RoundTripTests {
    @Test func restoreReproducesTheTreeWithFullFidelity() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let source = try TreeBuilder.crmTree(at: scratch.sub("src"))
        let report = try ArchiveCreator.create(CreateOptions(sources: [source], output: scratch.sub("a.car"), label: "monthly"),
                                               signer: keys.signer, recipients: keys.recipients)
        #expect(report.summary.entryCount == 12)
        #expect(report.warnings.isEmpty)

        let restored = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring)
        #expect(restored.entries == 12)
        #expect(restored.topLevel == ["crm"])
        let before = try TreeSnapshot(source)
        let after = try TreeSnapshot(scratch.sub("out/crm"))
        #expect(before == after)
        #expect(after["exports/customers.csv"]?.mtimeNanoseconds == 123_456_789)
        #expect(after["tickets/Zürich–Straße.json"]?.mode == 0o600)
        #expect(after["tickets/latest.json"]?.link == "T-1001.json")
        #expect(after["exports/customers-copy.csv"]?.inodeGroup != nil)
        #expect(after["empty-dir"]?.type == "dir")
        // Nothing but the restored tree is left in the target: no staging directory.
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.sub("out")) == ["crm"])
    }

    /// Names that differ only in Unicode normalisation are different files (issue 15, input 0: such
    /// an archive was signed, then refused as "out of order or appears twice"). Every set here is
    /// canonically equivalent, so Swift's `String ==` calls its members equal.
    static let equivalentNames: [[String]] = [
        ["caf\u{E9}.txt", "cafe\u{301}.txt"],                                   // é precomposed and decomposed
        ["\u{C5}ngstr\u{F6}m", "\u{212B}ngstr\u{F6}m", "A\u{30A}ngstro\u{308}m"],  // Å, the Ångström sign, A + ring
        ["\u{D55C}.csv", "\u{1112}\u{1161}\u{11AB}.csv"],                          // a Hangul syllable and its jamo
        ["\u{1E69}", "s\u{323}\u{307}", "s\u{307}\u{323}"],                        // combining marks in either order
        ["Z\u{FC}rich", "Zu\u{308}rich"],                                         // directories, each with files inside
    ]

    /// `root` holding every set of `equivalentNames` (the last set as directories with a file each), a
    /// hardlink and a symlink naming one form of a pair; returns the number of entries below `root`.
    func equivalentNamesTree(at root: String) throws -> Int {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for (set, names) in Self.equivalentNames.enumerated() {
            for (i, name) in names.enumerated() {
                if set == Self.equivalentNames.count - 1 {
                    try FileManager.default.createDirectory(atPath: "\(root)/\(name)", withIntermediateDirectories: true)
                    try TreeBuilder.write("\(root)/\(name)/ticket.json", "{\"form\": \(i)}")
                } else {
                    try TreeBuilder.write("\(root)/\(name)", "form \(i) of set \(set)")
                }
            }
        }
        #expect(link("\(root)/cafe\u{301}.txt", "\(root)/link-to-decomposed.txt") == 0)
        #expect(symlink("caf\u{E9}.txt", "\(root)/points-to-precomposed") == 0)
        let names = Self.equivalentNames.reduce(0) { $0 + $1.count }
        return names + Self.equivalentNames[Self.equivalentNames.count - 1].count + 2
    }

    @Test func canonicallyEquivalentNamesAreDifferentFiles() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let root = scratch.sub("src/crm")
        let count = try equivalentNamesTree(at: root)
        let before = try TreeSnapshot(root)
        #expect(before.nodes.count == count)

        let report = try ArchiveCreator.create(CreateOptions(sources: [root], output: scratch.sub("a.car")), signer: keys.signer,
                                               recipients: keys.recipients)
        #expect(report.warnings.isEmpty)
        #expect(try Verifier.verifyDeep(path: scratch.sub("a.car"), keyring: keys.keyring).entriesChecked == UInt64(count + 1))
        _ = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring, checkContent: true)
        #expect(try TreeSnapshot(scratch.sub("out/crm")) == before)
    }

    /// The independent decoder (Tests/Interop, written from FORMAT.md) restores the same names exactly:
    /// the spec says how to read tar names that libarchive composed.
    @Test func theIndependentDecoderRestoresEquivalentNamesExactly() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let root = scratch.sub("src/crm")
        _ = try equivalentNamesTree(at: root)
        _ = try ArchiveCreator.create(CreateOptions(sources: [root], output: scratch.sub("a.car")), signer: keys.signer,
                                      recipients: keys.recipients)
        let decoder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Interop/decode.py").path
        let result = try CLI.run([decoder, "--extract", scratch.sub("a.car"), "--keyring", keys.directory, "--to", scratch.sub("out")],
                                 executable: "/usr/bin/python3")
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(try TreeSnapshot(scratch.sub("out/crm")) == TreeSnapshot(root))
    }

    @Test func manySmallChunksRoundTrip() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys, chunkRawSize: 4096)
        let file = try ArchiveFile(path: archive)
        #expect(file.summary.chunkCount > 50)
        let report = try Verifier.verifyDeep(path: archive, keyring: keys.keyring)
        #expect(report.entriesChecked == 12)
        _ = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring)
        #expect(try TreeSnapshot(scratch.sub("src-a.car/crm")) == TreeSnapshot(scratch.sub("out/crm")))
    }

    @Test func severalSourcesBecomeTopLevelEntries() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let crm = try TreeBuilder.crmTree(at: scratch.sub("one"))
        try FileManager.default.createDirectory(atPath: scratch.sub("two/dumps"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("two/dumps/db.sql"), "CREATE TABLE t(x);\n")
        let report = try ArchiveCreator.create(CreateOptions(sources: [scratch.sub("two/dumps"), crm], output: scratch.sub("a.car")),
                                               signer: keys.signer, recipients: keys.recipients)
        // Version 2 names the sources only in the encrypted manifest, in canonical (bytewise) order.
        #expect(report.summary.sources == [])
        let description = try #require(try Lister.sourceDescription(path: scratch.sub("a.car"), keyring: keys.keyring))
        #expect(description.sources.map(\.name) == ["crm", "dumps"])
        #expect(description.sources.map(\.origin) == [crm, scratch.sub("two/dumps")])
        #expect(description.sources.map(\.kind) == ["directory", "directory"])
        let restored = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring)
        #expect(restored.topLevel == ["crm", "dumps"])
        #expect(try String(contentsOfFile: scratch.sub("out/dumps/db.sql"), encoding: .utf8) == "CREATE TABLE t(x);\n")
    }

    @Test func listingShowsEveryEntryWithItsHash() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys)
        var entries: [ManifestEntry] = []
        try Lister.list(path: archive, keyring: keys.keyring) { entries.append($0) }
        #expect(entries.map(\.path).first == "crm")
        // The two names of the hardlinked export: the first in archive order holds the content.
        let csv = try #require(entries.first { $0.path == "crm/exports/customers-copy.csv" })
        let content = try Data(contentsOf: URL(fileURLWithPath: scratch.sub("src-a.car/crm/exports/customers.csv")))
        #expect(csv.kind == .file)
        #expect(csv.contentHash == Sodium.blake2b(Array(content)))
        let link = try #require(entries.first { $0.path == "crm/exports/customers.csv" })
        #expect(link.kind == .hardlink && link.linkTarget == "crm/exports/customers-copy.csv")
    }

    @Test func createNeverOverwritesAnExistingFile() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let source = try TreeBuilder.crmTree(at: scratch.sub("src"))
        try TreeBuilder.write(scratch.sub("a.car"), "precious")
        #expect(throws: OperationError.self) {
            try ArchiveCreator.create(CreateOptions(sources: [source], output: scratch.sub("a.car")), signer: keys.signer, recipients: keys.recipients)
        }
        #expect(try String(contentsOfFile: scratch.sub("a.car"), encoding: .utf8) == "precious")
    }

    /// Issue 15, input 5: one absolute or tree-leaving symlink aborted the whole archive. A link's target
    /// is data: it is archived as it is, restored as it was, and restore never follows it.
    @Test func symlinksToAnywhereAreArchivedAndRestoredAsLinks() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let source = try TreeBuilder.crmTree(at: scratch.sub("src"))
        let targets = ["localtime": "/usr/share/zoneinfo/UTC", "up": "../../outside", "zigzag": "exports/../../crm", "dot": "."]
        for (name, target) in targets { try FileManager.default.createSymbolicLink(atPath: "\(source)/\(name)", withDestinationPath: target) }
        let report = try ArchiveCreator.create(CreateOptions(sources: [source], output: scratch.sub("a.car")), signer: keys.signer, recipients: keys.recipients)
        #expect(report.warnings.isEmpty)
        _ = try Verifier.verifyDeep(path: scratch.sub("a.car"), keyring: keys.keyring)
        _ = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out/target"), keyring: keys.keyring)
        for (name, target) in targets {
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: scratch.sub("out/target/crm/\(name)")) == target)
        }
        // Nothing was written through a link: the tree outside the target holds only the target.
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.sub("out")) == ["target"])
    }

    @Test func restoreRefusesANonEmptyTargetUnlessForced() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys)
        try FileManager.default.createDirectory(atPath: scratch.sub("out"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("out/other.txt"), "keep me")
        #expect(throws: OperationError.self) { try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring) }
        _ = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring, force: true)
        #expect(try String(contentsOfFile: scratch.sub("out/other.txt"), encoding: .utf8) == "keep me")
        #expect(FileManager.default.fileExists(atPath: scratch.sub("out/crm/exports/customers.csv")))
        // Even forced, an existing entry is never replaced.
        #expect(throws: OperationError.self) {
            try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring, force: true)
        }
    }

    @Test func restoreCleansUpAStagingDirectoryLeftByAKilledRestore() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys)
        // A process that has ended: its staging directory is a leftover.
        let stale = "out/.coldarchive-restore-\(try deadProcessID())-0badc0de"
        try FileManager.default.createDirectory(atPath: scratch.sub("\(stale)/crm"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("\(stale)/crm/half.csv"), "half")
        _ = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.sub("out")) == ["crm"])
    }

    @Test func aRestoreKilledWhileMovingIntoPlaceIsRolledBackByTheNext() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys)
        // The state a kill leaves between two moves: "crm" already in place, "dumps" still staged.
        let staging = scratch.sub("out/.coldarchive-restore-\(try deadProcessID())-0badc0de")
        try FileManager.default.createDirectory(atPath: "\(staging)/dumps", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: scratch.sub("out/crm/half"), withIntermediateDirectories: true)
        try "crm\ndumps".write(toFile: "\(staging)/\(Restorer.journalName)", atomically: false, encoding: .utf8)
        _ = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.sub("out")) == ["crm"])
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("out/crm/half")))
        #expect(try TreeSnapshot(scratch.sub("src-a.car/crm")) == TreeSnapshot(scratch.sub("out/crm")))
    }

    @Test func restoreNeverDeletesAUserFileThatLooksLikeStaging() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys)
        try FileManager.default.createDirectory(atPath: scratch.sub("out"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("out/.coldarchive-restore-notes"), "mine")
        // A live process's staging directory (this test's own pid) is not touched either.
        let live = "out/.coldarchive-restore-\(getpid())-feedface"
        try FileManager.default.createDirectory(atPath: scratch.sub(live), withIntermediateDirectories: true)
        #expect(throws: OperationError.self) { try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring) }
        #expect(FileManager.default.fileExists(atPath: scratch.sub("out/.coldarchive-restore-notes")))
        _ = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring, force: true)
        #expect(FileManager.default.fileExists(atPath: scratch.sub("out/.coldarchive-restore-notes")))
        #expect(FileManager.default.fileExists(atPath: scratch.sub(live)))
    }

    @Test func aReadOnlyTopLevelDirectoryIsRestoredWithItsMode() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        try FileManager.default.createDirectory(atPath: scratch.sub("src/ro/inner"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("src/ro/inner/a.txt"), "a")
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: scratch.sub("src/ro/inner"))
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: scratch.sub("src/ro"))
        _ = try ArchiveCreator.create(CreateOptions(sources: [scratch.sub("src/ro")], output: scratch.sub("a.car")),
                                      signer: keys.signer, recipients: keys.recipients)
        _ = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring)
        #expect(try TreeSnapshot(scratch.sub("src/ro")) == TreeSnapshot(scratch.sub("out/ro")))
        #expect(try FileManager.default.attributesOfItem(atPath: scratch.sub("out/ro"))[.posixPermissions] as? Int == 0o555)
        for dir in ["src/ro", "src/ro/inner", "out/ro", "out/ro/inner"] {
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: scratch.sub(dir))
        }
    }

    @Test func anArchiveWithNoEntriesVerifiesListsAndRestores() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        #expect(mkfifo(scratch.sub("only-a-fifo"), 0o600) == 0)
        let report = try ArchiveCreator.create(CreateOptions(sources: [scratch.sub("only-a-fifo")], output: scratch.sub("a.car")),
                                               signer: keys.signer, recipients: keys.recipients)
        #expect(report.summary.entryCount == 0)
        #expect(report.warnings.count == 1)
        #expect(try Verifier.verifyDeep(path: scratch.sub("a.car"), keyring: keys.keyring).entriesChecked == 0)
        var listed = 0
        try Lister.list(path: scratch.sub("a.car"), keyring: keys.keyring) { _ in listed += 1 }
        #expect(listed == 0)
        #expect(try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring).entries == 0)
    }

    /// Archiving reads every file but leaves its access time as it was (O_NOATIME). On this
    /// project's relatime mounts a plain read of a file whose atime is older than its mtime updates it.
    @Test func createLeavesAccessTimesAlone() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        try FileManager.default.createDirectory(atPath: scratch.sub("src/crm/sub"), withIntermediateDirectories: true)
        let paths = ["src/crm/a.csv", "src/crm/sub/b.json"].map { scratch.sub($0) }
        let old = timespec(tv_sec: 1_577_836_800, tv_nsec: 0)  // 2020-01-01
        for path in paths {
            try TreeBuilder.write(path, "id\n1\n")
            var times = [old, timespec(tv_sec: Int(Date().timeIntervalSince1970), tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        }
        _ = try ArchiveCreator.create(CreateOptions(sources: [scratch.sub("src/crm")], output: scratch.sub("a.car")),
                                      signer: keys.signer, recipients: keys.recipients)
        for path in paths {
            var st = stat()
            #expect(stat(path, &st) == 0)
            #expect(st.st_atim.tv_sec == old.tv_sec, "\(path)")
        }
    }

    /// readdir's type says FIFO: skipped with a warning, never opened (opening it would block).
    @Test func aFIFOInsideASourceIsSkippedWithAWarning() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        try FileManager.default.createDirectory(atPath: scratch.sub("src/crm"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("src/crm/a.csv"), "id\n")
        #expect(mkfifo(scratch.sub("src/crm/pipe"), 0o600) == 0)
        let report = try ArchiveCreator.create(CreateOptions(sources: [scratch.sub("src/crm")], output: scratch.sub("a.car")),
                                               signer: keys.signer, recipients: keys.recipients)
        #expect(report.summary.entryCount == 2)
        #expect(report.warnings.count == 1 && report.warnings[0].path.hasSuffix("pipe") && report.warnings[0].kind == .skippedSpecialFile)
    }

    /// A link chain that leads out of the tree once restored (`l` → `s/../../../etc`, with `s` → `../..`)
    /// is archived, and an entry that would be written through such a link is still refused (the
    /// hostile-archive tests craft those); restoring the links themselves writes nothing outside.
    @Test func linkChainsThatLeaveTheTreeAreKeptAsLinks() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        try FileManager.default.createDirectory(atPath: scratch.sub("top/a/b"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: scratch.sub("top/a/b/s"), withDestinationPath: "../..")
        try FileManager.default.createSymbolicLink(atPath: scratch.sub("top/a/b/l"), withDestinationPath: "s/../../../etc")
        _ = try ArchiveCreator.create(CreateOptions(sources: [scratch.sub("top")], output: scratch.sub("a.car")),
                                      signer: keys.signer, recipients: keys.recipients)
        _ = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out/t"), keyring: keys.keyring)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: scratch.sub("out/t/top/a/b/l")) == "s/../../../etc")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.sub("out")) == ["t"])
    }

    @Test func aLabelTooLongForTheFormatIsRefusedBeforeWriting() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let source = try TreeBuilder.crmTree(at: scratch.sub("src"), attachmentBytes: 10)
        #expect(throws: OperationError.self) {
            try ArchiveCreator.create(CreateOptions(sources: [source], output: scratch.sub("a.car"), label: String(repeating: "x", count: 5000)),
                                      signer: keys.signer, recipients: keys.recipients)
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("a.car")))
    }

    @Test func anArchiveModifiedBetweenThePassesIsRefused() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let path = try makeArchive(scratch, keys: keys)
        let archive = try ArchiveFile(path: path)
        try archive.checkSignature(trusting: [keys.signer.publicKey])
        _ = try archive.checkChunkHashes(workers: 2)
        // Someone writes to the file after it was verified (same bytes: only its ctime changes). The
        // kernel stamps ctime from its coarse clock (a tick of 1-10 ms): wait for that clock to pass
        // the file's ctime, so the write is sure to change it.
        waitForCoarseClockToPass(path)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: Data(FormatV1.magic))
        try handle.close()
        let cipher = try archive.unlock(with: keys.keyring)
        #expect(throws: IntegrityError.inconsistent(what: "the archive file was modified while it was being read; nothing was restored — check who writes to it")) {
            _ = try archive.checkManifest(cipher: cipher)
        }
    }

    /// Spins (no sleep) until the clock the kernel stamps file times with is past `path`'s ctime.
    func waitForCoarseClockToPass(_ path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return }
        var now = timespec()
        repeat { clock_gettime(CLOCK_REALTIME_COARSE, &now) } while (now.tv_sec, now.tv_nsec) <= (st.st_ctim.tv_sec, st.st_ctim.tv_nsec)
    }

    /// A read-only top-level directory (mode 0555): it can only be moved into the target while it
    /// is still writable, so its mode is applied after the move. Root ignores the mode, so this is
    /// proven by the unprivileged run of the suite.
    @Test func aReadOnlyTopLevelDirectoryRestores() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let source = scratch.sub("src/crm")
        try FileManager.default.createDirectory(atPath: "\(source)/tickets", withIntermediateDirectories: true)
        try TreeBuilder.write("\(source)/tickets/T-1.json", "{}")
        #expect(chmod(source, 0o555) == 0)
        defer { chmod(source, 0o755) }
        _ = try ArchiveCreator.create(CreateOptions(sources: [source], output: scratch.sub("a.car")), signer: keys.signer, recipients: keys.recipients)
        _ = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring)
        defer { chmod(scratch.sub("out/crm"), 0o755) }
        #expect(try TreeSnapshot(source) == TreeSnapshot(scratch.sub("out/crm")))
        #expect(try FileManager.default.attributesOfItem(atPath: scratch.sub("out/crm"))[.posixPermissions] as? Int == 0o555)
    }

    @Test func restoreWithAKeyringThatHoldsNoRecipientKeyFailsClearly() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let archive = try makeArchive(scratch, keys: keys)
        // Same signing key, but the encryption key is gone (a host that only archives).
        try FileManager.default.removeItem(atPath: "\(keys.directory)/encryption/\(keys.recipients[0].keyIDHex).key")
        #expect(throws: KeyError.noMatchingKey(keyIDs: [keys.recipients[0].keyIDHex])) {
            try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring)
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("out")))
    }
}
