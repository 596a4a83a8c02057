/// A sealed chunk read from disk, with what the chunk table says of it.
struct StoredChunk {
    var index: UInt64
    var offset: UInt64
    var record: ChunkRecord
    var sealed: ByteBuffer
}

extension ArchiveFile {
    /// A pool of buffers large enough for any sealed chunk of this archive.
    func sealedPool(keep: Int) -> BufferPool {
        BufferPool(capacity: ZstdFrameEncoder.bound(Int(header.chunkRawSize)) + ChunkCipher.tagSize, keep: keep)
    }

    /// Reads the chunk at the cursor's position into a buffer from `pool`.
    func readChunk(_ cursor: ChunkTableCursor, pool: BufferPool, selected: ((UInt64) -> Bool)? = nil) throws -> StoredChunk? {
        var next = try cursor.next()
        while let (index, _, _) = next, let selected, !selected(index) { next = try cursor.next() }
        guard let (index, offset, record) = next else { return nil }
        let sealed = pool.take()
        // A reader sizes its buffers from the trailer's totals (a manifest chunk holds at most
        // manifest_bytes): a chunk that claims more does not fit and is refused, not read past.
        guard Int(record.sealedLength) <= sealed.capacity else {
            pool.give(sealed)
            throw IntegrityError.inconsistent(what: "chunk \(index) is longer (\(record.sealedLength) bytes) than its section can hold")
        }
        sealed.count = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: sealed.storage[0..<Int(record.sealedLength)]), at: offset)
        guard sealed.count == Int(record.sealedLength) else { throw IntegrityError.truncated(what: "chunk \(index)") }
        return StoredChunk(index: index, offset: offset, record: record, sealed: sealed)
    }

    /// The keyless pass: every chunk's ciphertext hashed (on `workers` threads) and compared with the
    /// signed chunk table. Returns the number of bytes hashed. Stops at the first damaged chunk, unless
    /// `damaged` is given: then every chunk is hashed, each damaged one is reported to it, and the error
    /// for the first is thrown at the end. With `selected`, only the chunks it selects are read.
    package func checkChunkHashes(workers: Int, selected: ((UInt64) -> Bool)? = nil, damaged: ((DamagedChunk) -> Void)? = nil) throws -> UInt64 {
        let cursor = chunkTable()
        let maxInFlight = workers * 2 + 2
        let pool = sealedPool(keep: maxInFlight)
        let stopAtFirst = damaged == nil
        let pipeline = OrderedPipeline<StoredChunk, (UInt64, DamagedChunk?)>(workers: workers, maxInFlight: maxInFlight) {
            { chunk in
                let hash = Sodium.Blake2bState(outputBytes: 32)
                hash.update(chunk.sealed.bytes)
                let matches = hash.finalize() == chunk.record.hash
                let count = UInt64(chunk.sealed.count)
                pool.give(chunk.sealed)
                guard matches || !stopAtFirst else { throw IntegrityError.chunkHashMismatch(index: chunk.index, offset: chunk.offset) }
                return (count, matches ? nil : DamagedChunk(index: chunk.index, offset: chunk.offset, length: UInt64(count)))
            }
        }
        defer { pipeline.shutdown() }
        var hashed: UInt64 = 0
        var first: DamagedChunk?
        while let (n, bad) = try pipeline.next(refill: { try readChunk(cursor, pool: pool, selected: selected) }) {
            hashed += n
            if let bad {
                first = first ?? bad
                damaged?(bad)
            }
        }
        try checkUnchanged()
        if let first { throw IntegrityError.chunkHashMismatch(index: first.index, offset: first.offset) }
        return hashed
    }
}

/// Opens (authenticates and decrypts) one chunk and decompresses its frame into a fresh buffer of
/// exactly the size the signed chunk table records. One per thread: it owns scratch space.
final class ChunkOpener {
    private let cipher: ChunkCipher
    private let decoder: ZstdFrameDecoder
    private let frame: ByteBuffer
    private let lastIndex: UInt64
    private let manifestFirstChunk: UInt64

    private let rawPool: BufferPool?
    private let sealedPool: BufferPool?

    /// Raw buffers come from `rawPool` (the consumer gives them back); opened sealed buffers go back
    /// to `sealedPool`.
    init(cipher: ChunkCipher, chunkRawSize: UInt32, totals: TrailerTotals, rawPool: BufferPool? = nil,
         sealedPool: BufferPool? = nil) throws {
        self.rawPool = rawPool
        self.sealedPool = sealedPool
        self.cipher = cipher
        decoder = try ZstdFrameDecoder()
        frame = ByteBuffer(capacity: ZstdFrameEncoder.bound(Int(chunkRawSize)))
        lastIndex = totals.chunkCount - 1
        manifestFirstChunk = totals.manifestFirstChunk
    }

    func open(_ chunk: StoredChunk) throws -> ByteBuffer {
        let section: FormatV1.Section = chunk.index < manifestFirstChunk ? .data : .manifest
        let opened = cipher.open(chunk.sealed.bytes, index: chunk.index, last: chunk.index == lastIndex, section: section,
                                 into: frame.storage)
        sealedPool?.give(chunk.sealed)
        guard let n = opened else {
            throw IntegrityError.chunkAuthenticationFailed(index: chunk.index, offset: chunk.offset)
        }
        frame.count = n
        let raw = rawPool?.take() ?? ByteBuffer(capacity: Int(chunk.record.rawLength))
        do {
            raw.count = try decoder.decompress(frame.bytes, into: raw.storage, expectedSize: Int(chunk.record.rawLength))
        } catch let error as ZstdError {
            rawPool?.give(raw)
            throw IntegrityError.chunkDecompressionFailed(index: chunk.index, reason: error.message)
        }
        return raw
    }
}

/// Reads the manifest section on the calling thread, one entry at a time.
final class ManifestReader {
    private let archive: ArchiveFile
    private let cursor: ChunkTableCursor
    private let opener: ChunkOpener
    private var decoder: ManifestDecoder
    private var exhausted = false
    /// v2: the source description's bytes, once the first entry (or the end) has been read.
    var description: [UInt8]? { decoder.description }

    private let pool: BufferPool

    init(archive: ArchiveFile, cipher: ChunkCipher) throws {
        self.archive = archive
        decoder = ManifestDecoder(version: archive.header.formatVersion)
        cursor = archive.chunkTable(fromManifest: true)
        // Buffers for the largest manifest chunk there can be: a small manifest (an incremental's) needs
        // far less than chunk_raw_size, and a chain restore holds one reader per archive.
        let largest = UInt32(min(UInt64(archive.header.chunkRawSize), max(1, archive.totals.manifestBytes)))
        pool = BufferPool(capacity: ZstdFrameEncoder.bound(Int(largest)) + ChunkCipher.tagSize, keep: 1)
        opener = try ChunkOpener(cipher: cipher, chunkRawSize: largest, totals: archive.totals, sealedPool: pool)
    }

    /// The next entry, or nil after the last; checks that the count matches the trailer.
    func next() throws -> ManifestEntry? {
        guard let body = try nextBody() else { return nil }
        return try decode(body)
    }

    /// Decodes a body `nextBody` gave (owner names shared through the decoder's cache).
    func decode(_ body: [UInt8]) throws -> ManifestEntry { try decoder.decode(body) }

    /// The next entry's encoded body, undecoded (`EntryHead`, `ManifestEntry.decode`), or nil after the last.
    func nextBody() throws -> [UInt8]? {
        while true {
            if decoder.decodedCount < archive.totals.entryCount, let body = try decoder.nextBody() { return body }
            if decoder.decodedCount == archive.totals.entryCount && exhausted {
                try decoder.expectEnd()
                return nil
            }
            guard let chunk = try archive.readChunk(cursor, pool: pool) else {
                guard decoder.decodedCount == archive.totals.entryCount else {
                    throw IntegrityError.inconsistent(what: "the manifest holds \(decoder.decodedCount) entries, the trailer says \(archive.totals.entryCount)")
                }
                exhausted = true
                continue
            }
            decoder.feed(try opener.open(chunk).toArray())
        }
    }
}

/// Receives the entries of an archive as they are read: the safe extractor for restore, nothing for
/// `verify --deep`.
protocol EntrySink: AnyObject {
    /// Whether the sink itself hashes each file's content and compares it with the manifest (on its
    /// own threads); the reader then does not.
    var checksContentHashes: Bool { get }
    func begin(_ entry: ManifestEntry) throws
    /// Room for the current file's next content bytes: the reader fills a prefix and commits it.
    func space() throws -> UnsafeMutableRawBufferPointer
    func commit(_ count: Int) throws
    func end(_ entry: ManifestEntry) throws
    /// Waits until every entry handed over is complete; throws the first failure.
    func finishContent() throws
}

/// What a full read of the payload found.
public struct PayloadTotals: Sendable, Equatable {
    public var entries: UInt64 = 0
    public var contentBytes: UInt64 = 0
    /// The most chunks that were ever read but not yet consumed by the tar reader.
    public var peakChunksInFlight: Int = 0
}

extension ArchiveFile {
    /// The first half of every keyed check: the manifest decrypted and checked against the trailer's
    /// totals and the canonical entry order (no repeats, parents first). Returns the top-level names.
    func checkManifest(cipher: ChunkCipher) throws -> [String] {
        let reader = try ManifestReader(archive: self, cipher: cipher)
        var topLevel: [String] = []
        var checks = ManifestChecks(archive: self)
        let v2 = header.formatVersion >= FormatV1.version2
        // The files hardlinks name, for the second pass below (memory: one key per hardlink).
        var hardlinkTargets = Set<[UInt8]>()
        while let entry = try reader.next() {
            try checks.check(entry)
            if entry.kind == .hardlink { hardlinkTargets.insert(PathRules.key(entry.linkTarget)) }
            if PathRules.isTopLevel(entry.path) && entry.kind != .deleted { topLevel.append(entry.path) }
        }
        try checks.finish()
        if !hardlinkTargets.isEmpty { try checkHardlinks(cipher: cipher, targets: hardlinkTargets) }
        if v2 {
            _ = try SourceDescription.decode(reader.description ?? [], topLevel: topLevel)
        } else if !header.sources.isEmpty, !PathRules.same(header.sources, topLevel) {
            // v1: the plaintext `sources` field, when present, lists exactly the top-level entries (FORMAT.md §5).
            throw IntegrityError.inconsistent(what: "the header's sources field names \(header.sources.map { "'\(DisplayName.escaped($0))'" }.joined(separator: ", ")), the archive's top-level entries are \(topLevel.map { "'\(DisplayName.escaped($0))'" }.joined(separator: ", "))")
        }
        return topLevel
    }

    /// A second pass over the manifest, for archives with hardlinks: each names an earlier entry of type
    /// file and carries that file's metadata (FORMAT.md §8: v1 mode and mtime; v2 mode, owner, times,
    /// `changed_while_read` and records 0x01–0x05). Only the named files are remembered.
    private func checkHardlinks(cipher: ChunkCipher, targets: Set<[UInt8]>) throws {
        let reader = try ManifestReader(archive: self, cipher: cipher)
        let v2 = header.formatVersion >= FormatV1.version2
        var files: [[UInt8]: ManifestEntry] = [:]
        while let entry = try reader.next() {
            let key = PathRules.key(entry.path)
            if entry.kind == .file, targets.contains(key) { files[key] = entry }
            guard entry.kind == .hardlink else { continue }
            guard let file = files[PathRules.key(entry.linkTarget)] else {
                throw IntegrityError.unsafeEntry(path: entry.path, reason: .hardlinkNotToRestoredFile)
            }
            var shared = file
            shared.flags.remove(.shrank)
            let same = v2 ? entry.sameMetadata(as: shared)
                          : entry.mode == file.mode && entry.mtime == file.mtime && entry.mtimeNanoseconds == file.mtimeNanoseconds
            guard same else { throw IntegrityError.manifestMismatch(path: entry.path, reason: .hardlinkMetadata) }
        }
    }

    /// Decrypts and decompresses the data section on `workers` threads, parses the tar stream, and
    /// checks every entry against the manifest — name, type, mode, time, size, link and, with
    /// `checkContent`, content hash (here, or in the sink when it says it does) — and against the path
    /// rules, handing each to `sink` as it goes.
    func readPayload(cipher: ChunkCipher, workers: Int, sink: EntrySink?, checkContent: Bool = true) throws -> PayloadTotals {
        let manifest = try ManifestReader(archive: self, cipher: cipher)
        let cursor = chunkTable()
        let dataChunks = totals.manifestFirstChunk
        let rawSize = header.chunkRawSize
        let totals = self.totals
        let maxInFlight = workers * 2 + 2
        let sealedPool = sealedPool(keep: maxInFlight)
        // The tar reader holds one raw buffer while the pipeline holds the others.
        let rawPool = BufferPool(capacity: Int(rawSize), keep: maxInFlight + 2)
        let pipeline = OrderedPipeline<StoredChunk, ByteBuffer>(workers: workers, maxInFlight: maxInFlight) {
            let opener = try ChunkOpener(cipher: cipher, chunkRawSize: rawSize, totals: totals, rawPool: rawPool, sealedPool: sealedPool)
            return { try opener.open($0) }
        }
        defer { pipeline.shutdown() }
        var chunksRead: UInt64 = 0
        var delivered: UInt64 = 0
        var previous: ByteBuffer?
        // Every header block is checked for a type the format carries before libarchive acts on it.
        var structure = TarStructureCheck()
        let nextRaw: () throws -> ByteBuffer? = {
            // libarchive asks for the next piece only once it is done with the previous one.
            if let previous { rawPool.give(previous) }
            let raw = try pipeline.next(refill: {
                guard chunksRead < dataChunks else { return nil }
                chunksRead += 1
                return try self.readChunk(cursor, pool: sealedPool)
            })
            previous = raw
            delivered += UInt64(raw?.count ?? 0)
            if let raw { try structure.feed(raw.bytes) }
            return raw
        }
        let tar: TarReader
        do { tar = try TarReader(version: header.formatVersion, source: nextRaw) } catch let error as LibArchiveError {
            throw IntegrityError.tarStream(reason: error.message)
        }
        var found = PayloadTotals()
        let transfer = EntryTransfer(version: header.formatVersion, checkContent: checkContent && !(sink?.checksContentHashes ?? false))
        while true {
            let header: TarEntryHeader?
            do { header = try tar.nextEntry() } catch let error as LibArchiveError {
                throw IntegrityError.tarStream(reason: error.message)
            }
            guard let header else { break }
            var next = try manifest.next()
            while let deleted = next, deleted.kind == .deleted { next = try manifest.next() }
            guard let expected = next else {
                throw IntegrityError.manifestMismatch(path: header.path, reason: .notInManifest)
            }
            found.contentBytes += try transfer.move(header, expected: expected, tarBase: 0, from: tar, to: sink)
            found.entries += 1
        }
        try sink?.finishContent()
        while let extra = try manifest.next() {
            guard extra.kind == .deleted else { throw IntegrityError.manifestMismatch(path: extra.path, reason: .notInTarStream) }
        }
        // After the end-of-archive marker only zero bytes may follow (FORMAT.md §10), and every data
        // chunk must be read and authenticated, padding included.
        func requireZeros(_ bytes: UnsafeRawBufferPointer) throws {
            guard !bytes.contains(where: { $0 != 0 }) else {
                throw IntegrityError.tarStream(reason: "bytes other than zeros follow the end-of-archive marker")
            }
        }
        if let (buffer, start) = tar.unconsumedTail(totalDelivered: delivered) {
            try requireZeros(UnsafeRawBufferPointer(rebasing: buffer.bytes[start...]))
        }
        while let raw = try nextRaw() { try requireZeros(raw.bytes) }
        guard chunksRead == dataChunks else { throw IntegrityError.truncated(what: "data section") }
        found.peakChunksInFlight = pipeline.peakInFlight
        try checkUnchanged()
        return found
    }

    static func check(_ header: TarEntryHeader, against expected: ManifestEntry, version: UInt16, tarBase: UInt64 = 0) throws {
        func mismatch(_ reason: ManifestMismatch) -> IntegrityError { .manifestMismatch(path: header.path, reason: reason) }
        let parts = try PathRules.components(of: header.path)
        let v2 = version >= FormatV1.version2
        if v2 {
            // Names are bytes in the tar stream too (hdrcharset=BINARY): they must agree exactly.
            guard PathRules.same(header.path, expected.path) else { throw mismatch(.path(manifest: expected.path)) }
        } else {
            // v1: the one place names are compared up to canonical equivalence (Swift's `==`), not by
            // bytes: libarchive composes UTF-8 names towards NFC when it writes and when it reads pax
            // headers (archive_string.c, SCONV_NORMALIZATION_C on every converter from UTF-8), so the
            // tar stream may hold "é" where the manifest holds "e" + U+0301. The manifest's bytes are
            // what restore writes.
            guard header.path == expected.path else { throw mismatch(.path(manifest: expected.path)) }
            guard header.mode & 0o7000 == 0 else {
                throw IntegrityError.unsafeEntry(path: header.path, reason: .privilegeBits)
            }
            guard header.uid == 0, header.gid == 0, header.userName.isEmpty, header.groupName.isEmpty else {
                throw mismatch(.owner)
            }
        }
        guard header.kind == expected.kind else { throw mismatch(.kind(tar: header.kind, manifest: expected.kind)) }
        guard header.kind != .directory || header.hadTrailingSlash else { throw mismatch(.directoryWithoutSlash) }
        guard header.mode == Self.tarMode(of: expected, version: version) else { throw mismatch(.mode(tar: header.mode, manifest: expected.mode)) }
        let (seconds, nanoseconds) = v2 ? TarWriter.timeFromPax(header.mtime, header.mtimeNanoseconds) : (header.mtime, header.mtimeNanoseconds)
        guard seconds == expected.mtime, nanoseconds == expected.mtimeNanoseconds else {
            throw mismatch(.modificationTime)
        }
        guard header.size == expected.size else { throw mismatch(.size(tar: header.size, manifest: expected.size)) }
        if v2 {
            guard PathRules.same(header.linkTarget, expected.linkTarget) else { throw mismatch(.linkTarget) }
            guard tarBase + header.headerPosition == expected.tarOffset else { throw mismatch(.tarOffset(tar: tarBase + header.headerPosition, manifest: expected.tarOffset)) }
            guard header.uid == expected.uid, header.gid == expected.gid, header.userName == (expected.userName ?? ""),
                  header.groupName == (expected.groupName ?? "") else { throw mismatch(.owner) }
            // libarchive reads each attribute from both records it writes (LIBARCHIVE.xattr, SCHILY.xattr).
            guard Set(header.xattrs) == Set(expected.xattrs) else { throw mismatch(.extendedAttributes) }
            guard sameACL(header.accessACL, expected.accessACL), sameACL(header.defaultACL, expected.defaultACL) else { throw mismatch(.acl) }
            // libarchive reads the map back without its zero-length regions.
            guard header.sparseMap?.filter({ $0.length > 0 }) == expected.sparseMap?.filter({ $0.length > 0 }) else { throw mismatch(.sparseMap) }
        } else {
            guard header.linkTarget == expected.linkTarget else { throw mismatch(.linkTarget) }
        }
        switch header.kind {
        case .symlink:
            if !v2 && PathRules.symlinkEscapes(linkPath: parts, target: header.linkTarget) {
                throw IntegrityError.unsafeEntry(path: header.path, reason: .symlinkEscapes(target: header.linkTarget))
            }
            guard !header.linkTarget.isEmpty, !header.linkTarget.utf8.contains(0) else {
                throw IntegrityError.unsafeEntry(path: header.path, reason: .symlinkEscapes(target: header.linkTarget))
            }
        case .hardlink:
            _ = try PathRules.components(of: header.linkTarget)
        case .file, .directory, .deleted:
            break
        }
    }

    /// The mode the tar header holds for a manifest entry (FORMAT.md §10): the manifest's, except that
    /// with an access ACL libarchive keeps the ACL's GROUP_OBJ permissions in the group bits (the mask,
    /// which Linux keeps there, is in the ACL record).
    static func tarMode(of entry: ManifestEntry, version: UInt16) -> UInt32 {
        var mode = UInt32(entry.mode)
        if version >= FormatV1.version2, let group = entry.accessACL.first(where: { $0.tag == .groupObj }) {
            mode = mode & ~0o070 | UInt32(group.permissions) << 3
        }
        return mode
    }

    /// ACLs as libarchive reads them back: the same entries (tag, permissions, id) — libarchive's reader
    /// may leave out the owner, group and other entries it folds into the mode, so those are compared
    /// only when it gives them.
    private static func sameACL(_ tar: [ACLEntry], _ manifest: [ACLEntry]) -> Bool {
        func key(_ e: ACLEntry) -> String { "\(e.tag.rawValue):\(e.isNamed ? e.id : ACLEntry.undefinedID):\(e.permissions)" }
        let tarKeys = Set(tar.map(key)), manifestKeys = Set(manifest.map(key))
        let named = { (e: ACLEntry) in e.isNamed || e.tag == .mask }
        return Set(tar.filter(named).map(key)) == Set(manifest.filter(named).map(key)) && tarKeys.isSubset(of: manifestKeys)
    }
}

/// What every reading of a manifest checks entry by entry (FORMAT.md §8): canonical order with parents
/// first, `deleted` entries only in incremental and differential archives, the `tar_offset` rules, and
/// at the end that the files' sizes add up to the trailer's total.
struct ManifestChecks {
    private let archive: ArchiveFile
    private let v2: Bool
    private let mayDelete: Bool
    private var order = EntryOrderCheck()
    private var lastOffset: UInt64?
    private var contentBytes: UInt64 = 0

    init(archive: ArchiveFile) {
        self.archive = archive
        v2 = archive.header.formatVersion >= FormatV1.version2
        mayDelete = archive.header.backupMode == .incremental || archive.header.backupMode == .differential
    }

    /// Returns the entry's path as bytes.
    @discardableResult
    mutating func check(_ entry: ManifestEntry) throws -> [UInt8] {
        let bytes = NameCodec.bytes(entry.path)
        try check(kind: entry.kind, path: bytes, link: entry.kind == .hardlink ? NameCodec.bytes(entry.linkTarget) : [],
                  size: entry.size, tarOffset: entry.tarOffset)
        return bytes
    }

    /// The same checks on an entry's parts (`EntryHead`): its type, path and (for a hardlink) link
    /// bytes, size and `tar_offset`.
    mutating func check(kind: ManifestEntry.Kind, path bytes: [UInt8], link: [UInt8], size: UInt64, tarOffset: UInt64) throws {
        try order.check(kind: kind, path: bytes, link: link)
        func shown() -> String { DisplayName.escaped(NameCodec.decode(bytes)) }
        if v2 {
            guard kind != .deleted || mayDelete else {
                throw IntegrityError.malformed(what: "manifest entry '\(shown())' (a deleted entry in a full archive)")
            }
            // tar_offset: 512-aligned, 0 first, increasing over the entries in the tar stream.
            guard tarOffset % 512 == 0, tarOffset < archive.totals.tarBytes else {
                throw IntegrityError.malformed(what: "manifest entry '\(shown())' (tar_offset \(tarOffset))")
            }
            if kind != .deleted {
                guard lastOffset.map({ tarOffset > $0 }) ?? (tarOffset == 0) else {
                    throw IntegrityError.malformed(what: "manifest entry '\(shown())' (tar_offset \(tarOffset) out of order)")
                }
                lastOffset = tarOffset
            }
        }
        let (sum, overflow) = contentBytes.addingReportingOverflow(size)
        guard !overflow else { throw IntegrityError.inconsistent(what: "the manifest's file sizes add up to more than 2^64 bytes") }
        contentBytes = sum
    }

    /// After the last entry: the archive file is unchanged, and the sizes add up to the trailer's total.
    func finish() throws {
        try archive.checkUnchanged()
        guard contentBytes == archive.totals.contentBytes else {
            throw IntegrityError.inconsistent(what: "the manifest's files add up to \(contentBytes) bytes, the trailer says \(archive.totals.contentBytes)")
        }
    }
}

/// Moves one tar entry's content from the tar reader to a sink, checking the entry against its
/// manifest entry (FORMAT.md §8) first and its size (and, with `checkContent`, its BLAKE2b-256) after.
/// One per reading thread: it owns a buffer and a hash state.
final class EntryTransfer {
    private let version: UInt16
    private let checkContent: Bool
    private let buffer = ByteBuffer(capacity: 1 << 20)
    private let hash = Sodium.Blake2bState(outputBytes: 32)

    init(version: UInt16, checkContent: Bool) {
        self.version = version
        self.checkContent = checkContent
    }

    /// Returns the content bytes moved. `tarBase` is where the reader's stream starts in the archive's
    /// tar stream (0 unless it reads a run of entries).
    func move(_ header: TarEntryHeader, expected: ManifestEntry, tarBase: UInt64, from tar: TarReader, to sink: EntrySink?) throws -> UInt64 {
        try ArchiveFile.check(header, against: expected, version: version, tarBase: tarBase)
        try sink?.begin(expected)
        if checkContent { hash.reset() }
        var size: UInt64 = 0
        while true {
            let space = expected.kind == .file ? try sink?.space() ?? buffer.storage : buffer.storage
            let n: Int
            do { n = try tar.readData(into: space) } catch let error as LibArchiveError {
                throw IntegrityError.tarStream(reason: error.message)
            }
            if n == 0 { break }
            size += UInt64(n)
            guard size <= expected.size else {
                throw IntegrityError.manifestMismatch(path: expected.path, reason: .moreContent(manifestSize: expected.size))
            }
            if checkContent { hash.update(UnsafeRawBufferPointer(rebasing: space[0..<n])) }
            try sink?.commit(n)
        }
        guard size == expected.size else {
            throw IntegrityError.manifestMismatch(path: expected.path, reason: .contentSize(found: size, manifest: expected.size))
        }
        if checkContent && expected.kind == .file && hash.finalize() != expected.contentHash {
            throw IntegrityError.manifestMismatch(path: expected.path, reason: .contentHash)
        }
        try sink?.end(expected)
        return size
    }
}
