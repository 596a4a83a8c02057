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

    func encode(into w: inout ByteWriter) {
        var body = ByteWriter(capacity: 96 + path.count + link.count)
        body.u8(kind.rawValue)
        body.u16(mode)
        body.u32(uid)
        body.u32(gid)
        body.u64(size)
        body.i64(mtime)
        body.u32(mtimeNanoseconds)
        body.i64(ctime)
        body.u32(ctimeNanoseconds)
        body.u64(inode)
        body.raw(contentHash)
        body.u16(UInt16(path.count))
        body.raw(path)
        body.u16(UInt16(link.count))
        body.raw(link)
        w.u32(UInt32(body.bytes.count))
        w.raw(body.bytes)
    }

    static func decode(_ body: [UInt8]) throws -> IndexRecord {
        var r = ByteReader(body, what: "change index record")
        guard let kind = ManifestEntry.Kind(rawValue: try r.u8()), kind != .deleted else {
            throw IntegrityError.malformed(what: "change index record (type)")
        }
        let mode = try r.u16(), uid = try r.u32(), gid = try r.u32(), size = try r.u64()
        let mtime = try r.i64(), mtimeNanoseconds = try r.u32(), ctime = try r.i64(), ctimeNanoseconds = try r.u32()
        let inode = try r.u64()
        let hash = try r.raw(32)
        let path = try r.raw(Int(try r.u16()))
        let link = try r.raw(Int(try r.u16()))
        try r.expectEnd()
        return IndexRecord(kind: kind, mode: mode, uid: uid, gid: gid, size: size, mtime: mtime, mtimeNanoseconds: mtimeNanoseconds,
                           ctime: ctime, ctimeNanoseconds: ctimeNanoseconds, inode: inode, contentHash: hash, path: path, link: link)
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

    static func path(state: String, vaultID: String, series: String, archiveDigest: String) -> String {
        "\(directory(state: state, vaultID: vaultID, series: series))/\(archiveDigest).index"
    }

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
        let length = Int(try UInt32(littleEndianBytes: take(4)))
        guard length <= 16_384 else { throw IntegrityError.malformed(what: "change index record length") }
        let record = try IndexRecord.decode(try take(length))
        read += 1
        return record
    }

    private func take(_ count: Int) throws -> [UInt8] {
        guard offset + UInt64(count) <= end else { throw IntegrityError.truncated(what: "change index") }
        if offset < bufferStart || offset + UInt64(count) > bufferStart + UInt64(buffer.count) {
            let want = Int(min(UInt64(max(count, 1 << 20)), end - offset))
            buffer = try file.readExactly(want, at: offset, what: "change index")
            bufferStart = offset
        }
        let start = Int(offset - bufferStart)
        offset += UInt64(count)
        return Array(buffer[start..<start + count])
    }
}

/// Writes an index: records in order, then the header is known and the file is sealed with its checksum.
/// The records go to an unlinked temporary file first (a draft whose content hashes for newly stored
/// files are filled in from the manifest afterwards), so a killed run leaves nothing.
final class IndexDraft {
    private let file: OpenFile
    private var buffer = ByteWriter(capacity: 1 << 20)
    private var length: UInt64 = 0
    private(set) var count: UInt64 = 0

    init(directory: String) throws {
        let path = "\(directory)/.coldarchive-index-\(getpid())-\(Sodium.randomBytes(6).hex)"
        file = try OpenFile.createNew(path, mode: 0o600, readWrite: true)
        FileSystem.remove(path)
    }

    func append(_ record: IndexRecord) throws {
        record.encode(into: &buffer)
        count += 1
        if buffer.bytes.count >= 1 << 20 { try flush() }
    }

    func flush() throws {
        guard !buffer.bytes.isEmpty else { return }
        try file.write(buffer.bytes)
        length += UInt64(buffer.bytes.count)
        buffer = ByteWriter(capacity: 1 << 20)
    }

    /// The records back, in order.
    func records() throws -> AnySequence<Result<IndexRecord, Error>> {
        try flush()
        var offset: UInt64 = 0
        let file = self.file, length = self.length
        return AnySequence {
            AnyIterator {
                guard offset < length else { return nil }
                return Result {
                    let head = try file.readExactly(4, at: offset, what: "index draft")
                    let n = Int(try UInt32(littleEndianBytes: head))
                    let body = try file.readExactly(n, at: offset + 4, what: "index draft")
                    offset += 4 + UInt64(n)
                    return try IndexRecord.decode(body)
                }
            }
        }
    }
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
    /// Content hashes of the files the archive stores, from its manifest as it is written.
    private let hashes: IndexDraft
    private var peeked: IndexRecord?
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
        hashes = try IndexDraft(directory: workDirectory)
    }

    var comparesWithBase: Bool { base != nil }

    private func peek() throws -> IndexRecord? {
        if peeked == nil && !exhausted {
            peeked = try base?.next()
            if peeked == nil { exhausted = true }
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

    /// Whether `now` is as the base recorded it, by this tracker's rules.
    func isUnchanged(_ old: IndexRecord, _ now: IndexRecord) -> Bool { old.isUnchanged(as: now, ignoringChangeTime: ignoreChangeTime) }

    /// A file entry of the archive's manifest, as the manifest is written: its content hash and flags
    /// go into the new index.
    func stored(_ entry: ManifestEntry) throws {
        guard entry.kind == .file else { return }
        var record = IndexRecord(kind: .file, stat(), path: NameCodec.bytes(entry.path), contentHash: entry.contentHash)
        // A file that changed while it was read is found changed next time: no change time is -1.
        if entry.flags.contains(.changedWhileRead) { record.ctime = -1 }
        try hashes.append(record)
    }

    /// Writes the new archive's index to `path` (atomically): the draft's records, each stored file's
    /// content hash from the manifest. Returns the number of records.
    @discardableResult
    func writeIndex(to path: String, archiveDigest: [UInt8], sequence: UInt64, mode: ArchiveHeader.BackupMode) throws -> UInt64 {
        var out = ByteWriter(capacity: 1 << 20)
        out.raw(ChangeIndex.magic)
        out.raw(archiveDigest)
        out.u64(sequence)
        out.u8(mode.rawValue)
        out.u64(draft.count)
        let hashIterator = try hashes.records().makeIterator()
        var nextHash = try hashIterator.next()?.get()
        var byInode: [UInt64: [UInt8]] = [:]
        let temp = "\(FileSystem.parent(of: path))/.\(FileSystem.baseName(of: path)).tmp-\(getpid())-\(Sodium.randomBytes(4).hex)"
        let file = try OpenFile.createNew(temp, mode: 0o600)
        let checksum = Sodium.Blake2bState(outputBytes: 32)
        do {
            for item in try draft.records() {
                var record = try item.get()
                if record.kind == .file {
                    if let h = nextHash, h.path == record.path {
                        record.contentHash = h.contentHash
                        if h.ctime == -1 { record.ctime = -1 }
                        nextHash = try hashIterator.next()?.get()
                        byInode[record.inode] = record.contentHash
                    } else if record.contentHash == ManifestEntry.zeroHash, let shared = byInode[record.inode] {
                        // A second name of a file stored once (a hardlink in the manifest).
                        record.contentHash = shared
                    }
                }
                record.encode(into: &out)
                if out.bytes.count >= 1 << 20 {
                    checksum.update(out.bytes)
                    try file.write(out.bytes)
                    out = ByteWriter(capacity: 1 << 20)
                }
            }
            checksum.update(out.bytes)
            out.raw(checksum.finalize())
            try file.write(out.bytes)
            try file.sync()
            try FileSystem.rename(temp, path)
        } catch {
            FileSystem.remove(temp)
            throw error
        }
        return draft.count
    }
}
