import Foundation
import ColdArchive

/// Reed–Solomon parity for an archive, in a signed sidecar beside it (`NAME.car.parity`,
/// docs/FORMAT.md §21, docs/OFFSITE.md "Parity"): made once, it lets `repair --parity` rebuild the only
/// copy of an archive, bit for bit, from damage up to the parity's budget — scattered bad slices, whole
/// chunks, one contiguous bad region as a failing disk or tape block gives.
public enum Parity {
    /// The sidecar's path for an archive at `archive`.
    public static func sidecarPath(for archive: String) -> String { "\(archive).parity" }

    /// What parity was made, and what it can recover.
    public struct Report: Sendable, Codable, Equatable {
        public var archive: String
        public var sidecar: String
        public var archiveDigest: String
        public var archiveBytes: UInt64
        public var parityBytes: UInt64
        /// Bytes of the sidecar file (parity, two copies of the index, tail).
        public var sidecarBytes: UInt64
        public var sliceSize: Int
        public var columnLength: UInt64
        public var columns: Int
        public var stripes: Int
        /// Parity columns per stripe: each group recovers this many damaged slices.
        public var parityColumns: Int
        /// Whole chunks that may be lost anywhere and still be rebuilt (each shorter than a column).
        public var chunksRecoverable: Int
        /// The longest contiguous damaged region that is always rebuilt, in bytes.
        public var contiguousBytesRecoverable: UInt64
        /// Parity bytes over archive bytes, in percent.
        public var overheadPercent: Double
    }

    /// Parses "5%", "5" or "2.5%" into basis points (1 % = 100), 1 % to 100 %.
    public static func basisPoints(_ text: String) throws -> Int {
        let number = text.hasSuffix("%") ? String(text.dropLast()) : text
        guard let value = Double(number), value.isFinite, value >= 1, value <= 100 else {
            throw OperationError("--parity takes a share of the archive from 1% to 100% (for example 5%), not '\(text)'", kind: .usage)
        }
        return Int((value * 100).rounded())
    }

    /// The geometry chosen for an archive of `size` bytes whose largest chunk (or other region that
    /// should cost a group one slice) is `largest` bytes, at `basisPoints` of parity (§21 "Choosing
    /// the geometry": not normative, a reader takes any that the rules allow).
    static func geometry(size: UInt64, largest: UInt64, basisPoints: Int, maxColumnLength: UInt64 = ParityIndex.maxColumnLength)
        -> (sliceSize: Int, columnLength: UInt64, columns: Int, stripes: Int, parity: Int) {
        func parity(_ k: Int) -> Int { max(1, (basisPoints * k + 9_999) / 10_000) }
        var slice = ParityIndex.minSliceSize
        while slice < ParityIndex.maxSliceSize, (size + UInt64(slice) - 1) / UInt64(slice) > 1 << 17 { slice <<= 1 }
        let s = UInt64(slice)
        func roundUp(_ x: UInt64) -> UInt64 { (x + s - 1) / s * s }
        var kMax = ReedSolomon.maxRows - 1
        while kMax + parity(kMax) > ReedSolomon.maxRows { kMax -= 1 }
        // A column one slice longer than the largest chunk: a chunk then costs each group one slice.
        var length = roundUp(max(largest, 1)) + s
        // Enough columns that the parity is near its share (a column per 1/share at least).
        let wanted = UInt64(max(1, (10_000 + basisPoints - 1) / basisPoints))
        length = min(length, max(s, roundUp((size + wanted - 1) / wanted)))
        // No more columns than one stripe holds: every group then spans the whole archive, and any m
        // whole chunks are rebuilt wherever they lie.
        length = max(length, roundUp((size + UInt64(kMax) - 1) / UInt64(kMax)))
        length = max(s, min(length, maxColumnLength / s * s))
        let columns = Int((size + length - 1) / length)
        let stripes = (columns + kMax - 1) / kMax
        let k = (columns + stripes - 1) / stripes
        return (slice, length, columns, stripes, parity(k))
    }

    /// Makes the parity sidecar of the archive at `path`, signed with `signingKey`, replacing one that
    /// is there only once the new one is complete and synced. The archive must be intact: with
    /// `verifyFirst`, it is verified whole first (keyless, against `trusted`); `create` skips that for
    /// the archive it has just written and checked. Throws `IntegrityError` for a damaged archive,
    /// `SystemError` for I/O; a failed or killed run leaves no sidecar that looks complete.
    public static func create(for path: String, basisPoints: Int, signingKey: SigningKey, trusting trusted: [SigningPublicKey],
                              verifyFirst: Bool = true, workers: Int = Verifier.defaultWorkers) throws -> Report {
        try create(for: path, basisPoints: basisPoints, signingKey: signingKey, trusting: trusted, verifyFirst: verifyFirst,
                   workers: workers, maxColumnLength: ParityIndex.maxColumnLength)
    }

    /// `maxColumnLength` below 2^30 makes a small archive take several stripes, as one of over
    /// 242 GiB does (for the tests).
    static func create(for path: String, basisPoints: Int, signingKey: SigningKey, trusting trusted: [SigningPublicKey],
                       verifyFirst: Bool, workers: Int, maxColumnLength: UInt64) throws -> Report {
        let archive = try ArchiveFile(path: path)
        _ = try archive.checkSignature(trusting: trusted)
        if verifyFirst { _ = try archive.checkChunkHashes(workers: workers) }
        var largest: UInt64 = 0
        let table = archive.chunkTable()
        while let (_, _, record) = try table.next() { largest = max(largest, UInt64(record.sealedLength)) }

        let size = archive.fileSize
        let g = geometry(size: size, largest: largest, basisPoints: basisPoints, maxColumnLength: maxColumnLength)
        var index = ParityIndex(archiveDigest: archive.archiveDigest, archiveSize: size, sliceSize: g.sliceSize,
                                parityCount: g.parity, columnLength: g.columnLength, columnCount: g.columns,
                                stripeCount: g.stripes, signer: signingKey.publicKey.bytes,
                                dataHashes: [], parityHashes: [], signature: [])
        try index.checkGeometry()
        let dataHashes = HashTable(count: index.dataSliceCount)
        let parityHashes = HashTable(count: index.paritySliceCount)

        let sidecar = sidecarPath(for: path)
        PartialFiles.removeStale(for: sidecar)
        let partial = PartialFiles.name(for: sidecar)
        do {
            let out = try OpenFile.createNew(partial, mode: 0o644)
            let source = try OpenFile.forReading(path)
            try encode(index: index, source: source, out: out, dataHashes: dataHashes, parityHashes: parityHashes, workers: workers)
            index.dataHashes = dataHashes.bytes
            index.parityHashes = parityHashes.bytes
            let unsigned = index.encodedUnsigned()
            index.signature = signingKey.sign(index.signedMessage(unsigned))
            let encoded = unsigned + index.signature
            try out.write(encoded, at: 0)
            try out.write(encoded + index.tail(), at: UInt64(index.indexLength) + index.parityBytes)
            try out.sync()
            // The archive must not have changed under the encoding.
            try archive.checkUnchanged()
            try FileSystem.rename(partial, sidecar)
            try FileSystem.syncDirectory(FileSystem.parent(of: sidecar))
        } catch {
            FileSystem.remove(partial)
            throw error
        }
        return report(index, archive: path, sidecar: sidecar, largest: largest)
    }

    /// Makes the parity of the archive at `path` again, at the share the sidecar there has (after a
    /// rewrap changed the archive's recipient block, so the old parity no longer fits its bytes). The
    /// old sidecar's index must verify against `trusted`; returns nil when there is no sidecar.
    public static func remake(for path: String, signingKey: SigningKey, trusting trusted: [SigningPublicKey],
                              workers: Int = Verifier.defaultWorkers) throws -> Report? {
        let sidecar = sidecarPath(for: path)
        guard FileSystem.exists(sidecar) else { return nil }
        let old = try ParityIndex.read(from: try OpenFile.forReading(sidecar), trusting: trusted)
        // The share that gave m parity columns over the largest stripe.
        let share = max(100, min(10_000, (old.parityCount * 10_000) / old.largestStripe))
        return try create(for: path, basisPoints: share, signingKey: signingKey, trusting: trusted, workers: workers)
    }

    static func report(_ index: ParityIndex, archive: String, sidecar: String, largest: UInt64) -> Report {
        let s = UInt64(index.sliceSize)
        // A region of R bytes touches at most ⌈R/S⌉+1 consecutive slices; q consecutive slices put at most
        // ⌈q/G⌉ columns at one slice position, spread over the stripes in turn.
        func cost(_ bytes: UInt64) -> Int {
            let slices = Int((bytes + s - 1) / s) + 1
            let columns = (slices + index.slicesPerColumn - 1) / index.slicesPerColumn
            return (columns + index.stripeCount - 1) / index.stripeCount
        }
        let contiguous = UInt64(index.parityCount * index.stripeCount) * index.columnLength - s
        return Report(archive: archive, sidecar: sidecar, archiveDigest: index.archiveDigest.hex, archiveBytes: index.archiveSize,
                      parityBytes: index.parityBytes, sidecarBytes: index.sidecarSize, sliceSize: index.sliceSize,
                      columnLength: index.columnLength, columns: index.columnCount, stripes: index.stripeCount,
                      parityColumns: index.parityCount, chunksRecoverable: index.parityCount / max(1, cost(largest)),
                      contiguousBytesRecoverable: min(contiguous, index.archiveSize),
                      overheadPercent: Double(index.parityBytes) / Double(index.archiveSize) * 100)
    }

    /// Reads each stripe's columns piece by piece on `workers` threads, hashes every slice, and writes
    /// the parity columns at their places in `out`.
    private static func encode(index: ParityIndex, source: OpenFile, out: OpenFile, dataHashes: HashTable,
                               parityHashes: HashTable, workers: Int) throws {
        let s = index.sliceSize
        let slicesPerRun = max(1, SliceRun.pieceBytes / s)
        var runs: [SliceRun] = []
        for t in 0..<index.stripeCount {
            for first in stride(from: 0, to: index.slicesPerColumn, by: slicesPerRun) {
                runs.append(SliceRun(stripe: t, first: first, end: min(first + slicesPerRun, index.slicesPerColumn)))
            }
        }
        let codes = Dictionary(uniqueKeysWithValues: Set((0..<index.stripeCount).map { index.columns(inStripe: $0) })
            .map { ($0, ReedSolomon(k: $0, m: index.parityCount)) })
        let rows = index.largestStripe + index.parityCount
        let piece = SliceRun.pieceBytes
        try WorkQueue(count: runs.count).run(workers: workers, setUp: { _ in
            (buffers: RowBuffers(count: rows, bytes: piece), hashers: (0..<rows).map { _ in SliceHasher() })
        }) { item, state in
            let run = runs[item]
            let k = index.columns(inStripe: run.stripe)
            let code = codes[k]!
            let data = Array(state.buffers.rows[0..<k])
            let parity = Array(state.buffers.rows[k..<(k + index.parityCount)])
            var offset = UInt64(run.first * s)
            let end = UInt64(run.end * s)
            while offset < end {
                let length = Int(min(UInt64(piece), end - offset))
                for c in 0..<k {
                    let column = index.column(stripe: run.stripe, position: c)
                    try ParityIndex.readColumn(source, index: index, column: column, offset: offset, length: length,
                                               available: index.archiveSize, into: data[c])
                    index.hashDataPiece(UnsafeRawBufferPointer(rebasing: data[c][0..<length]), column: column, offset: offset,
                                        hasher: state.hashers[c]) { dataHashes.set($0, $1) }
                }
                code.encode(data: data.map { UnsafeRawBufferPointer($0) }, parity: parity, length: length)
                for r in 0..<index.parityCount {
                    let bytes = UnsafeRawBufferPointer(rebasing: parity[r][0..<length])
                    index.hashParityPiece(bytes, offset: offset, hasher: state.hashers[k + r]) { g, hash in
                        parityHashes.set((run.stripe * index.parityCount + r) * index.slicesPerColumn + g, hash)
                    }
                    try out.write(bytes, at: index.parityOffset(stripe: run.stripe, row: r, slice: 0) + offset)
                }
                offset += UInt64(length)
            }
        }
    }
}

/// Slice hashes written by several threads, each at its own place.
final class HashTable: @unchecked Sendable {
    private let storage: UnsafeMutableRawBufferPointer

    init(count: Int) {
        storage = .allocate(byteCount: max(1, count * ParityIndex.hashSize), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        self.count = count
    }

    let count: Int

    deinit { storage.deallocate() }

    func set(_ i: Int, _ hash: [UInt8]) {
        precondition(i >= 0 && i < count && hash.count == ParityIndex.hashSize)
        hash.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: storage[(i * ParityIndex.hashSize)...]).copyMemory(from: $0) }
    }

    var bytes: [UInt8] { Array(storage[0..<(count * ParityIndex.hashSize)]) }
}
