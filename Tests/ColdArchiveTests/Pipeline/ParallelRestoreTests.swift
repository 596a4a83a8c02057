import Foundation
import Testing
@testable import ColdArchive

/// Restore writes regular files on threads of their own (FileWriters). These trees are shaped to
/// cross every boundary of that hand-over: batches full by file count, files larger than a batch,
/// hardlinks that must wait for their target, read-only files, many directories.
@Suite struct ParallelRestoreTests {
    static func awkwardTree(at root: String) throws {
        let fm = FileManager.default
        for d in 0..<7 {
            try fm.createDirectory(atPath: "\(root)/dir-\(d)/sub", withIntermediateDirectories: true)
            for f in 0..<(FileWriters.filesPerBatch + 3) {
                try TreeBuilder.write("\(root)/dir-\(d)/f\(f).txt", String(repeating: "row \(d),\(f)\n", count: f % 5))
            }
        }
        // Larger than a batch, and sizes that end just before, at and after a batch boundary.
        try TreeBuilder.write("\(root)/dir-0/sub/big.bin", bytes: TreeBuilder.noise(3 * FileWriters.batchBytes + 17, seed: 1))
        for (i, delta) in [-1, 0, 1].enumerated() {
            try TreeBuilder.write("\(root)/dir-1/sub/edge-\(i).bin", bytes: TreeBuilder.noise(FileWriters.batchBytes + delta, seed: UInt64(2 + i)))
        }
        try TreeBuilder.write("\(root)/dir-2/readonly.csv", "id\n1\n", mode: 0o444)
        try TreeBuilder.write("\(root)/dir-2/group.csv", "id\n2\n", mode: 0o664)
        #expect(link("\(root)/dir-0/sub/big.bin", "\(root)/dir-3/big-again.bin") == 0)
        #expect(link("\(root)/dir-2/readonly.csv", "\(root)/dir-6/readonly-again.csv") == 0)
    }

    @Test(arguments: [false, true])
    func filesWrittenOnWriterThreadsKeepContentModesTimesAndLinks(checkContent: Bool) throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        try Self.awkwardTree(at: scratch.sub("src/crm"))
        _ = try ArchiveCreator.create(CreateOptions(sources: [scratch.sub("src/crm")], output: scratch.sub("a.car")),
                                      signer: keys.signer, recipients: keys.recipients)
        let report = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring,
                                          checkContent: checkContent, workers: 2)
        #expect(report.entries > 7 * UInt64(FileWriters.filesPerBatch))
        let before = try TreeSnapshot(scratch.sub("src/crm"))
        let after = try TreeSnapshot(scratch.sub("out/crm"))
        #expect(before == after)
        #expect(after["dir-2/readonly.csv"]?.mode == 0o444)
        #expect(after["dir-2/group.csv"]?.mode == 0o664)
        #expect(after["dir-3/big-again.bin"]?.inodeGroup != nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.sub("out")) == ["crm"])
    }

    /// Two writer threads creating files in one directory at once fight over its lock (on ext4 a fifth
    /// of a 600 000-file restore's CPU went to spinning on it; issue 17): each directory belongs to one
    /// lane while that lane has files queued for it, and the directories that follow go to the others.
    @Test func eachDirectoryIsWrittenByOneLaneAtATime() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        for d in 0..<3 {
            try FileManager.default.createDirectory(atPath: scratch.sub("src/crm/d\(d)"), withIntermediateDirectories: true)
            for f in 0..<(4 * FileWriters.filesPerBatch) { try TreeBuilder.write(scratch.sub("src/crm/d\(d)/t\(f).json"), "{\"n\":\(f)}\n") }
        }
        // A directory the walk comes back to after a subdirectory, and a file larger than a batch.
        try FileManager.default.createDirectory(atPath: scratch.sub("src/crm/d0/sub"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("src/crm/d0/sub/big.bin"), bytes: TreeBuilder.noise(2 * FileWriters.batchBytes + 5, seed: 9))
        _ = try ArchiveCreator.create(CreateOptions(sources: [scratch.sub("src/crm")], output: scratch.sub("a.car")),
                                      signer: keys.signer, recipients: keys.recipients)
        let report = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring, workers: 4)
        #expect(report.peakWritersPerDirectory == 1)
        #expect(report.entries == 3 * 4 * UInt64(FileWriters.filesPerBatch) + 6)
        #expect(try TreeSnapshot(scratch.sub("src/crm")) == TreeSnapshot(scratch.sub("out/crm")))
    }

    /// Large files are copying, not creating: one directory's large files go to every lane (a directory
    /// of 1 729 attachments written by one lane took the 1 GB restore from 1.28× to 0.89× `tar -x`),
    /// while its small files still belong to one lane at a time.
    @Test func largeFilesOfOneDirectoryAreSpreadOverTheLanes() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        try FileManager.default.createDirectory(atPath: scratch.sub("src/crm/attachments"), withIntermediateDirectories: true)
        for f in 0..<4 {
            try TreeBuilder.write(scratch.sub("src/crm/attachments/scan-\(f).pdf"),
                                  bytes: TreeBuilder.noise(Int(FileWriters.largeFileBytes) * (f + 1) + 3, seed: UInt64(20 + f)))
        }
        for f in 0..<(2 * FileWriters.filesPerBatch) { try TreeBuilder.write(scratch.sub("src/crm/attachments/t\(f).json"), "{\"n\":\(f)}\n") }
        _ = try ArchiveCreator.create(CreateOptions(sources: [scratch.sub("src/crm")], output: scratch.sub("a.car")),
                                      signer: keys.signer, recipients: keys.recipients)
        let report = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring, workers: 2)
        #expect(report.lanesForLargeFiles == 2)
        #expect(report.peakWritersPerDirectory == 1)
        #expect(try TreeSnapshot(scratch.sub("src/crm")) == TreeSnapshot(scratch.sub("out/crm")))
    }

    /// A failure on a writer thread (here: the content check of the 71st of 96 small files, found
    /// while other files are queued on both threads) fails the restore and leaves the target as it was.
    @Test func aFailureOnAWriterThreadLeavesTheTargetAsItWas() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let data = Array("x,y\n".utf8), other = Array("x,z\n".utf8)
        var tar = HandTar.entry("crm/", .directory, mode: 0o755)
        var manifest: [ManifestEntry] = [.directory("crm")]
        for i in 0..<(3 * FileWriters.filesPerBatch) {
            let name = String(format: "crm/f%03d.csv", i)
            tar += HandTar.entry(name, .file, data: data)
            manifest.append(.file(name, i == 70 ? other : data))
        }
        let archive = try craftArchive(scratch, keys: keys, tar: tar, manifest: manifest)
        let target = scratch.sub("target")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try TreeBuilder.write("\(target)/existing.txt", "keep")
        let before = try TreeSnapshot(target)
        expectIntegrityFailure {
            _ = try Restorer.restore(archivePath: archive, to: target, keyring: keys.keyring, force: true, checkContent: true, workers: 2)
        }
        #expect(try TreeSnapshot(target) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: target) == ["existing.txt"])
    }
}

/// Create hashes each file's content on the sealing workers, piece by piece as it lands in chunks.
@Suite struct WorkerContentHashTests {
    @Test(arguments: [1, 2, 3])
    func everyFilesHashIsTheBLAKE2bOfItsBytes(workers: Int) throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        try ParallelRestoreTests.awkwardTree(at: scratch.sub("src/crm"))
        var options = CreateOptions(sources: [scratch.sub("src/crm")], output: scratch.sub("a.car"))
        options.chunkRawSize = FormatV1.minChunkRawSize  // files span many chunks sealed side by side
        options.workers = workers
        _ = try ArchiveCreator.create(options, signer: keys.signer, recipients: keys.recipients)
        #expect(try ArchiveFile(path: scratch.sub("a.car")).summary.chunkCount > 50)
        var files = 0
        try Lister.list(path: scratch.sub("a.car"), keyring: keys.keyring) { entry in
            guard entry.kind == .file else { return }
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: scratch.sub("src/\(entry.path)"))))
            #expect(entry.contentHash == Sodium.blake2b(bytes), "\(entry.path)")
            files += 1
        }
        #expect(files > 7 * FileWriters.filesPerBatch)
        _ = try Verifier.verifyDeep(path: scratch.sub("a.car"), keyring: keys.keyring)
    }
}
