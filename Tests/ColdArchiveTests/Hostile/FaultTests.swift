import Foundation
import Testing
@testable import ColdArchive

/// Crashes, full disks, concurrent runs and files that change under us: nothing is lost, nothing that
/// looks complete is left behind, and the next run cleans up.
@Suite(.serialized) struct FaultTests {
    /// About 24 MiB of incompressible data in a few files, so a create or restore takes long enough
    /// to be killed in the middle.
    func bigSource(_ scratch: Scratch) throws -> String {
        let root = scratch.sub("big/crm")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for i in 0..<6 {
            try TreeBuilder.write("\(root)/attachment-\(i).bin", bytes: TreeBuilder.noise(4 << 20, seed: UInt64(i)))
        }
        return root
    }

    func keyring(_ scratch: Scratch) throws -> String {
        let keyring = scratch.sub("keys")
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        return keyring
    }

    /// A keyring, the big source and an archive of it, made through the binary.
    func archived() throws -> (Scratch, String, String, String) {
        let scratch = try Scratch()
        let keyring = try keyring(scratch)
        let source = try bigSource(scratch)
        let archive = scratch.sub("a.car")
        #expect(try CLI.run(["create", "--keyring", keyring, "--out", archive, source]).status == 0)
        return (scratch, keyring, source, archive)
    }

    func leftovers(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.contains(".partial-") || $0.hasPrefix(ManifestSpool.namePrefix) || $0.hasPrefix(Restorer.stagingPrefix) }
    }

    func spawn(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Bytes under `directory` in entries whose name contains `marker` (files, or whole directories).
    func bytes(in directory: String, named marker: String) -> UInt64 {
        var total: UInt64 = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.contains(marker) {
            let path = "\(directory)/\(name)"
            if FileSystem.isDirectory(path) {
                for sub in FileManager.default.subpaths(atPath: path) ?? [] { total += fileSize("\(path)/\(sub)") }
            } else {
                total += fileSize(path)
            }
        }
        return total
    }

    /// Starts `arguments` and kills it with SIGKILL once its work in progress (entries of `directory`
    /// named with `marker`) holds `threshold` bytes: a moment chosen by progress, not by a clock, so
    /// every round interrupts real work. Returns whether the process was killed before it finished.
    func killMidway(_ arguments: [String], directory: String, marker: String, threshold: UInt64) throws -> Bool {
        let process = try spawn(arguments)
        var reached = false
        while process.isRunning && !reached { reached = bytes(in: directory, named: marker) >= threshold }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal
    }

    @Test func killingCreateAtRandomMomentsNeverLeavesAnArchiveThatLooksComplete() throws {
        let scratch = try Scratch()
        let keyring = try keyring(scratch)
        let source = try bigSource(scratch)
        let out = scratch.sub("vault")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let archive = "\(out)/2026-11.car"
        let trusted = try SigningPublicKey(contentsOf: "\(keyring)/signing.pub")
        var completed = 0, interrupted = 0
        for round in 0..<12 {
            // From the first bytes of the temporary file to nearly all of the archive's 24 MiB.
            let threshold = UInt64(1 + round * 2) << 20
            let killed = try killMidway(["create", "--keyring", keyring, "--out", archive, source], directory: out,
                                        marker: ".partial-", threshold: threshold)
            if killed && !FileManager.default.fileExists(atPath: archive) { interrupted += 1 }
            if FileManager.default.fileExists(atPath: archive) {
                // Whatever is under the final name is a whole, valid archive.
                _ = try Verifier.verify(path: archive, trusting: trusted)
                completed += 1
                try FileManager.default.removeItem(atPath: archive)
            }
        }
        #expect(interrupted >= 10, "only \(interrupted) of 12 creates were interrupted mid-write (\(completed) completed)")
        // The next run completes and removes what the killed runs left behind.
        let result = try CLI.run(["create", "--keyring", keyring, "--out", archive, source])
        #expect(result.status == 0, "\(result.stderr)")
        _ = try Verifier.verify(path: archive, trusting: trusted)
        let left = try leftovers(in: out)
        #expect(left.isEmpty, "left behind: \(left)")
    }

    /// Issue 18: the partial file of a killed create is removed by the next create into that directory
    /// whatever that one names its archive (a vault gets a new name every month); a partial file
    /// written from another host (a vault on a shared disk) is left alone, since its writer may be alive.
    @Test func aKilledCreatesPartialFileIsRemovedByTheNextCreateOfAnyName() throws {
        let scratch = try Scratch()
        let keyring = try keyring(scratch)
        let source = try bigSource(scratch)
        let out = scratch.sub("vault")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let killed = try killMidway(["create", "--keyring", keyring, "--out", "\(out)/2026-10.car", source], directory: out,
                                    marker: ".partial-", threshold: 1 << 20)
        #expect(killed)
        #expect(try leftovers(in: out).count == 1)
        let otherHost = PartialFiles.hostTag == "0badc0de" ? "0badf00d" : "0badc0de"
        let foreign = ".2026-09.car.partial-4194000-0123abcd-\(otherHost)"
        try TreeBuilder.write("\(out)/\(foreign)", "another host's archive in progress")
        let result = try CLI.run(["create", "--keyring", keyring, "--out", "\(out)/2026-11.car", source])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try leftovers(in: out) == [foreign])
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == [foreign, "2026-11.car", "2026-11.car.minisig"].sorted())
    }

    @Test func aKilledRestoreLeavesOnlyItsStagingDirectoryWhichTheNextRestoreRemoves() throws {
        let (scratch, keyring, source, archive) = try archived()
        let target = scratch.sub("restore")
        var interrupted = 0
        for round in 0..<8 {
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            // Killed once the staging directory holds 0, 3, 6 … 21 MiB of the 24 MiB tree.
            let killed = try killMidway(["restore", archive, "--keyring", keyring, "--to", target], directory: target,
                                        marker: Restorer.stagingPrefix, threshold: UInt64(round * 3) << 20 + 1)
            let present = (try? FileManager.default.contentsOfDirectory(atPath: target)) ?? []
            if killed && present != ["crm"] {
                interrupted += 1
                // Nothing but a staging directory — or, killed during the final moves, what its journal
                // says was already moved, which the next restore moves back before it starts.
                let outside = present.filter { !$0.hasPrefix(Restorer.stagingPrefix) }
                #expect(outside.isEmpty || (outside == ["crm"] && present.count > 1), "partial files outside staging: \(present)")
                let again = try CLI.run(["restore", archive, "--keyring", keyring, "--to", target, "--force"])
                #expect(again.status == 0, "\(again.stderr)")
                #expect(try FileManager.default.contentsOfDirectory(atPath: target) == ["crm"])
            }
        }
        #expect(interrupted >= 6, "only \(interrupted) of 8 restores were interrupted mid-write")
        #expect(try TreeSnapshot(source) == TreeSnapshot("\(target)/crm"))
    }

    @Test func aFullDiskDuringCreateFailsClearlyAndLeavesNothing() throws {
        let scratch = try Scratch()
        let keyring = try keyring(scratch)
        let source = try bigSource(scratch)
        let archive = scratch.sub("a.car")
        // A 4 MiB file-size limit: the archive cannot be written whole.
        let result = try CLI.run(["-c", "ulimit -f 4096; exec '\(CLI.executable)' create --keyring '\(keyring)' --out '\(archive)' '\(source)'"],
                                 executable: "/bin/bash")
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains("File too large"))
        #expect(!FileManager.default.fileExists(atPath: archive))
        #expect(try leftovers(in: scratch.path).isEmpty)
    }

    @Test func aFullDiskDuringRestoreLeavesTheTargetAsItWas() throws {
        let (scratch, keyring, _, archive) = try archived()
        let target = scratch.sub("restore")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try TreeBuilder.write("\(target)/keep.txt", "keep")
        let before = try TreeSnapshot(target).ignoringDirectoryTimes
        let result = try CLI.run(["-c", "ulimit -f 1024; exec '\(CLI.executable)' restore '\(archive)' --keyring '\(keyring)' --to '\(target)' --force"],
                                 executable: "/bin/bash")
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains("File too large"))
        #expect(try TreeSnapshot(target).ignoringDirectoryTimes == before)
    }

    @Test func twoCreatesIntoTheSameOutputNeverCorruptIt() throws {
        let scratch = try Scratch()
        let keyring = try keyring(scratch)
        let source = try bigSource(scratch)
        let archive = scratch.sub("a.car")
        let processes = try (0..<2).map { _ in try spawn(["create", "--keyring", keyring, "--out", archive, source]) }
        for p in processes { p.waitUntilExit() }
        let statuses = processes.map(\.terminationStatus).sorted()
        #expect(statuses == [0, 3], "exactly one create wins, the other fails clearly: \(statuses)")
        _ = try Verifier.verify(path: archive, trusting: try SigningPublicKey(contentsOf: "\(keyring)/signing.pub"))
        #expect(try leftovers(in: scratch.path).isEmpty)
    }

    /// The same through the blocks create really uses (WalkBlocks), where the room for the next read
    /// is what is left of a 1 MiB block: files that end exactly at a block's end (the probe read),
    /// span two blocks, start at one's end, grow and shrink.
    @Test func filesThatCrossWalkBlocksAndChangeSizeStayConsistent() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let block = WalkBlocks.blockBytes
        // (size on disk, size claimed when the header was written)
        let files: [(Int, Int)] = [(10_000, 10_000), (block - 10_000, block - 10_000), (block + 70_000, block + 70_000),
                                   (block, block - 5), (300_000, 400_000), (0, 0)]
        var warnings: [SourceWarning] = []
        _ = try ArchiveCreator.write(to: scratch.sub("a.car"), signer: keys.signer, recipients: keys.recipients, label: nil, sources: ["crm"],
                                     compressionLevel: 3, chunkRawSize: FormatV1.defaultChunkRawSize, workers: 2, now: Date()) { content in
            let blocks = WalkBlocks()
            let walker = SourceWalker(output: blocks)
            let writer = DirectWalkOutput(content: content)
            try blocks.entry(ManifestEntry.directory("crm"))
            for (i, (size, claimed)) in files.enumerated() {
                try TreeBuilder.write(scratch.sub("f\(i)"), bytes: TreeBuilder.noise(size, seed: UInt64(i)))
                var entry = ManifestEntry.file("crm/f\(i)", [])
                entry.contentHash = ManifestEntry.zeroHash
                try walker.addFile(try OpenFile.forReading(scratch.sub("f\(i)")), entry: entry, size: UInt64(claimed))
                // Four blocks exist: apply what is ready before the walker could run out of them.
                while let ready = try blocks.nextReady() {
                    try writer.apply(ready)
                    blocks.recycle(ready)
                }
            }
            blocks.finish()
            while let ready = try blocks.next() {
                try writer.apply(ready)
                blocks.recycle(ready)
            }
            warnings = walker.warnings
            return (walker.entryCount + 1, walker.contentBytes)
        }
        #expect(warnings.count == 2)
        #expect(warnings.contains { $0.kind == .grewWhileRead && $0.path == scratch.sub("f3") })
        #expect(warnings.contains { $0.kind == .shrankWhileRead && $0.path == scratch.sub("f4") })
        #expect(try Verifier.verifyDeep(path: scratch.sub("a.car"), keyring: keys.keyring).entriesChecked == UInt64(files.count + 1))
        _ = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring)
        for (i, (size, claimed)) in files.enumerated() {
            let restored = Array(try Data(contentsOf: URL(fileURLWithPath: scratch.sub("out/crm/f\(i)"))))
            let original = TreeBuilder.noise(size, seed: UInt64(i))
            // A file that shrank is cut at the bytes that were read (FORMAT.md §8); one that grew keeps its claimed size.
            #expect(restored.count == min(size, claimed), "f\(i)")
            #expect(Array(restored.prefix(min(size, claimed))) == Array(original.prefix(claimed)), "f\(i)")
            #expect(restored.dropFirst(size).allSatisfy { $0 == 0 }, "f\(i)")
        }
    }

    @Test(arguments: [-1000, 1000])
    func aFileThatChangesSizeWhileReadIsReportedAndTheArchiveStaysConsistent(delta: Int) throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let content = TreeBuilder.noise(10_000, seed: 3)
        try TreeBuilder.write(scratch.sub("orders.csv"), bytes: content)
        // The size the file had when its header was written differs from what reading finds:
        // the same code path as a file that shrinks or grows while create reads it.
        let claimed = UInt64(content.count + delta)
        var warnings: [SourceWarning] = []
        _ = try ArchiveCreator.write(to: scratch.sub("a.car"), signer: keys.signer, recipients: keys.recipients, label: nil, sources: ["crm"],
                                     compressionLevel: 3, chunkRawSize: FormatV1.defaultChunkRawSize, workers: 2, now: Date()) { content in
            let walker = SourceWalker(content: content)
            let dir = ManifestEntry.directory("crm")
            var placed = dir
            placed.tarOffset = try content.tar.nextHeaderOffset()
            try content.tar.writeHeader(placed)
            try content.record(placed)
            var entry = ManifestEntry.file("crm/orders.csv", [])
            entry.contentHash = ManifestEntry.zeroHash
            try walker.addFile(try OpenFile.forReading(scratch.sub("orders.csv")), entry: entry, size: claimed)
            warnings = walker.warnings
            return (walker.entryCount + 1, walker.contentBytes)
        }
        #expect(warnings.count == 1)
        #expect(warnings[0].kind == (delta > 0 ? .shrankWhileRead : .grewWhileRead))
        // The manifest's content hash is of what was stored (the zeros, or the cut), as the deep check shows.
        #expect(try Verifier.verifyDeep(path: scratch.sub("a.car"), keyring: keys.keyring).entriesChecked == 2)
        _ = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring)
        let restored = Array(try Data(contentsOf: URL(fileURLWithPath: scratch.sub("out/crm/orders.csv"))))
        #expect(restored.count == min(content.count, Int(claimed)))
        #expect(Array(restored.prefix(min(content.count, Int(claimed)))) == Array(content.prefix(Int(claimed))))
    }
}
