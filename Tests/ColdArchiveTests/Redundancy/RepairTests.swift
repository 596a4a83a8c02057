import Foundation
import Testing
@testable import ColdArchive

/// Chunk-wise repair from other copies (issue 20): bit-identical results, nothing changed on failure.
@Suite struct RepairTests {
    /// An archive of many small chunks, its bytes, and the offset of each chunk.
    struct Copies {
        let scratch: Scratch
        let keys: TestKeys
        let original: [UInt8]
        let offsets: [UInt64]
        let path: String

        init() throws {
            scratch = try Scratch()
            keys = try TestKeys(in: scratch)
            path = try makeArchive(scratch, keys: keys, name: "a.car", chunkRawSize: 4096, attachmentBytes: 40_000)
            original = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            let cursor = try ArchiveFile(path: path).chunkTable()
            var offsets: [UInt64] = []
            while let (_, offset, _) = try cursor.next() { offsets.append(offset) }
            self.offsets = offsets
        }

        /// A copy of the archive named `name`, with one bit flipped in each of `chunks`.
        func copy(_ name: String, damaging chunks: [Int]) throws -> String {
            let copy = scratch.sub(name)
            try? FileManager.default.removeItem(atPath: copy)
            try copyFile(path, copy)
            for chunk in chunks { try flipBit(copy, at: offsets[chunk] + 5) }
            return copy
        }

        func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
        var trusted: [SigningPublicKey] { [keys.signer.publicKey] }
    }

    @Test func copiesDamagedInDifferentChunksRepairToTheOriginalBytes() throws {
        let c = try Copies()
        #expect(c.offsets.count > 10)
        let damaged = try c.copy("damaged.car", damaging: [1, 4, c.offsets.count - 1])
        let b = try c.copy("b.car", damaging: [0, 1])
        let d = try c.copy("d.car", damaging: [4, 7])
        let report = try Repair.repair(damaged, from: [b, d], trusting: c.trusted)
        #expect(try c.bytes(damaged) == c.original)
        #expect(report.repaired.map(\.index) == [1, 4, UInt64(c.offsets.count - 1)])
        #expect(report.repaired.map(\.from) == [d, b, b])
        #expect(report.repaired[0].offset == c.offsets[1])
        #expect(report.structureFrom == nil)
        // Nothing else remains in the directory.
        #expect(try FileManager.default.contentsOfDirectory(atPath: c.scratch.path).filter { $0.hasPrefix(".") }.isEmpty)
        // An intact archive is left untouched.
        let again = try Repair.repair(damaged, from: [b], trusting: c.trusted)
        #expect(again.wasIntact)
    }

    @Test func restoreTakesDamagedChunksFromTheCopiesAndChangesNone() throws {
        let c = try Copies()
        let damaged = try c.copy("damaged.car", damaging: [1, 4])
        let b = try c.copy("b.car", damaging: [1])
        let d = try c.copy("d.car", damaging: [4])
        let before = try [damaged, b, d].map(c.bytes)
        let out = c.scratch.sub("out")
        let restore = try CLI.run(["restore", damaged, "--copy", b, "--copy", d, "--keyring", c.keys.directory, "--to", out])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(restore.stdout.contains("2 damaged chunks taken from the copies; \(damaged) itself was not changed"), "\(restore.stdout)")
        #expect(try TreeSnapshot(c.scratch.sub("src-a.car/crm")) == TreeSnapshot("\(out)/crm"))
        #expect(try [damaged, b, d].map(c.bytes) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: c.scratch.path).filter { $0.contains("spool") }.isEmpty)
        // A chunk damaged everywhere: named, nothing restored.
        let e = try c.copy("e.car", damaging: [1])
        let refused = try CLI.run(["restore", damaged, "--copy", e, "--keyring", c.keys.directory, "--to", c.scratch.sub("out2")])
        #expect(refused.status == 1 && refused.stderr.contains("chunk 1") && refused.stderr.contains("every copy given"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: c.scratch.sub("out2/crm")))
    }

    @Test func aChunkDamagedInEveryCopyIsNamedAndNothingChanges() throws {
        let c = try Copies()
        let damaged = try c.copy("damaged.car", damaging: [2, 3])
        let before = try c.bytes(damaged)
        let b = try c.copy("b.car", damaging: [3])
        expectError({ if case .inconsistent(let what) = $0 { what.hasPrefix("chunk 3 (bytes \(c.offsets[3])–") && what.contains("damaged in '\(damaged)' and in every copy given") } else { false } }) {
            _ = try Repair.repair(damaged, from: [b], trusting: c.trusted)
        }
        #expect(try c.bytes(damaged) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: c.scratch.path).filter { $0.hasPrefix(".") }.isEmpty)
    }

    @Test func aDamagedHeaderOrAMissingFileIsRebuiltFromACopy() throws {
        let c = try Copies()
        let damaged = try c.copy("damaged.car", damaging: [5])
        try flipBit(damaged, at: 40)  // in the header
        let b = try c.copy("b.car", damaging: [6])
        let report = try Repair.repair(damaged, from: [b], trusting: c.trusted)
        #expect(report.structureFrom == b && report.structureProblem != nil)
        #expect(report.repaired.map(\.index) == [6])
        #expect(try c.bytes(damaged) == c.original)
        // A lost file: rebuilt from two damaged copies.
        try FileManager.default.removeItem(atPath: damaged)
        let d = try c.copy("d.car", damaging: [0])
        let rebuilt = try Repair.repair(damaged, from: [b, d], trusting: c.trusted)
        #expect(rebuilt.structureProblem == "the file does not exist")
        #expect(try c.bytes(damaged) == c.original)
    }

    /// A rewrapped copy (another recipient block, the same archive digest) supplies chunks; the
    /// archive keeps its own recipient block.
    @Test func aRewrappedCopyServes() throws {
        let c = try Copies()
        let rewrapped = try c.copy("rewrapped.car", damaging: [])
        _ = try c.keys.keyring.rotateEncryptionKey()
        #expect(try Rewrapper.rewrap(path: rewrapped, keyring: c.keys.keyring).rewritten)
        #expect(try c.bytes(rewrapped) != c.original)
        let damaged = try c.copy("damaged.car", damaging: [3])
        let report = try Repair.repair(damaged, from: [rewrapped], trusting: c.trusted)
        #expect(report.repaired.map(\.from) == [rewrapped])
        #expect(try c.bytes(damaged) == c.original)
    }

    /// A file whose header is damaged is rebuilt from a copy only if it is a damaged copy of that
    /// archive: never replaced by another archive (found by review).
    @Test func aDamagedHeaderIsNeverRebuiltFromAnotherArchive() throws {
        let c = try Copies()
        let other = try makeArchive(c.scratch, keys: c.keys, name: "other.car", chunkRawSize: 4096, attachmentBytes: 40_000)
        let damaged = try c.copy("damaged.car", damaging: [])
        try flipBit(damaged, at: 40)
        let before = try c.bytes(damaged)
        #expect(throws: OperationError.self) {
            do { _ = try Repair.repair(damaged, from: [other], trusting: c.trusted) } catch let error as OperationError {
                #expect(error.message.contains("none of its chunks is one of that archive's"), "\(error)")
                throw error
            }
        }
        #expect(try c.bytes(damaged) == before)
        // A copy of the same archive still serves.
        #expect(try Repair.repair(damaged, from: [c.path], trusting: c.trusted).structureFrom == c.path)
    }

    @Test func aCopyOfAnotherArchiveIsRefused() throws {
        let c = try Copies()
        let other = try makeArchive(c.scratch, keys: c.keys, name: "other.car", chunkRawSize: 4096, attachmentBytes: 40_000)
        let damaged = try c.copy("damaged.car", damaging: [1])
        let before = try c.bytes(damaged)
        #expect(throws: OperationError.self) {
            do { _ = try Repair.repair(damaged, from: [other], trusting: c.trusted) } catch let error as OperationError {
                #expect(error.kind == .usage && error.message.contains("'\(other)' is not a copy of '\(damaged)'"), "\(error)")
                throw error
            }
        }
        #expect(try c.bytes(damaged) == before)
    }
}

/// `coldarchive repair` through the binary: what an operator sees, and the exit codes.
@Suite struct RepairCLITests {
    @Test func repairNamesEachChunkItTookAndExitsByOutcome() throws {
        let c = try RepairTests.Copies()
        let trust = "\(c.keys.directory)/signing.pub"
        let damaged = try c.copy("damaged.car", damaging: [2])
        let b = try c.copy("b.car", damaging: [5])
        let verify = try CLI.run(["verify", damaged, "--trust", trust])
        #expect(verify.status == 1)
        let repaired = try CLI.run(["repair", damaged, "--from", b, "--trust", trust])
        #expect(repaired.status == 0, "\(repaired.stderr)")
        #expect(repaired.stdout.contains("chunk 2 at byte \(c.offsets[2]): taken from '\(b)'"), "\(repaired.stdout)")
        #expect(repaired.stdout.contains("REPAIRED \(damaged): 1 of \(c.offsets.count) chunks replaced"))
        #expect(try CLI.run(["verify", damaged, "--trust", trust]).status == 0)
        let intact = try CLI.run(["repair", damaged, "--from", b, "--trust", trust])
        #expect(intact.status == 0 && intact.stdout.contains("nothing to repair"))
        // b's chunk 5 is damaged, and so is every other copy's: exit 1, the chunk named.
        let lost = try CLI.run(["repair", b, "--from", try c.copy("d.car", damaging: [5]), "--trust", trust])
        #expect(lost.status == 1 && lost.stderr.contains("chunk 5 (bytes \(c.offsets[5])–"), "\(lost.stderr)")
    }
}
