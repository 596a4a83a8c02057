/// Which entries of an archive a selective restore takes (`restore --include`): the entries the
/// patterns match, everything below a matched directory, the directories above each (so the restored
/// tree has its parents, with their archived metadata), and the file each taken hardlink names.
///
/// Patterns match as `create --exclude` does (`ExcludeRules`): one without `/` against each name
/// (`*.pdf`, `acme`), one with `/` against the whole archive path from the top-level name
/// (`crm/customers/acme`), `fnmatch(3)` on the names' bytes, `*` not crossing `/`.
///
/// It is a state machine over the manifest in archive order, so the same entries come out each time
/// the manifest is read: the plan (first reading) and the extraction (second) agree without holding
/// the manifest in memory.
struct EntrySelection {
    private let rules: ExcludeRules
    /// Files to take although no pattern names them: the targets of taken hardlinks (path bytes).
    private let targets: Set<[UInt8]>
    /// Directories above the current entry: their paths as bytes, the entry and where it ends in the
    /// tar stream, whether it was taken, and whether everything below it is.
    private var open: [(path: [UInt8], entry: ManifestEntry, end: UInt64, taken: Bool, subtree: Bool)] = []
    /// Files taken so far (by path key), to tell whether a taken hardlink's file was taken too.
    private var takenFiles: Set<[UInt8]> = []
    /// Hardlink targets that were not taken: the plan reads the manifest again with them.
    private(set) var missingTargets: Set<[UInt8]> = []

    init(patterns: [String], targets: Set<[UInt8]> = []) {
        rules = ExcludeRules(patterns: patterns)
        self.targets = targets
    }

    /// Whether an entry at `path` (bytes) would be taken for itself — matched, below a matched directory,
    /// or a hardlink's file: the plan decodes only such entries, and directories, in full.
    mutating func wouldTake(path bytes: [UInt8]) -> Bool {
        while let top = open.last, !PathRules.isBelow(bytes, top.path) { open.removeLast() }
        return open.last?.subtree == true || (!targets.isEmpty && targets.contains(bytes)) || rules.matches(path: bytes)
    }

    /// The next manifest entry and where it ends in the tar stream (the next entry's `tar_offset`);
    /// returns the entries to take because of it, in archive order (directories above it not taken
    /// before, then the entry itself), each with its end, or none. Deleted entries are never taken.
    ///
    /// A directory taken only because something below it is (`direct`) is made from its manifest entry
    /// alone, which holds all of its metadata: its tar entry, maybe chunks away, is not read.
    mutating func feed(_ entry: ManifestEntry, end: UInt64, path given: [UInt8]? = nil) throws -> [(entry: ManifestEntry, end: UInt64, direct: Bool)] {
        guard entry.kind != .deleted else { return [] }
        let bytes = given ?? NameCodec.bytes(entry.path)
        while let top = open.last, !PathRules.isBelow(bytes, top.path) { open.removeLast() }
        let matched = open.last?.subtree == true || (!targets.isEmpty && targets.contains(bytes)) || rules.matches(path: bytes)
        var out: [(entry: ManifestEntry, end: UInt64, direct: Bool)] = []
        if matched {
            for i in open.indices where !open[i].taken {
                open[i].taken = true
                out.append((open[i].entry, open[i].end, true))
            }
            out.append((entry, end, false))
            if entry.kind == .file { takenFiles.insert(bytes) }
            if entry.kind == .hardlink {
                let target = NameCodec.bytes(entry.linkTarget)
                if !takenFiles.contains(target) { missingTargets.insert(target) }
            }
        }
        if entry.kind == .directory { open.append((bytes, entry, end, matched, matched)) }
        return out
    }
}

/// A stretch of the tar stream holding consecutive taken entries: from the first's `tar_offset` to
/// where the entry after the last begins (or the end of the tar stream).
struct TarRun: Equatable {
    var start: UInt64
    var end: UInt64
    /// How many taken entries the run holds.
    var count: Int
    /// The first entry's position among its archive's tar entries (0 for the first): entries between
    /// taken ones (a run spans a gap within the chunks it reads anyway) are skipped by it.
    var firstOrdinal: Int = 0

    /// Extends the run to the entry at `tarOffset`, ending at `end`, when that reads no chunk the two
    /// would not read apart (the entries between are skipped); else returns false.
    mutating func absorb(tarOffset: UInt64, end: UInt64, chunkRawSize: UInt64) -> Bool {
        guard tarOffset >= self.end, tarOffset / chunkRawSize <= max(start, self.end - 1) / chunkRawSize + 1 else { return false }
        self.end = end
        count += 1
        return true
    }
}

/// What a selective restore will read: the runs of taken entries.
struct SelectivePlan {
    var runs: [TarRun] = []
    var patterns: [String]
    /// Hardlink targets taken besides what the patterns match.
    var targets: Set<[UInt8]> = []
    /// Top-level names of the taken entries.
    var topLevel: [String] = []
    /// Directories made from their manifest entries alone (taken for what is below them).
    var direct = 0
    /// The taken entries in order, kept from the planning pass while they are few (`keptLimit`); nil
    /// when there were more: extraction then reads the manifest again for them.
    var taken: [(entry: ManifestEntry, direct: Bool, ordinal: Int)]? = []
    static let keptLimit = 100_000
    var entries: Int { runs.reduce(0) { $0 + $1.count } + direct }
}

extension ArchiveFile {
    /// Feeds every manifest entry's body and head to `each` with where it ends in the tar stream (the
    /// next entry's `tar_offset`, the end of the stream for the last).
    private func forEachBodyWithEnd(_ reader: ManifestReader, _ each: ([UInt8], EntryHead, UInt64) throws -> Void) throws {
        var previous: ([UInt8], EntryHead)?
        while let body = try reader.nextBody() {
            let head = try EntryHead(v2: body)
            if let previous { try each(previous.0, previous.1, head.tarOffset) }
            previous = (body, head)
        }
        if let previous { try each(previous.0, previous.1, totals.tarBytes) }
    }

    /// Reads the manifest, checking what a restore relies on (canonical order, parents first,
    /// `tar_offset` rules, totals against the trailer; FORMAT.md §8), and plans the runs of the entries
    /// `patterns` select. Throws `OperationError` (usage) when nothing matches or the archive is of
    /// format version 1 (whose manifest has no offsets).
    func planSelection(cipher: ChunkCipher, patterns: [String]) throws -> SelectivePlan {
        guard header.formatVersion >= FormatV1.version2 else {
            throw OperationError("'\(path)' is a version 1 archive, whose manifest does not say where each entry is: restore it whole, without --include", kind: .usage)
        }
        var plan = SelectivePlan(patterns: patterns)
        // A taken hardlink whose file was not taken: read again, taking those files too (they are
        // files, never hardlinks, so once more is enough).
        while true {
            var selection = EntrySelection(patterns: patterns, targets: plan.targets)
            plan.runs = []
            plan.topLevel = []
            plan.direct = 0
            plan.taken = []
            var checks = ManifestChecks(archive: self)
            let reader = try ManifestReader(archive: self, cipher: cipher)
            let rawSize = UInt64(header.chunkRawSize)
            // The current entry's position among the tar entries (deleted entries have none).
            var ordinal = -1
            // Every entry's order, offsets and size are checked from its head; only directories and the
            // entries taken are decoded in full (most of a large manifest is neither).
            try forEachBodyWithEnd(reader) { body, head, end in
                try checks.check(kind: head.kind, path: head.path, link: head.kind == .hardlink ? head.link : [], size: head.size,
                                 tarOffset: head.tarOffset)
                guard end >= head.tarOffset else {
                    throw IntegrityError.malformed(what: "manifest entry '\(DisplayName.escaped(NameCodec.decode(head.path)))' (tar_offset \(head.tarOffset))")
                }
                if head.kind != .deleted { ordinal += 1 }
                guard head.kind == .directory || (head.kind != .deleted && selection.wouldTake(path: head.path)) else { return }
                let entry = try reader.decode(body)
                let bytes = head.path
                for (taken, takenEnd, direct) in try selection.feed(entry, end: end, path: bytes) {
                    if PathRules.isTopLevel(taken.path) { plan.topLevel.append(taken.path) }
                    if plan.taken != nil {
                        plan.taken!.append((taken, direct, direct ? 0 : ordinal))
                        if plan.taken!.count > SelectivePlan.keptLimit { plan.taken = nil }
                    }
                    if direct {
                        plan.direct += 1
                        continue
                    }
                    if plan.runs.isEmpty || !plan.runs[plan.runs.count - 1].absorb(tarOffset: taken.tarOffset, end: takenEnd, chunkRawSize: rawSize) {
                        plan.runs.append(TarRun(start: taken.tarOffset, end: takenEnd, count: 1, firstOrdinal: ordinal))
                    }
                }
            }
            try checks.finish()
            let missing = selection.missingTargets.subtracting(plan.targets)
            if missing.isEmpty { break }
            guard plan.targets.isEmpty else {
                throw IntegrityError.unsafeEntry(path: NameCodec.decode(missing.first!), reason: .hardlinkNotToRestoredFile)
            }
            plan.targets = missing
        }
        guard !plan.runs.isEmpty else {
            throw OperationError("no entry of '\(path)' matches \(patterns.map { "'\(DisplayName.escaped($0))'" }.joined(separator: ", ")); nothing was restored. 'coldarchive list \(path)' shows the archive's paths", kind: .usage)
        }
        return plan
    }

    /// Extracts the planned entries into `sink`: reads the manifest again for them (the same selection),
    /// and of the data section only the chunks their runs lie in, each checked against the signed chunk
    /// table and opened (authenticated) on `workers` threads; every entry is checked against its
    /// manifest entry as in a whole restore. Returns what was extracted and how many data chunks were read.
    func readSelection(_ plan: SelectivePlan, cipher: ChunkCipher, workers: Int, sink: EntrySink,
                       checkContent: Bool) throws -> (totals: PayloadTotals, dataChunks: Int) {
        // The taken entries again, in order: kept from the plan, or from a second reading of the manifest.
        var selection = EntrySelection(patterns: plan.patterns, targets: plan.targets)
        var queue: [(entry: ManifestEntry, end: UInt64, direct: Bool)] = []
        var queueIndex = 0
        let reader = plan.taken == nil ? try ManifestReader(archive: self, cipher: cipher) : nil
        var previous: ManifestEntry?
        var drained = false
        var ordinal = -1
        var kept = plan.taken?[...]
        let found = try ArchiveFile.extract(runs: plan.runs.map { ArchiveRun(archive: 0, run: $0) }, from: [(self, cipher)],
                                            workers: workers, sink: sink, checkContent: checkContent) {
            if kept != nil { return kept!.popFirst().map { TakenEntry(archive: 0, entry: $0.entry, direct: $0.direct, ordinal: $0.ordinal) } }
            while queueIndex == queue.count {
                queue.removeAll(keepingCapacity: true)
                queueIndex = 0
                if drained { return nil }
                let next = try reader?.next()
                if let previous {
                    if previous.kind != .deleted { ordinal += 1 }
                    queue = try selection.feed(previous, end: next?.tarOffset ?? totals.tarBytes)
                }
                previous = next
                if next == nil { drained = true }
            }
            defer { queueIndex += 1 }
            let taken = queue[queueIndex]
            return TakenEntry(archive: 0, entry: taken.entry, direct: taken.direct, ordinal: taken.direct ? 0 : ordinal)
        }
        return (found.totals, found.dataChunks[0])
    }

    /// Extracts taken entries of one or more archives into `sink`, in the order `next` gives them (the
    /// canonical order of the restored tree): a `direct` one from its manifest entry alone, the others
    /// from the runs of their archives' tar streams, in order, reading of each archive's data section
    /// only the chunks its runs lie in. Every entry is checked against its manifest entry as in a whole
    /// restore. Returns what was extracted and, per archive, how many data chunks were read. With
    /// `hashesChecked` (every chunk's hash was compared with the chunk table by a whole pass before),
    /// chunks are not hashed again; `checkUnchanged` at the end ties the reading to that pass.
    static func extract(runs: [ArchiveRun], from archives: [(file: ArchiveFile, cipher: ChunkCipher)], workers: Int, sink: EntrySink,
                        checkContent: Bool, hashesChecked: Bool = false, next: () throws -> TakenEntry?) throws -> (totals: PayloadTotals, dataChunks: [Int]) {
        // Per archive, the data chunks to read, ascending, each once (a run may end in the chunk the next begins in).
        var wanted = Array(repeating: [UInt64](), count: archives.count)
        for item in runs {
            let archive = archives[item.archive].file
            let rawSize = UInt64(archive.header.chunkRawSize)
            let first = item.run.start / rawSize, last = max(item.run.start, item.run.end - 1) / rawSize
            guard last < archive.totals.manifestFirstChunk else {
                throw IntegrityError.inconsistent(what: "the manifest of '\(archive.path)' places entries past the data section")
            }
            for index in first...last where wanted[item.archive].last.map({ index > $0 }) ?? true { wanted[item.archive].append(index) }
        }
        // The archive with the most chunks to read (a chain's full) gets the workers and their read-ahead;
        // every other one a single chunk in flight: read ahead, each would hold buffers it needs only later.
        let biggest = wanted.indices.max { wanted[$0].count < wanted[$1].count }
        let feeds = try archives.indices.map { i in
            try SelectedChunks(archive: archives[i].file, cipher: archives[i].cipher, wanted: wanted[i],
                               workers: i == biggest ? workers : 1, readAhead: i == biggest, hashesChecked: hashesChecked)
        }
        defer { for feed in feeds { feed.shutdown() } }
        let transfers = archives.map { EntryTransfer(version: $0.file.header.formatVersion, checkContent: checkContent && !sink.checksContentHashes) }

        var found = PayloadTotals()
        // Per archive: its runs still to read, and the run being read (one tar reader per archive, so a
        // chain's full is read as one run although the entries of newer archives come between its own).
        var pending = Array(repeating: [TarRun](), count: archives.count)
        for item in runs { pending[item.archive].append(item.run) }
        var started = pending.map { _ in 0 }
        var reading = [ReadingRun?](repeating: nil, count: archives.count)
        while let taken = try next() {
            let expected = taken.entry
            if taken.direct {
                try sink.begin(expected)
                try sink.end(expected)
                found.entries += 1
                continue
            }
            let a = taken.archive
            guard a >= 0, a < archives.count else { throw IntegrityError.inconsistent(what: "a manifest changed between two readings") }
            if reading[a] == nil || reading[a]!.remaining == 0 {
                guard started[a] < pending[a].count else { throw IntegrityError.inconsistent(what: "a manifest changed between two readings") }
                let run = pending[a][started[a]]
                started[a] += 1
                reading[a] = nil
                let archive = archives[a].file, feed = feeds[a]
                let rawSize = UInt64(archive.header.chunkRawSize)
                var chunk = run.start / rawSize
                let last = max(run.start, run.end - 1) / rawSize
                do {
                    let tar = try TarReader(version: archive.header.formatVersion, pieces: {
                        guard chunk <= last else { return nil }
                        let buffer = try feed.chunk(chunk)
                        let from = chunk == run.start / rawSize ? Int(run.start % rawSize) : 0
                        chunk += 1
                        return (buffer, from)
                    })
                    reading[a] = ReadingRun(run: run, tar: tar, remaining: run.count, position: run.firstOrdinal)
                } catch let error as LibArchiveError {
                    throw IntegrityError.tarStream(reason: error.message)
                }
            }
            guard taken.ordinal >= reading[a]!.position else {
                throw IntegrityError.inconsistent(what: "a manifest changed between two readings")
            }
            let tar = reading[a]!.tar
            var header: TarEntryHeader?
            // Entries between taken ones in the run: their headers are read, their data skipped.
            repeat {
                do { header = try tar.nextEntry() } catch let error as LibArchiveError {
                    throw IntegrityError.tarStream(reason: error.message)
                }
                guard header != nil else { throw IntegrityError.manifestMismatch(path: expected.path, reason: .notInTarStream) }
                reading[a]!.position += 1
            } while reading[a]!.position <= taken.ordinal
            guard let header else { throw IntegrityError.manifestMismatch(path: expected.path, reason: .notInTarStream) }
            found.contentBytes += try transfers[a].move(header, expected: expected, tarBase: reading[a]!.run.start, from: tar, to: sink)
            found.entries += 1
            reading[a]!.remaining -= 1
        }
        guard started == pending.map(\.count), reading.allSatisfy({ ($0?.remaining ?? 0) == 0 }) else { throw IntegrityError.inconsistent(what: "a manifest changed between two readings") }
        try sink.finishContent()
        found.peakChunksInFlight = feeds.map(\.peakInFlight).max() ?? 0
        for archive in archives { try archive.file.checkUnchanged() }
        return (found, wanted.map(\.count))
    }
}

/// An entry a restore takes: from which archive (an index into the archives being read), and whether
/// it is made from its manifest entry alone (a directory taken for what is below it).
struct TakenEntry {
    var archive: Int
    var entry: ManifestEntry
    var direct: Bool
    /// Where the entry ends in its archive's tar stream (the next entry's `tar_offset`).
    var end: UInt64 = 0
    /// Its position among its archive's tar entries.
    var ordinal: Int = 0
}

/// A run being read: its tar reader, how many taken entries it still holds, and the position (among
/// its archive's tar entries) of the entry the reader gives next.
private struct ReadingRun {
    let run: TarRun
    let tar: TarReader
    var remaining: Int
    var position: Int
}

/// A run of one archive's tar stream.
struct ArchiveRun {
    var archive: Int
    var run: TarRun
}

/// The data chunks a selective restore reads, in ascending order: each read from its place in the
/// file, its hash compared with the signed chunk table (unless a whole pass already did:
/// `hashesChecked`; the file is then checked unchanged at the end), and opened, on `workers` threads;
/// the chunk handed out last stays available (the next run may begin in it).
final class SelectedChunks {
    private let archive: ArchiveFile
    private let cipher: ChunkCipher
    /// Nil without read-ahead: each chunk is then read and opened on the calling thread, into buffers
    /// of its own size, and only the one handed out last is held.
    private let pipeline: OrderedPipeline<StoredChunk, (UInt64, ByteBuffer)>?
    private let cursor: ChunkTableCursor
    private let sealedPool: BufferPool?
    private let rawPool: BufferPool?
    private var wanted: ArraySlice<UInt64>
    private var current: (index: UInt64, buffer: ByteBuffer)?
    private let hashesChecked: Bool

    init(archive: ArchiveFile, cipher: ChunkCipher, wanted: [UInt64], workers: Int, readAhead: Bool = true, hashesChecked: Bool = false) throws {
        self.hashesChecked = hashesChecked
        self.archive = archive
        self.cipher = cipher
        self.wanted = wanted[...]
        cursor = archive.chunkTable()
        guard readAhead else {
            (pipeline, sealedPool, rawPool) = (nil, nil, nil)
            return
        }
        let maxInFlight = workers * 2 + 2
        let sealedPool = archive.sealedPool(keep: maxInFlight)
        let rawPool = BufferPool(capacity: Int(archive.header.chunkRawSize), keep: maxInFlight + 2)
        self.sealedPool = sealedPool
        self.rawPool = rawPool
        let rawSize = archive.header.chunkRawSize, totals = archive.totals
        pipeline = OrderedPipeline(workers: workers, maxInFlight: maxInFlight) {
            let opener = try ChunkOpener(cipher: cipher, chunkRawSize: rawSize, totals: totals, rawPool: rawPool, sealedPool: sealedPool)
            return { chunk in (chunk.index, try Self.open(chunk, with: opener, sealedPool: sealedPool, chunkRawSize: rawSize, totals: totals, hashesChecked: hashesChecked)) }
        }
    }

    /// Checks a sealed chunk's hash against the signed chunk table and opens it.
    private static func open(_ chunk: StoredChunk, with opener: ChunkOpener, sealedPool: BufferPool?, chunkRawSize rawSize: UInt32,
                             totals: TrailerTotals, hashesChecked: Bool) throws -> ByteBuffer {
        if !hashesChecked {
            let hash = Sodium.Blake2bState(outputBytes: 32)
            hash.update(chunk.sealed.bytes)
            guard hash.finalize() == chunk.record.hash else {
                sealedPool?.give(chunk.sealed)
                throw IntegrityError.chunkHashMismatch(index: chunk.index, offset: chunk.offset)
            }
        }
        // Every data chunk but the last holds exactly chunk_raw_size bytes (FORMAT.md §8): what
        // makes an offset in the tar stream an offset in a chunk.
        guard chunk.record.rawLength == rawSize || chunk.index == totals.manifestFirstChunk - 1 else {
            sealedPool?.give(chunk.sealed)
            throw IntegrityError.inconsistent(what: "data chunk \(chunk.index) holds \(chunk.record.rawLength) bytes, not chunk_raw_size")
        }
        return try opener.open(chunk)
    }

    var peakInFlight: Int { pipeline?.peakInFlight ?? 1 }

    /// Chunk `index`, opened: the one handed out last, or the next wanted one.
    func chunk(_ index: UInt64) throws -> ByteBuffer {
        if let current, current.index == index { return current.buffer }
        // A run may not need its last chunk after all (its last entry's padding alone lies there).
        while true {
            let (got, buffer) = try nextOpened()
            if let current { rawPool?.give(current.buffer) }
            current = (got, buffer)
            if got == index { return buffer }
            guard got < index else { throw IntegrityError.inconsistent(what: "chunk \(index) was wanted out of order") }
        }
    }

    /// The next wanted chunk, read from its place in the file (not yet checked).
    private func readNext() throws -> StoredChunk? {
        guard let want = wanted.popFirst() else { return nil }
        while let (i, offset, record) = try cursor.next() {
            guard i == want else { continue }
            let sealed = sealedPool?.take() ?? ByteBuffer(capacity: Int(record.sealedLength))
            guard Int(record.sealedLength) <= sealed.capacity else { throw IntegrityError.inconsistent(what: "chunk \(i) is longer than a chunk can be") }
            sealed.count = try archive.file.read(into: UnsafeMutableRawBufferPointer(rebasing: sealed.storage[0..<Int(record.sealedLength)]), at: offset)
            guard sealed.count == Int(record.sealedLength) else { throw IntegrityError.truncated(what: "chunk \(i)") }
            return StoredChunk(index: i, offset: offset, record: record, sealed: sealed)
        }
        throw IntegrityError.truncated(what: "chunk table")
    }

    private func nextOpened() throws -> (UInt64, ByteBuffer) {
        let next: (UInt64, ByteBuffer)?
        if let pipeline {
            next = try pipeline.next(refill: { try self.readNext() })
        } else if let chunk = try readNext() {
            // Scratch sized to this chunk, freed after it: an archive read this way holds one chunk.
            let opener = try ChunkOpener(cipher: cipher, chunkRawSize: chunk.record.rawLength, totals: archive.totals)
            next = (chunk.index, try Self.open(chunk, with: opener, sealedPool: nil, chunkRawSize: archive.header.chunkRawSize, totals: archive.totals,
                                                 hashesChecked: hashesChecked))
        } else {
            next = nil
        }
        guard let next else { throw IntegrityError.inconsistent(what: "a chunk was wanted that the plan did not list") }
        return next
    }

    func shutdown() { pipeline?.shutdown() }
}
