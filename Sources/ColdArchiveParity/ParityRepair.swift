import Foundation
import ColdArchive

extension Parity {
    /// Bytes [start, end) of the archive file.
    public struct ByteRange: Sendable, Codable, Equatable {
        public var start: UInt64
        public var end: UInt64
    }

    /// What `repair --parity` found and did.
    public struct RepairReport: Sendable, Codable, Equatable {
        public var archive: String
        public var sidecar: String
        public var archiveDigest: String
        /// Slices of the archive whose bytes did not match the index (missing ones included).
        public var damagedSlices: Int
        /// Where they lie, merged.
        public var damagedRanges: [ByteRange]
        /// Parity slices found damaged among those a rebuild needed.
        public var damagedParitySlices: Int
        /// Bytes written back from the parity.
        public var rebuiltBytes: UInt64
        /// True when nothing needed repair: the file was left untouched.
        public var wasIntact: Bool { damagedSlices == 0 }
    }

    /// Rebuilds the archive at `path` from its parity sidecar (`sidecar`, or `NAME.car.parity`), keyless:
    /// every slice is hashed against the signed index, each damaged one is solved from the others of its
    /// group, the result is verified whole (signature by one of `trusted`, every chunk, the archive digest
    /// the parity was made for) and only then replaces the file. Throws `ParityError.beyondBudget`
    /// (naming the byte ranges that cannot be rebuilt) when a group lost more slices than it has parity,
    /// `.otherArchive` / `.staleParity` when the parity is not this file's; on every failure the file is
    /// left as it was and nothing else remains.
    public static func repair(_ path: String, sidecar: String? = nil, trusting trusted: [SigningPublicKey],
                              workers: Int = Verifier.defaultWorkers) throws -> RepairReport {
        PartialFiles.removeStale(for: path)
        let found = try analyze(path, sidecar: sidecar, trusting: trusted, workers: workers)
        let index = found.index
        var report = RepairReport(archive: path, sidecar: found.sidecar, archiveDigest: index.archiveDigest.hex, damagedSlices: found.damaged.count,
                                  damagedRanges: ranges(of: found.damaged, index: index), damagedParitySlices: found.damagedParitySlices, rebuiltBytes: 0)
        if found.isIntact { return report }
        guard found.unrecoverable.isEmpty else {
            throw ParityError.beyondBudget("\(found.unrecoverable.count) of the \(found.damaged.count) damaged slices of '\(path)' lie in groups that lost more than their \(index.parityCount) parity slices (\(describe(ranges(of: found.unrecoverable, index: index)))); nothing was changed. Repair from another copy (--from), or restore what is intact with 'restore --salvage'")
        }
        let (file, available, parityFile, lost) = (found.file, found.available, found.parityFile, found.lost)
        let partial = PartialFiles.name(for: path)
        do {
            let out = try OpenFile.createNew(partial, mode: 0o644)
            if let file {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
                defer { buffer.deallocate() }
                var at: UInt64 = 0
                let end = min(available, index.archiveSize)
                while at < end {
                    let n = Int(min(UInt64(buffer.count), end - at))
                    guard try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]), at: at) == n else {
                        throw SystemError(operation: "read", path: path, errno: EIO)
                    }
                    try out.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), at: at)
                    at += UInt64(n)
                }
            }
            guard ftruncate(out.fd, off_t(index.archiveSize)) == 0 else { throw SystemError(operation: "truncate", path: partial, errno: errno) }
            report.rebuiltBytes = try rebuild(lost: lost, index: index, file: file, available: available, parity: parityFile, out: out)
            try out.sync()
            // The result must be the archive the parity was made for, whole.
            let verified = try Verifier.verify(path: partial, trusting: trusted, workers: workers)
            guard verified.summary.archiveDigest == index.archiveDigest.hex else {
                throw ParityError.otherArchive(expected: index.archiveDigest.hex, found: verified.summary.archiveDigest)
            }
            try FileSystem.rename(partial, path)
            try FileSystem.syncDirectory(FileSystem.parent(of: path))
        } catch {
            FileSystem.remove(partial)
            throw error
        }
        return report
    }

    /// What a check of the archive against its parity found.
    public struct CheckReport: Sendable, Codable, Equatable {
        public var archive: String
        public var sidecar: String
        public var archiveDigest: String
        public var slices: Int
        public var damagedSlices: Int
        public var damagedRanges: [ByteRange]
        public var damagedParitySlices: Int
        /// Damaged slices in groups that lost more than their parity: these cannot be rebuilt from it.
        public var unrecoverableSlices: Int
        public var parityColumns: Int
        public var recoverable: Bool { unrecoverableSlices == 0 }
    }

    /// Checks the archive at `path` against its parity sidecar without changing anything (keyless):
    /// every slice hashed, each damaged group's parity checked. Throws as `repair` does when the parity
    /// is not this file's.
    public static func check(_ path: String, sidecar: String? = nil, trusting trusted: [SigningPublicKey],
                             workers: Int = Verifier.defaultWorkers) throws -> CheckReport {
        let found = try analyze(path, sidecar: sidecar, trusting: trusted, workers: workers)
        return CheckReport(archive: path, sidecar: found.sidecar, archiveDigest: found.index.archiveDigest.hex,
                           slices: found.index.dataSliceCount, damagedSlices: found.damaged.count,
                           damagedRanges: ranges(of: found.damaged, index: found.index), damagedParitySlices: found.damagedParitySlices,
                           unrecoverableSlices: found.unrecoverable.count, parityColumns: found.index.parityCount)
    }

    /// The archive's slices against the signed index, and what each damaged group lost.
    struct Analysis {
        var sidecar: String
        var index: ParityIndex
        var parityFile: OpenFile
        var file: OpenFile?
        var available: UInt64
        var damaged: [Int]
        /// Per damaged group, the rows (data positions 0..<k, parity rows k..<k+m) it lost.
        var lost: [Group: Set<Int>]
        var damagedParitySlices: Int
        var unrecoverable: [Int]
        var isIntact: Bool { damaged.isEmpty && available == index.archiveSize }
    }

    static func analyze(_ path: String, sidecar: String?, trusting trusted: [SigningPublicKey], workers: Int) throws -> Analysis {
        let sidecar = sidecar ?? sidecarPath(for: path)
        let parityFile = try OpenFile.forReading(sidecar)
        let index = try ParityIndex.read(from: parityFile, trusting: trusted)

        // The archive's own structure, when it still opens: it must be the archive the parity was made for.
        let file = FileSystem.exists(path) ? try OpenFile.forReading(path) : nil
        let available = try file?.size() ?? 0
        var structureVerified = false
        if file != nil, let archive = try? ArchiveFile(path: path), (try? archive.checkSignature(trusting: trusted)) != nil {
            guard archive.archiveDigest == index.archiveDigest else {
                throw ParityError.otherArchive(expected: index.archiveDigest.hex, found: archive.archiveDigest.hex)
            }
            guard available == index.archiveSize else {
                throw ParityError.staleParity("it was made for a file of \(index.archiveSize) bytes and this one has \(available) (rewrapped since?); make it again with 'coldarchive parity create'")
            }
            structureVerified = true
        }

        let damaged = try damagedSlices(file, index: index, available: available, workers: workers)
        var analysis = Analysis(sidecar: sidecar, index: index, parityFile: parityFile, file: file, available: available, damaged: damaged,
                                lost: [:], damagedParitySlices: 0, unrecoverable: [])
        if analysis.isIntact { return analysis }
        // A file that verifies whole is never changed: slices that differ then are a rewrap's recipient block.
        if structureVerified, (try? Verifier.verify(path: path, trusting: trusted, workers: workers)) != nil {
            throw ParityError.staleParity("the archive verifies, yet \(damaged.count) of its slices (\(describe(ranges(of: damaged, index: index)))) differ from those the parity was made for — it was rewrapped since; make the parity again with 'coldarchive parity create'")
        }

        // Which rows each group lost: its damaged data slices, then its damaged parity slices.
        var lostData: [Group: Set<Int>] = [:]
        for slice in damaged {
            let column = slice / index.slicesPerColumn
            lostData[Group(stripe: column % index.stripeCount, slice: slice % index.slicesPerColumn), default: []].insert(column / index.stripeCount)
        }
        let paritySlice = UnsafeMutableRawBufferPointer.allocate(byteCount: index.sliceSize, alignment: 64)
        defer { paritySlice.deallocate() }
        for (group, positions) in lostData {
            let k = index.columns(inStripe: group.stripe)
            var rows = positions
            for r in 0..<index.parityCount where !paritySliceIntact(parityFile, index: index, stripe: group.stripe, row: r, slice: group.slice, into: paritySlice) {
                rows.insert(k + r)
                analysis.damagedParitySlices += 1
            }
            if rows.count > index.parityCount {
                analysis.unrecoverable += positions.map { index.column(stripe: group.stripe, position: $0) * index.slicesPerColumn + group.slice }
            }
            analysis.lost[group] = rows
        }
        analysis.unrecoverable.sort()
        return analysis
    }

    struct Group: Hashable, Comparable {
        var stripe: Int
        var slice: Int
        static func < (a: Group, b: Group) -> Bool { (a.stripe, a.slice) < (b.stripe, b.slice) }
    }

    /// Every data slice whose bytes do not hash to the index's (or that lies past the file's end), ascending.
    static func damagedSlices(_ file: OpenFile?, index: ParityIndex, available: UInt64, workers: Int) throws -> [Int] {
        let perItem = max(1, (1 << 20) / index.sliceSize)
        let items = (index.dataSliceCount + perItem - 1) / perItem
        let found = DamageList()
        try WorkQueue(count: items).run(workers: workers, setUp: { _ in
            (buffer: UnsafeMutableRawBufferPointer.allocate(byteCount: perItem * index.sliceSize, alignment: 64), hasher: SliceHasher())
        }) { item, state in
            let first = item * perItem
            let end = min(first + perItem, index.dataSliceCount)
            let start = UInt64(first * index.sliceSize)
            let stop = min(UInt64(end * index.sliceSize), index.archiveSize)
            let readable = min(stop, max(start, available))
            var got = 0
            if let file, readable > start {
                got = (try? file.read(into: UnsafeMutableRawBufferPointer(rebasing: state.buffer[0..<Int(readable - start)]), at: start)) ?? 0
            }
            for slice in first..<end {
                let sliceStart = UInt64(slice * index.sliceSize)
                let sliceEnd = min(sliceStart + UInt64(index.sliceSize), index.archiveSize)
                guard sliceEnd <= start + UInt64(got) else { found.add(slice); continue }
                let local = Int(sliceStart - start)
                state.hasher.update(UnsafeRawBufferPointer(rebasing: state.buffer[local..<(local + Int(sliceEnd - sliceStart))]))
                if state.hasher.finish()[...] != index.dataHash(slice) { found.add(slice) }
            }
        }
        return found.sorted
    }

    private static func paritySliceIntact(_ file: OpenFile, index: ParityIndex, stripe t: Int, row r: Int, slice g: Int,
                                          into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard (try? file.read(into: buffer, at: index.parityOffset(stripe: t, row: r, slice: g))) == buffer.count else { return false }
        let hash = Sodium.Blake2bState(outputBytes: ParityIndex.hashSize)
        hash.update(UnsafeRawBufferPointer(buffer))
        return hash.finalize()[...] == index.parityHash(stripe: t, row: r, slice: g)
    }

    /// Solves every group's lost data slices from k of its intact rows, run by run (consecutive slices of
    /// a stripe that lost the same rows share one decoder), checks each rebuilt slice against the index,
    /// and writes it into `out`. Returns the bytes written.
    private static func rebuild(lost: [Group: Set<Int>], index: ParityIndex, file: OpenFile?, available: UInt64,
                                parity: OpenFile, out: OpenFile) throws -> UInt64 {
        var runs: [(stripe: Int, first: Int, end: Int, rows: Set<Int>)] = []
        for group in lost.keys.sorted() {
            let rows = lost[group]!
            if let last = runs.last, last.stripe == group.stripe, last.end == group.slice, last.rows == rows {
                runs[runs.count - 1].end += 1
            } else {
                runs.append((group.stripe, group.slice, group.slice + 1, rows))
            }
        }
        let piece = SliceRun.pieceBytes
        let rowsMax = index.largestStripe + index.parityCount
        let buffers = RowBuffers(count: rowsMax + index.parityCount, bytes: piece)
        let hashers = (0..<index.parityCount).map { _ in SliceHasher() }
        var codes: [Int: ReedSolomon] = [:]
        var written: UInt64 = 0
        for run in runs {
            let k = index.columns(inStripe: run.stripe)
            let code = codes[k] ?? ReedSolomon(k: k, m: index.parityCount)
            codes[k] = code
            guard let decoder = code.decoder(lost: run.rows) else {
                throw ParityError.beyondBudget("stripe \(run.stripe) slices \(run.first)–\(run.end - 1) lost \(run.rows.count) rows")
            }
            let sources = Array(buffers.rows[0..<k])
            let outputs = Array(buffers.rows[rowsMax..<(rowsMax + decoder.rebuilt.count)])
            var offset = UInt64(run.first * index.sliceSize)
            let end = UInt64(run.end * index.sliceSize)
            while offset < end {
                let length = Int(min(UInt64(piece), end - offset))
                for (i, row) in decoder.sources.enumerated() {
                    if row < k {
                        try ParityIndex.readColumn(file, index: index, column: index.column(stripe: run.stripe, position: row), offset: offset,
                                                   length: length, available: available, into: sources[i])
                    } else {
                        let at = index.parityOffset(stripe: run.stripe, row: row - k, slice: 0) + offset
                        guard try parity.read(into: UnsafeMutableRawBufferPointer(rebasing: sources[i][0..<length]), at: at) == length else {
                            throw ParityError.malformed("the parity data ends early")
                        }
                    }
                }
                code.decode(decoder, sources: sources.map { UnsafeRawBufferPointer($0) }, outputs: outputs, length: length)
                for (i, row) in decoder.rebuilt.enumerated() {
                    let column = index.column(stripe: run.stripe, position: row)
                    let bytes = UnsafeRawBufferPointer(rebasing: outputs[i][0..<length])
                    var mismatch: Int?
                    index.hashDataPiece(bytes, column: column, offset: offset, hasher: hashers[i]) { slice, hash in
                        if hash[...] != index.dataHash(slice) { mismatch = slice }
                    }
                    if let mismatch {
                        throw ParityError.malformed("slice \(mismatch) rebuilt from the parity does not match its recorded hash")
                    }
                    let range = index.archiveRange(column: column, offset: offset, length: length)
                    if !range.isEmpty {
                        try out.write(UnsafeRawBufferPointer(rebasing: bytes[0..<range.count]), at: range.lowerBound)
                        written += UInt64(range.count)
                    }
                }
                offset += UInt64(length)
            }
        }
        return written
    }

    /// Slices as merged byte ranges of the archive file.
    static func ranges(of slices: [Int], index: ParityIndex) -> [ByteRange] {
        var out: [ByteRange] = []
        for slice in slices {
            let start = UInt64(slice * index.sliceSize)
            let end = min(start + UInt64(index.sliceSize), index.archiveSize)
            if let last = out.last, last.end == start { out[out.count - 1].end = end } else { out.append(ByteRange(start: start, end: end)) }
        }
        return out
    }

    /// The first five ranges, as "bytes A–B", and how many more.
    public static func describe(_ ranges: [ByteRange]) -> String {
        let shown = ranges.prefix(5).map { "bytes \($0.start)–\($0.end - 1)" }.joined(separator: ", ")
        return ranges.count > 5 ? "\(shown) and \(ranges.count - 5) more ranges" : shown
    }
}

/// Damaged slice numbers found by several threads.
final class DamageList: @unchecked Sendable {
    private let lock = NSLock()
    private var slices: [Int] = []
    func add(_ slice: Int) { lock.withLock { slices.append(slice) } }
    var sorted: [Int] { lock.withLock { slices.sorted() } }
}
