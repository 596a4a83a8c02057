#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One path of a change index: what the archiving host saw of it when it archived it (docs/OPERATIONS.md,
/// "The change index"). An entry whose record still matches is not read again by an incremental.
struct IndexRecord: Equatable {
    var kind: ManifestEntry.Kind
    var mode: UInt16
    var uid: UInt32
    var gid: UInt32
    var size: UInt64
    var mtime: Int64
    var mtimeNanoseconds: UInt32
    var ctime: Int64
    var ctimeNanoseconds: UInt32
    var inode: UInt64
    /// BLAKE2b-256 of a file's content (zeros for other kinds, and while a draft awaits the manifest's).
    var contentHash: [UInt8]
    /// The path's bytes, as in the manifest.
    var path: [UInt8]
    /// A symlink's target (bytes); empty otherwise.
    var link: [UInt8]

    /// The record for what `st` describes.
    init(kind: ManifestEntry.Kind, _ st: stat, path: [UInt8], link: [UInt8] = [], contentHash: [UInt8] = ManifestEntry.zeroHash) {
        self.kind = kind
        mode = UInt16(UInt32(st.st_mode) & 0o7777)
        uid = UInt32(st.st_uid)
        gid = UInt32(st.st_gid)
        size = kind == .file ? UInt64(st.st_size) : 0
        mtime = Int64(st.st_mtim.tv_sec)
        mtimeNanoseconds = UInt32(st.st_mtim.tv_nsec)
        ctime = Int64(st.st_ctim.tv_sec)
        ctimeNanoseconds = UInt32(st.st_ctim.tv_nsec)
        inode = UInt64(st.st_ino)
        self.contentHash = contentHash
        self.path = path
        self.link = link
    }

    fileprivate init(kind: ManifestEntry.Kind, mode: UInt16, uid: UInt32, gid: UInt32, size: UInt64, mtime: Int64, mtimeNanoseconds: UInt32,
                     ctime: Int64, ctimeNanoseconds: UInt32, inode: UInt64, contentHash: [UInt8], path: [UInt8], link: [UInt8]) {
        (self.kind, self.mode, self.uid, self.gid, self.size) = (kind, mode, uid, gid, size)
        (self.mtime, self.mtimeNanoseconds, self.ctime, self.ctimeNanoseconds, self.inode) = (mtime, mtimeNanoseconds, ctime, ctimeNanoseconds, inode)
        (self.contentHash, self.path, self.link) = (contentHash, path, link)
    }

    /// Whether `now` describes the same, unchanged entry: type, size, modification and change time to the
    /// nanosecond, mode, owner, inode — and a symlink's target. Any change of content, attributes, ACLs,
    /// owner or link count moves the change time, which no user can set back.
    ///
    /// `ignoringChangeTime`: for file systems whose change times are unreliable (some network and FUSE
    /// ones); an edit that keeps size and modification time is then found only by `--rehash`.
    func isUnchanged(as now: IndexRecord, ignoringChangeTime: Bool = false) -> Bool {
        kind == now.kind && size == now.size && mtime == now.mtime && mtimeNanoseconds == now.mtimeNanoseconds
            && (ignoringChangeTime || (ctime == now.ctime && ctimeNanoseconds == now.ctimeNanoseconds)) && mode == now.mode && uid == now.uid
            && gid == now.gid && inode == now.inode && link == now.link
    }

    /// Bytes of a record's body before its path: type, mode, uid, gid, size, mtime, its nanoseconds,
    /// ctime, its nanoseconds, inode, content hash, path length.
    static let fixedBytes = 1 + 2 + 4 + 4 + 8 + 8 + 4 + 8 + 4 + 8 + 32 + 2
    /// Where the content hash and the change time sit in a body.
    static let hashOffset = 51
    static let ctimeOffset = 31

    func encode(into w: inout ByteWriter) {
        w.u32(UInt32(Self.fixedBytes + path.count + 2 + link.count))
        w.u8(kind.rawValue)
        w.u16(mode)
        w.u32(uid)
        w.u32(gid)
        w.u64(size)
        w.i64(mtime)
        w.u32(mtimeNanoseconds)
        w.i64(ctime)
        w.u32(ctimeNanoseconds)
        w.u64(inode)
        w.raw(contentHash)
        w.u16(UInt16(path.count))
        w.raw(path)
        w.u16(UInt16(link.count))
        w.raw(link)
    }

    /// Decodes the body at `b[start..<start + length]`.
    static func decode(_ b: [UInt8], at start: Int, length: Int) throws -> IndexRecord {
        func bad() -> IntegrityError { .malformed(what: "change index record") }
        guard length >= fixedBytes + 2, start + length <= b.count else { throw bad() }
        func u(_ at: Int, _ n: Int) -> UInt64 { (0..<n).reduce(UInt64(0)) { $0 | UInt64(b[start + at + $1]) << (8 * $1) } }
        guard let kind = ManifestEntry.Kind(rawValue: b[start]), kind != .deleted else { throw bad() }
        let pathLength = Int(u(83, 2))
        guard fixedBytes + pathLength + 2 <= length else { throw bad() }
        let linkLength = Int(u(85 + pathLength, 2))
        guard fixedBytes + pathLength + 2 + linkLength == length else { throw bad() }
        return IndexRecord(kind: kind, mode: UInt16(u(1, 2)), uid: UInt32(u(3, 4)), gid: UInt32(u(7, 4)), size: u(11, 8),
                           mtime: Int64(bitPattern: u(19, 8)), mtimeNanoseconds: UInt32(u(27, 4)), ctime: Int64(bitPattern: u(31, 8)),
                           ctimeNanoseconds: UInt32(u(39, 4)), inode: u(43, 8), contentHash: Array(b[start + 51..<start + 83]),
                           path: Array(b[start + 85..<start + 85 + pathLength]),
                           link: Array(b[start + 87 + pathLength..<start + 87 + pathLength + linkLength]))
    }
}

/// The archiving host's record of what the last archive of a series held, per path, bound to that
/// archive's digest: what lets an incremental (or differential) find changes without reading the base
/// archive's encrypted manifest, which a host holding only public keys cannot.
///
/// File `STATE/VAULT_ID/SERIES/ARCHIVE_DIGEST.index`:
///
///     "CAINDEX1" || archive_digest[32] || u64 sequence || u8 backup_mode || u64 record_count
///     || records (u32 length || body, in canonical path order) || BLAKE2b-256 of everything before
///
/// Integers little-endian. It is local state, not evidence: a missing, damaged or mismatched index
/// makes the next archive a full one (with the reason said), never a wrong incremental.
public enum ChangeIndex {
    static let magic = Array("CAINDEX1".utf8)

    /// Where a series' indexes are kept: `STATE/VAULT_ID/SERIES/`.
    static func directory(state: String, vaultID: String, series: String) -> String { "\(state)/\(vaultID)/\(series)" }

    /// The index of the archive whose archive digest is `archiveDigest` (hex), in a series' `directory`.
    static func path(in directory: String, archiveDigest: String) -> String { "\(directory)/\(archiveDigest).index" }

    /// The default state directory: `$COLDARCHIVE_STATE`, else `$XDG_STATE_HOME/coldarchive`, else
    /// `~/.local/state/coldarchive` (the XDG Base Directory rule for state that outlives a run).
    public static var defaultStateDirectory: String {
        let env = ProcessInfo.processInfo.environment
        if let own = env["COLDARCHIVE_STATE"], !own.isEmpty { return own }
        if let xdg = env["XDG_STATE_HOME"], xdg.hasPrefix("/") { return "\(xdg)/coldarchive" }
        return "\(NSHomeDirectory())/.local/state/coldarchive"
    }
}

/// Reads an index front to back, after checking its checksum and that it describes `archiveDigest`.
final class IndexReader {
    private let file: OpenFile
    private let end: UInt64
    private var offset: UInt64
    private var buffer: [UInt8] = []
    private var bufferStart: UInt64 = 0
    let recordCount: UInt64
    private var read: UInt64 = 0
    let sequence: UInt64

    /// Throws `OperationError` saying why the index cannot serve (missing, damaged, another archive's).
    init(path: String, archiveDigest: [UInt8]) throws {
        guard FileSystem.exists(path) else { throw OperationError("there is no change index for the base archive (\(FileSystem.baseName(of: path)))") }
        file = try OpenFile.forReading(path)
        let size = try file.size()
        guard size >= 8 + 32 + 8 + 1 + 8 + 32 else { throw OperationError("the change index '\(path)' is truncated") }
        // The checksum first: a damaged index must not steer an incremental.
        let hash = Sodium.Blake2bState(outputBytes: 32)
        let chunk = ByteBuffer(capacity: 1 << 20)
        var position: UInt64 = 0
        while position < size - 32 {
            let want = Int(min(UInt64(chunk.capacity), size - 32 - position))
            chunk.count = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: chunk.storage[0..<want]), at: position)
            guard chunk.count == want else { throw OperationError("the change index '\(path)' could not be read") }
            hash.update(chunk.bytes)
            position += UInt64(want)
        }
        guard try file.readExactly(32, at: size - 32, what: "change index checksum") == hash.finalize() else {
            throw OperationError("the change index '\(path)' is damaged (its checksum does not match)")
        }
        var head = ByteReader(try file.readExactly(57, at: 0, what: "change index header"), what: "change index header")
        guard try head.raw(8) == ChangeIndex.magic else { throw OperationError("'\(path)' is not a change index") }
        guard try head.raw(32) == archiveDigest else {
            throw OperationError("the change index '\(path)' describes another archive than the series' base")
        }
        sequence = try head.u64()
        _ = try head.u8()
        recordCount = try head.u64()
        offset = 57
        end = size - 32
    }

    /// The next record, or nil after the last.
    func next() throws -> IndexRecord? {
        guard read < recordCount else {
            guard offset == end else { throw IntegrityError.malformed(what: "change index (bytes after the last record)") }
            return nil
        }
        try ensure(4)
        var at = Int(offset - bufferStart)
        let length = Int(buffer[at]) | Int(buffer[at + 1]) << 8 | Int(buffer[at + 2]) << 16 | Int(buffer[at + 3]) << 24
        guard length <= 16_384 else { throw IntegrityError.malformed(what: "change index record length") }
        try ensure(4 + length)
        at = Int(offset - bufferStart)
        let record = try IndexRecord.decode(buffer, at: at + 4, length: length)
        lastEncoded = buffer[at..<at + 4 + length]
        offset += UInt64(4 + length)
        read += 1
        return record
    }

    /// The encoded bytes (length and body) of the record `next` returned last.
    private(set) var lastEncoded: ArraySlice<UInt8> = []

    /// Makes the next `count` bytes from `offset` available in `buffer` (reading 1 MiB at a time).
    private func ensure(_ count: Int) throws {
        guard offset + UInt64(count) <= end else { throw IntegrityError.truncated(what: "change index") }
        if offset < bufferStart || offset + UInt64(count) > bufferStart + UInt64(buffer.count) {
            let want = Int(min(UInt64(max(count, 1 << 20)), end - offset))
            buffer = try file.readExactly(want, at: offset, what: "change index")
            bufferStart = offset
        }
    }
}

/// Writes a change index as the walk goes: records straight into a temporary file beside the index's
/// final name, with room for the header; the content hashes of the files the archive stores (known only
/// once the manifest has them) and the header are patched in by `finish`, in one sequential pass that
/// also computes the checksum. A killed run leaves only the temporary file, which the next one removes.
final class IndexDraft {
    enum Role {
        /// Described completely as it is (an unchanged entry, a directory, a link).
        case plain
        /// A file the archive stores: its content hash comes from the manifest.
        case stored(inode: UInt64)
        /// Another name of a file stored under an earlier name (a hardlink in the manifest).
        case otherName(inode: UInt64)
    }

    static let headerBytes = 8 + 32 + 8 + 1 + 8
    static let tempPrefix = ".coldarchive-index-"
    private let file: OpenFile
    let path: String
    private var buffer = ByteWriter(capacity: 1 << 20)
    private var length = UInt64(headerBytes)
    private(set) var count: UInt64 = 0
    private var stored: [(offset: UInt64, inode: UInt64)] = []
    private var otherNames: [(offset: UInt64, inode: UInt64)] = []

    init(directory: String) throws {
        // Leftovers of runs that were killed (their process is gone) go first: nothing accumulates.
        for name in (try? FileSystem.directoryEntries(directory)) ?? [] where name.hasPrefix(Self.tempPrefix) {
            if let pid = Int32(name.dropFirst(Self.tempPrefix.count).split(separator: "-").first ?? ""), kill(pid, 0) != 0, errno == ESRCH {
                FileSystem.remove("\(directory)/\(name)")
            }
        }
        path = "\(directory)/\(Self.tempPrefix)\(getpid())-\(Sodium.randomBytes(6).hex)"
        file = try OpenFile.createNew(path, mode: 0o600, readWrite: true)
        try file.write([UInt8](repeating: 0, count: Self.headerBytes))
    }

    /// Appends a record already encoded (length and body), as an unchanged entry's was in the base index.
    func append(encoded: ArraySlice<UInt8>) throws {
        buffer.raw(encoded)
        count += 1
        if buffer.bytes.count >= 1 << 20 { try flush() }
    }

    func append(_ record: IndexRecord, _ role: Role = .plain) throws {
        let start = length + UInt64(buffer.bytes.count) + 4
        switch role {
        case .plain: break
        case .stored(let inode): stored.append((start, inode))
        case .otherName(let inode): otherNames.append((start, inode))
        }
        record.encode(into: &buffer)
        count += 1
        if buffer.bytes.count >= 1 << 20 { try flush() }
    }

    private func flush() throws {
        guard !buffer.bytes.isEmpty else { return }
        try file.write(buffer.bytes)
        length += UInt64(buffer.bytes.count)
        buffer = ByteWriter(capacity: 1 << 20)
    }

    /// Completes the index with the header and `hashes` — one (content hash, changed while read) per
    /// stored file, in order — seals it with its checksum, and renames it to `destination`.
    func finish(to destination: String, archiveDigest: [UInt8], sequence: UInt64, mode: ArchiveHeader.BackupMode,
                hashes: [(hash: [UInt8], changed: Bool)]) throws {
        try flush()
        guard hashes.count == stored.count else {
            throw IntegrityError.inconsistent(what: "the change index holds \(stored.count) stored files, the manifest \(hashes.count)")
        }
        // The patches, in file order: each stored file's hash (and a change time of -1 for one that changed
        // while it was read, so the next run reads it again), each other name's hash by inode.
        var patches: [(offset: UInt64, bytes: [UInt8])] = []
        var byInode: [UInt64: [UInt8]] = [:]
        var header = ByteWriter(capacity: Self.headerBytes)
        header.raw(ChangeIndex.magic)
        header.raw(archiveDigest)
        header.u64(sequence)
        header.u8(mode.rawValue)
        header.u64(count)
        patches.append((0, header.bytes))
        var other = otherNames[...]
        for (i, s) in stored.enumerated() {
            while let o = other.first, o.offset < s.offset {
                if let h = byInode[o.inode] { patches.append((o.offset + UInt64(IndexRecord.hashOffset), h)) }
                other.removeFirst()
            }
            if hashes[i].changed {
                var minusOne = ByteWriter()
                minusOne.i64(-1)
                patches.append((s.offset + UInt64(IndexRecord.ctimeOffset), minusOne.bytes))
            }
            patches.append((s.offset + UInt64(IndexRecord.hashOffset), hashes[i].hash))
            byInode[s.inode] = hashes[i].hash
        }
        for o in other { if let h = byInode[o.inode] { patches.append((o.offset + UInt64(IndexRecord.hashOffset), h)) } }
        patches.sort { $0.offset < $1.offset }
        // One pass: read each block, patch it, write it back, hash it.
        let checksum = Sodium.Blake2bState(outputBytes: 32)
        let block = ByteBuffer(capacity: 1 << 20)
        var position: UInt64 = 0
        var next = patches[...]
        while position < length {
            let want = Int(min(UInt64(block.capacity), length - position))
            block.count = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: block.storage[0..<want]), at: position)
            guard block.count == want else { throw IntegrityError.truncated(what: "change index draft") }
            var changed = false
            while let p = next.first, p.offset < position + UInt64(want) {
                for (k, byte) in p.bytes.enumerated() {
                    let at = p.offset + UInt64(k)
                    if at >= position && at < position + UInt64(want) { block.storage[Int(at - position)] = byte }
                }
                changed = true
                // A patch that runs into the next block is finished there.
                if p.offset + UInt64(p.bytes.count) > position + UInt64(want) { break }
                next.removeFirst()
            }
            if changed { try file.write(block.bytes, at: position) }
            checksum.update(block.bytes)
            position += UInt64(want)
        }
        try file.write(checksum.finalize(), at: length)
        try file.sync()
        try FileSystem.rename(path, destination)
    }

    /// Removes the temporary file (when the archive failed).
    func discard() { FileSystem.remove(path) }
}

extension UInt32 {
    init(littleEndianBytes b: [UInt8]) throws {
        guard b.count == 4 else { throw IntegrityError.truncated(what: "u32") }
        self = UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
    }
}

/// What an archive is compared with while it is walked (an incremental's or differential's base index),
/// and the index of the archive being made. The walker asks it, in canonical path order, which base
/// paths are gone (`deletions`) and what a path was (`take`); every entry it archives or finds unchanged
/// goes into the draft of the new index.
///
/// Two threads use it, on disjoint state: the walker (`deletions`, `take`, `peek`, `draft`) and the
/// thread writing the manifest (`stored`, into `hashes`); `writeIndex` runs after both are done.
final class ChangeTracker: @unchecked Sendable {
    /// The base's index; nil when every entry is to be stored (a full).
    private let base: IndexReader?
    /// Read every file whose metadata is unchanged and compare its content hash with the base's.
    let rehash: Bool
    /// Leave change times out of the comparison (`IndexRecord.isUnchanged`).
    let ignoreChangeTime: Bool
    let draft: IndexDraft
    /// Content hashes of the files the archive stores, from its manifest as it is written, in order.
    private var hashes: [(hash: [UInt8], changed: Bool)] = []
    private var peeked: IndexRecord?
    /// The peeked record's encoded bytes in the base index.
    private var peekedEncoded: ArraySlice<UInt8> = []
    private var exhausted = false
    /// The last path found gone (or replaced by a non-directory): base paths below it are implied.
    private var cut: [UInt8]?
    /// How many base paths were found unchanged, changed, and gone.
    private(set) var unchanged: UInt64 = 0
    private(set) var deleted: UInt64 = 0

    init(base: IndexReader?, rehash: Bool, ignoreChangeTime: Bool = false, workDirectory: String) throws {
        self.base = base
        self.rehash = rehash
        self.ignoreChangeTime = ignoreChangeTime
        draft = try IndexDraft(directory: workDirectory)
    }

    var comparesWithBase: Bool { base != nil }

    private func peek() throws -> IndexRecord? {
        if peeked == nil && !exhausted {
            peeked = try base?.next()
            if peeked == nil { exhausted = true } else { peekedEncoded = base!.lastEncoded }
        }
        return peeked
    }

    private func consumeAsGone(_ record: IndexRecord, into gone: inout [[UInt8]]) {
        peeked = nil
        if let cut, PathRules.isBelow(record.path, cut) { return }
        cut = record.path
        gone.append(record.path)
        deleted += 1
    }

    /// Base paths before `path` in canonical order that the walk did not reach: gone (topmost only).
    func deletions(before path: [UInt8]) throws -> [[UInt8]] {
        var gone: [[UInt8]] = []
        while let r = try peek(), PathRules.precedes(bytes: r.path, path) { consumeAsGone(r, into: &gone) }
        return gone
    }

    /// Base paths below `directory` that the walk did not reach, as the directory closes.
    func deletions(below directory: [UInt8]) throws -> [[UInt8]] {
        var gone: [[UInt8]] = []
        while let r = try peek(), PathRules.isBelow(r.path, directory) { consumeAsGone(r, into: &gone) }
        return gone
    }

    /// Every base path not reached, at the end of the walk.
    func deletionsOfTheRest() throws -> [[UInt8]] {
        var gone: [[UInt8]] = []
        while let r = try peek() { consumeAsGone(r, into: &gone) }
        return gone
    }

    /// The base record of `path` (call `deletions(before:)` first), consumed; nil for a new path.
    func take(_ path: [UInt8], kind: ManifestEntry.Kind) throws -> IndexRecord? {
        guard let r = try peek(), r.path == path else { return nil }
        peeked = nil
        // A directory replaced by a file or link: what was below it is implied gone (FORMAT.md §8).
        if r.kind == .directory && kind != .directory { cut = path }
        return r
    }

    /// The base record of `path` if it is next, without consuming it.
    func peek(_ path: [UInt8]) throws -> IndexRecord? {
        guard let r = try peek(), r.path == path else { return nil }
        return r
    }

    func countUnchanged() { unchanged += 1 }

    /// Takes the next base record, `path`'s, for an entry found unchanged (`isUnchanged`) and puts it
    /// into the new index: as its bytes were, unless change times are ignored (then `now`, whose change
    /// time may differ).
    func keepUnchanged(_ path: [UInt8], now: IndexRecord) throws {
        guard let old = try peek(), old.path == path else {
            throw IntegrityError.inconsistent(what: "the change index's next record is not '\(DisplayName.escaped(NameCodec.decode(path)))'")
        }
        peeked = nil
        if ignoreChangeTime { try draft.append(now) } else { try draft.append(encoded: peekedEncoded) }
        unchanged += 1
    }

    /// Whether `now` is as the base recorded it, by this tracker's rules.
    func isUnchanged(_ old: IndexRecord, _ now: IndexRecord) -> Bool { old.isUnchanged(as: now, ignoringChangeTime: ignoreChangeTime) }

    /// A file entry of the archive's manifest, as the manifest is written: its content hash (and
    /// whether it changed while it was read) goes into the new index.
    func stored(_ entry: ManifestEntry) throws {
        guard entry.kind == .file else { return }
        hashes.append((entry.contentHash, entry.flags.contains(.changedWhileRead)))
    }

    /// Writes the new archive's index to `path` (atomically). Returns the number of records.
    @discardableResult
    func writeIndex(to path: String, archiveDigest: [UInt8], sequence: UInt64, mode: ArchiveHeader.BackupMode) throws -> UInt64 {
        try draft.finish(to: path, archiveDigest: archiveDigest, sequence: sequence, mode: mode, hashes: hashes)
        return draft.count
    }

}
