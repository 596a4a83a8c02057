import Foundation
import Testing
@testable import ColdArchive

/// `scrub` of a vault and its copies (issue 20): keyless, every chunk or a slice, damage named exactly.
@Suite struct ScrubTests {
    /// A vault of three monthly archives of many small chunks, and two copies of it made with `cp -a`.
    struct Copied {
        let v: MonthlyVault
        let copies: [String]

        init() throws {
            v = try MonthlyVault(months: [])
            for (i, month) in ["2025-01", "2025-02", "2025-03"].enumerated() {
                try TreeBuilder.write("\(v.source)/notes-\(i).txt", String(repeating: "customer note \(i)\n", count: 3_000))
                var options = CreateOptions(sources: [v.source], output: "")
                options.chunkRawSize = 4096
                _ = try v.vault.create(options, series: "crm", period: month, signer: v.keys.signer, recipients: v.keys.recipients,
                                       trusting: v.trusted, now: MonthlyVault.cut)
            }
            copies = [v.scratch.sub("usb"), v.scratch.sub("offsite")]
            for copy in copies {
                #expect(try CLI.run(["-a", v.vault.root, copy], executable: "/bin/cp").status == 0)
            }
        }

        func relative(_ month: String, _ sequence: UInt64) -> String {
            String(v.path(month, sequence).dropFirst(v.vault.root.count + 1))
        }

        /// Chunk `index`'s offset in the archive at `path`.
        func offset(of index: UInt64, in path: String) throws -> UInt64 {
            let cursor = try ArchiveFile(path: path).chunkTable()
            while let (i, offset, _) = try cursor.next() {
                if i == index { return offset }
            }
            throw OperationError("no chunk \(index)")
        }
    }

    @Test func aFlippedByteIsNamedByCopyArchiveChunkAndOffsetAndAMissingArchiveToo() throws {
        let c = try Copied()
        let february = c.relative("2025-02", 2)
        let damagedAt = try c.offset(of: 5, in: "\(c.copies[0])/\(february)")
        try flipBit("\(c.copies[0])/\(february)", at: damagedAt + 3)
        let march = c.relative("2025-03", 3)
        try FileManager.default.removeItem(atPath: "\(c.copies[1])/\(march)")
        let results = try Scrub.scrub(vault: c.v.vault, copies: c.copies, trusting: c.v.trusted, workers: 2)
        #expect(results.count == 9)
        let bad = results.filter { !$0.ok }
        #expect(bad.count == 2, "\(bad)")
        let chunk = try #require(bad.first { $0.copy == c.copies[0] })
        #expect(chunk.archive == february && chunk.damaged.map(\.index) == [5] && chunk.damaged.first?.offset == damagedAt)
        #expect(chunk.chunksChecked == chunk.chunks && chunk.chunks > 20)
        let missing = try #require(bad.first { $0.copy == c.copies[1] })
        #expect(missing.archive == march && missing.error == "missing: this copy has no '\(march)'")
        // An archive lost from the vault itself is missing there (its journal records it), and its copies
        // are still checked.
        try FileManager.default.removeItem(atPath: "\(c.v.vault.root)/\(march)")
        let lost = try Scrub.scrub(vault: c.v.vault, copies: [c.copies[0]], trusting: c.v.trusted, workers: 2)
        #expect(lost.contains { $0.copy == c.v.vault.root && $0.archive == march && $0.error == "missing: this copy has no '\(march)'" })
        #expect(lost.contains { $0.copy == c.copies[0] && $0.archive == march && $0.ok })
        // The damaged chunk is intact in the vault: repair takes it from there.
        let repaired = try Repair.repair("\(c.copies[0])/\(february)", from: ["\(c.v.vault.root)/\(february)"], trusting: c.v.trusted)
        #expect(repaired.repaired.map(\.index) == [5])
    }

    @Test func slicesCoverEveryChunkOnceAndASliceReadsOnlyItsChunks() throws {
        let c = try Copied()
        let path = c.v.path("2025-01", 1)
        let archive = try ArchiveFile(path: path)
        let slices = (1...4).map { ScrubSubset("\($0)/4")! }
        for index in 0..<archive.totals.chunkCount {
            #expect(slices.filter { $0.contains(chunk: index, archiveDigest: archive.archiveDigest) }.count == 1)
        }
        var total: UInt64 = 0
        for slice in slices {
            let result = Scrub.check(path, copy: c.v.vault.root, archive: c.relative("2025-01", 1), subset: slice, trusting: c.v.trusted, workers: 2)
            #expect(result.ok && result.chunksChecked < result.chunks)
            total += result.chunksChecked
        }
        #expect(total == archive.totals.chunkCount)
        // A damaged chunk is found by its slice only.
        let offset = try c.offset(of: 7, in: path)
        try flipBit(path, at: offset + 1)
        let found = slices.map { Scrub.check(path, copy: "", archive: "", subset: $0, trusting: c.v.trusted, workers: 2).damaged.map(\.index) }
        #expect(found.filter { $0 == [7] }.count == 1 && found.filter(\.isEmpty).count == 3)
        #expect(ScrubSubset("0/4") == nil && ScrubSubset("5/4") == nil && ScrubSubset("1/0") == nil && ScrubSubset("x") == nil)
    }
}

/// `coldarchive scrub` through the binary.
@Suite struct ScrubCLITests {
    @Test func scrubExitsOneAndNamesTheChunkThenZeroOnceRepaired() throws {
        let c = try ScrubTests.Copied()
        let trust = "\(c.v.keys.directory)/signing.pub"
        let january = c.relative("2025-01", 1)
        let at = try c.offset(of: 3, in: "\(c.copies[1])/\(january)")
        try flipBit("\(c.copies[1])/\(january)", at: at + 5)
        let scrub = try CLI.run(["scrub", "--vault", c.v.vault.root, "--copy", c.copies[0], "--copy", c.copies[1], "--trust", trust])
        #expect(scrub.status == 1, "\(scrub.stderr)")
        #expect(scrub.stdout.contains("DAMAGED \(c.copies[1])/\(january): 1 damaged of the "), "\(scrub.stdout)")
        #expect(scrub.stdout.contains("  chunk 3: bytes \(at)–"))
        #expect(scrub.stdout.contains("9 archive files scrubbed") && scrub.stdout.contains("1 damaged or missing"))
        let repair = try CLI.run(["repair", "\(c.copies[1])/\(january)", "--from", "\(c.copies[0])/\(january)", "--trust", trust])
        #expect(repair.status == 0, "\(repair.stderr)")
        let again = try CLI.run(["scrub", "--vault", c.v.vault.root, "--copy", c.copies[1], "--subset", "2/3", "--trust", trust])
        #expect(again.status == 0 && again.stdout.contains("(slice 2/3)") && again.stdout.contains("all intact"), "\(again.stdout)\(again.stderr)")
        #expect(try CLI.run(["scrub", "--vault", c.v.vault.root, "--subset", "4/3", "--trust", trust]).status == 2)
    }
}
