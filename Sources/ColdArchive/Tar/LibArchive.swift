internal import CArchive
#if canImport(Glibc)
import Glibc
#endif

/// File type bits of `archive_entry_filetype` (the C macros do not import into Swift).
enum FileTypeBits {
    static let regular: UInt32 = 0o100000
    static let directory: UInt32 = 0o040000
    static let symlink: UInt32 = 0o120000
    static let characterDevice: UInt32 = 0o020000
    static let blockDevice: UInt32 = 0o060000
    static let fifo: UInt32 = 0o010000
    static let socket: UInt32 = 0o140000
}

/// What a tar entry says about itself, independent of libarchive's types.
struct TarEntryHeader: Equatable {
    var kind: ManifestEntry.Kind
    var path: String
    /// Permission bits including setuid/setgid/sticky as the tar stream states them.
    var mode: UInt32
    var mtime: Int64
    var mtimeNanoseconds: UInt32
    var size: UInt64
    var linkTarget: String
    // Read from v2 archives (and written from the manifest entry): owner, attributes, ACLs.
    var uid: UInt32 = 0
    var gid: UInt32 = 0
    var userName: String = ""
    var groupName: String = ""
    var xattrs: [ExtendedAttribute] = []
    var accessACL: [ACLEntry] = []
    var defaultACL: [ACLEntry] = []
    /// Where the entry's first header block starts in the tar stream (libarchive's header position).
    var headerPosition: UInt64 = 0
    /// Whether a directory's name ended in `/` in the tar header.
    var hadTrailingSlash = false
    /// A sparse file's data regions as the tar stream maps them; nil when it has no map.
    var sparseMap: [SparseRegion]?
}

/// A libarchive failure, with the library's own message.
struct LibArchiveError: Error, CustomStringConvertible {
    let message: String
    var description: String { "libarchive: \(message)" }

    static func from(_ archive: OpaquePointer) -> LibArchiveError {
        LibArchiveError(message: archive_error_string(archive).map { String(cString: $0) } ?? "unknown error")
    }
}

/// libarchive converts names through the thread's locale; archive names are UTF-8, so the calling
/// thread is switched to the C.UTF-8 locale (per thread, with `uselocale`) before libarchive runs.
enum ArchiveLocale {
    // A process-wide locale object that is never freed or changed after creation.
    nonisolated(unsafe) private static let utf8: locale_t? = newlocale(LC_CTYPE_MASK, "C.UTF-8", nil)

    static func useUTF8OnThisThread() {
        if let utf8 { uselocale(utf8) }
    }
}

/// Writes a pax tar stream with libarchive into a callback: no file, no blocking device.
final class TarWriter {
    private final class Context {
        let sink: (UnsafeRawBufferPointer) throws -> Void
        var error: Error?
        var written: UInt64 = 0
        init(sink: @escaping (UnsafeRawBufferPointer) throws -> Void) { self.sink = sink }
    }

    private let archive: OpaquePointer
    private let context: Context
    private let entry: OpaquePointer
    /// The format version whose tar rules apply (FORMAT.md §10).
    let version: UInt16
    /// Bytes handed to the sink so far.
    var position: UInt64 { context.written }

    init(version: UInt16 = FormatV1.version2, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        self.version = version
        ArchiveLocale.useUTF8OnThisThread()
        guard let a = archive_write_new(), let e = archive_entry_new() else {
            throw LibArchiveError(message: "out of memory")
        }
        archive = a
        entry = e
        context = Context(sink: sink)
        guard archive_write_set_format_pax(a) == ARCHIVE_OK,
              archive_write_set_bytes_per_block(a, 0) == ARCHIVE_OK else { throw LibArchiveError.from(a) }
        // v2: names are bytes, written without conversion or normalisation (FORMAT.md §10).
        if version >= FormatV1.version2 {
            guard archive_write_set_format_option(a, "pax", "hdrcharset", "BINARY") == ARCHIVE_OK else { throw LibArchiveError.from(a) }
        }
        let write: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeRawPointer?, Int) -> Int = { _, client, buffer, length in
            let ctx = Unmanaged<Context>.fromOpaque(client!).takeUnretainedValue()
            do {
                try ctx.sink(UnsafeRawBufferPointer(start: buffer, count: length))
                ctx.written += UInt64(length)
                return length
            } catch {
                ctx.error = error
                return -1
            }
        }
        guard archive_write_open(a, Unmanaged.passUnretained(context).toOpaque(), nil, write, nil) == ARCHIVE_OK else {
            throw LibArchiveError.from(a)
        }
    }

    deinit {
        archive_write_free(archive)
        archive_entry_free(entry)
    }

    /// Ends the previous entry (its padding to 512 bytes) and returns where the next header will
    /// start: the entry's `tar_offset`.
    func nextHeaderOffset() throws -> UInt64 {
        try check(archive_write_finish_entry(archive))
        return position
    }

    /// `archive_write_header` for one manifest entry: v1 writes what format 1 keeps (no owner, no
    /// attributes); v2 writes the owner, names, extended attributes and ACLs too (FORMAT.md §10).
    func writeHeader(_ m: ManifestEntry) throws {
        archive_entry_clear(entry)
        let v2 = version >= FormatV1.version2
        if v2 {
            NameCodec.withCString(m.path) { archive_entry_copy_pathname(entry, $0) }
        } else {
            archive_entry_set_pathname_utf8(entry, m.path)
        }
        archive_entry_set_perm(entry, mode_t(m.mode))
        let (seconds, nanoseconds) = v2 ? Self.paxTime(m.mtime, m.mtimeNanoseconds) : (m.mtime, m.mtimeNanoseconds)
        archive_entry_set_mtime(entry, time_t(seconds), Int(nanoseconds))
        archive_entry_set_uid(entry, v2 ? la_int64_t(m.uid) : 0)
        archive_entry_set_gid(entry, v2 ? la_int64_t(m.gid) : 0)
        if v2 {
            if let user = m.userName { archive_entry_copy_uname(entry, user) }
            if let group = m.groupName { archive_entry_copy_gname(entry, group) }
            for x in m.xattrs {
                let name = String(decoding: x.name, as: UTF8.self)
                x.value.withUnsafeBytes { v in _ = archive_entry_xattr_add_entry(entry, name, v.baseAddress, v.count) }
            }
            for (acl, type) in [(m.accessACL, ARCHIVE_ENTRY_ACL_TYPE_ACCESS), (m.defaultACL, ARCHIVE_ENTRY_ACL_TYPE_DEFAULT)] {
                for e in acl {
                    let status = archive_entry_acl_add_entry(entry, type, Int32(e.permissions), Self.libarchiveTag(e.tag),
                                                             e.isNamed ? Int32(bitPattern: e.id) : -1, e.isNamed && !e.name.isEmpty ? e.name : nil)
                    guard status == ARCHIVE_OK else { throw LibArchiveError(message: "ACL entry of '\(m.path)' refused") }
                }
            }
        }
        switch m.kind {
        case .file:
            archive_entry_set_filetype(entry, FileTypeBits.regular)
            archive_entry_set_size(entry, la_int64_t(m.size))
            // GNU sparse 1.0 (FORMAT.md §10): libarchive writes the map, then only the data regions of
            // the content it is given (holes included, as zeros).
            if v2, let map = m.sparseMap {
                for r in map { archive_entry_sparse_add_entry(entry, la_int64_t(r.offset), la_int64_t(r.length)) }
            }
        case .directory:
            archive_entry_set_filetype(entry, FileTypeBits.directory)
            archive_entry_set_size(entry, 0)
        case .symlink:
            archive_entry_set_filetype(entry, FileTypeBits.symlink)
            if v2 { NameCodec.withCString(m.linkTarget) { archive_entry_copy_symlink(entry, $0) } } else { archive_entry_set_symlink_utf8(entry, m.linkTarget) }
            archive_entry_set_size(entry, 0)
        case .hardlink:
            archive_entry_set_filetype(entry, FileTypeBits.regular)
            if v2 { NameCodec.withCString(m.linkTarget) { archive_entry_copy_hardlink(entry, $0) } } else { archive_entry_set_hardlink_utf8(entry, m.linkTarget) }
            archive_entry_set_size(entry, 0)
        case .deleted:
            throw LibArchiveError(message: "internal error: a deleted entry has no tar entry")
        }
        try check(archive_write_header(archive, entry))
    }

    /// The (seconds, nanoseconds) to give libarchive so that its pax `mtime` record states the time the
    /// way the pax standard reads it (FORMAT.md §10, v2). libarchive prints the seconds with their sign,
    /// then the fraction: for a negative time with a fraction, floored seconds S and fraction N are
    /// written as S + 1 with 10^9 − N, so −473385600 s + 0.5 s reads "-473385599.5". Where S + 1 is 0
    /// libarchive cannot print "-0.5"; the caller drops the fraction (and warns) before it gets here.
    static func paxTime(_ seconds: Int64, _ nanoseconds: UInt32) -> (Int64, UInt32) {
        guard seconds < -1, nanoseconds > 0 else { return (seconds, nanoseconds) }
        return (seconds + 1, 1_000_000_000 - nanoseconds)
    }

    /// The inverse of `paxTime`, for what libarchive's reader returns from such a record (it keeps the
    /// sign on the seconds and reads the fraction as positive).
    static func timeFromPax(_ seconds: Int64, _ nanoseconds: UInt32) -> (Int64, UInt32) {
        guard seconds < 0, nanoseconds > 0 else { return (seconds, nanoseconds) }
        return (seconds - 1, 1_000_000_000 - nanoseconds)
    }

    static func libarchiveTag(_ tag: ACLEntry.Tag) -> Int32 {
        switch tag {
        case .userObj: ARCHIVE_ENTRY_ACL_USER_OBJ
        case .user: ARCHIVE_ENTRY_ACL_USER
        case .groupObj: ARCHIVE_ENTRY_ACL_GROUP_OBJ
        case .group: ARCHIVE_ENTRY_ACL_GROUP
        case .mask: ARCHIVE_ENTRY_ACL_MASK
        case .other: ARCHIVE_ENTRY_ACL_OTHER
        }
    }

    /// `archive_write_data`: the next bytes of the current entry.
    func writeData(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = archive_write_data(archive, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 { try check(Int32(n)) }
            if n == 0 { throw LibArchiveError(message: "wrote no data") }
            done += n
        }
    }

    /// `archive_write_close`: writes the end-of-archive blocks and flushes.
    func finish() throws {
        try check(archive_write_close(archive))
    }

    private func check(_ status: Int32) throws {
        if let error = context.error { throw error }
        if status < ARCHIVE_WARN { throw LibArchiveError.from(archive) }
    }
}

/// Reads a tar stream with libarchive from a callback that yields the stream's bytes in pieces.
/// Only the tar family of formats and no compression filters are enabled.
final class TarReader {
    private final class Context {
        let source: () throws -> (buffer: ByteBuffer, from: Int)?
        var current: ByteBuffer?
        var error: Error?
        init(source: @escaping () throws -> (buffer: ByteBuffer, from: Int)?) { self.source = source }
    }

    private let archive: OpaquePointer
    private let context: Context
    private var opened = false

    /// The format version whose tar rules apply (names as bytes from v2 on).
    let version: UInt16

    /// `source` returns the next piece of the stream, or nil at its end. Each piece must stay
    /// untouched until `source` is called again.
    convenience init(version: UInt16 = FormatV1.formatVersion, source: @escaping () throws -> ByteBuffer?) throws {
        try self.init(version: version, pieces: { try source().map { ($0, 0) } })
    }

    /// `pieces` returns the next buffer and where in it the stream goes on (a stream that starts
    /// inside its first buffer: a selective restore's run of entries, FORMAT.md §8 `tar_offset`).
    init(version: UInt16 = FormatV1.formatVersion, pieces source: @escaping () throws -> (buffer: ByteBuffer, from: Int)?) throws {
        self.version = version
        ArchiveLocale.useUTF8OnThisThread()
        guard let a = archive_read_new() else { throw LibArchiveError(message: "out of memory") }
        archive = a
        context = Context(source: source)
        guard archive_read_support_format_tar(a) == ARCHIVE_OK else { throw LibArchiveError.from(a) }
        let read: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int = { _, client, buffer in
            let ctx = Unmanaged<Context>.fromOpaque(client!).takeUnretainedValue()
            do {
                while true {
                    guard let next = try ctx.source() else {
                        ctx.current = nil
                        return 0
                    }
                    ctx.current = next.buffer
                    if next.buffer.count > next.from {
                        buffer?.pointee = UnsafeRawPointer(next.buffer.storage.baseAddress! + next.from)
                        return next.buffer.count - next.from
                    }
                }
            } catch {
                ctx.error = error
                return -1
            }
        }
        guard archive_read_open(a, Unmanaged.passUnretained(context).toOpaque(), nil, read, nil) == ARCHIVE_OK else {
            if let error = context.error { throw error }
            throw LibArchiveError.from(a)
        }
    }

    deinit { archive_read_free(archive) }

    /// `archive_read_next_header`: the next entry, or nil at the end of the archive.
    /// Entries of any type other than file, directory, symlink and hardlink are reported with
    /// kind `nil`-equivalent by throwing `unsupported`.
    func nextEntry() throws -> TarEntryHeader? {
        var entryPointer: OpaquePointer?
        let status = archive_read_next_header(archive, &entryPointer)
        if status == ARCHIVE_EOF { return nil }
        if let error = context.error { throw error }
        guard status >= ARCHIVE_WARN, let e = entryPointer else { throw LibArchiveError.from(archive) }
        var header = try describeEntry(e, bytes: version >= FormatV1.version2)
        header.headerPosition = UInt64(max(0, archive_read_header_position(archive)))
        return header
    }

    /// `archive_filter_bytes(a, 0)`: how many bytes of the stream the tar reader has consumed —
    /// after the end-of-archive marker, where the marker ends.
    var bytesConsumed: UInt64 { UInt64(max(0, archive_filter_bytes(archive, 0))) }

    /// The bytes handed to libarchive so far but not consumed by it, as (buffer, offset of first
    /// unconsumed byte) — for checking what follows the end-of-archive marker.
    func unconsumedTail(totalDelivered: UInt64) -> (ByteBuffer, Int)? {
        guard let current = context.current else { return nil }
        let bufferStart = totalDelivered - UInt64(current.count)
        guard bytesConsumed >= bufferStart, bytesConsumed <= totalDelivered else { return nil }
        return (current, Int(bytesConsumed - bufferStart))
    }

    /// `archive_read_data`: the next bytes of the current entry's content; 0 at its end.
    func readData(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = archive_read_data(archive, buffer.baseAddress, buffer.count)
        if let error = context.error { throw error }
        if n < 0 { throw LibArchiveError.from(archive) }
        return n
    }
}

/// Reads a vendor export — a ZIP, or a tar in any of the usual compressions — with libarchive, for
/// `create --import`. Encrypted entries are refused.
final class ExportReader {
    private let archive: OpaquePointer

    /// `archive_read_open_filename` with the zip and tar formats and every compression filter.
    init(path: String) throws {
        ArchiveLocale.useUTF8OnThisThread()
        guard let a = archive_read_new() else { throw LibArchiveError(message: "out of memory") }
        archive = a
        guard archive_read_support_format_zip(a) == ARCHIVE_OK, archive_read_support_format_tar(a) == ARCHIVE_OK,
              archive_read_support_filter_all(a) >= ARCHIVE_WARN else { throw LibArchiveError.from(a) }
        guard archive_read_open_filename(a, path, 1 << 20) == ARCHIVE_OK else { throw LibArchiveError.from(a) }
    }

    deinit { archive_read_free(archive) }

    /// The next entry, or nil at the end. An unsafe or unsupported entry throws
    /// `IntegrityError.unsafeEntry`, after which reading may go on with the next entry.
    func nextEntry() throws -> TarEntryHeader? {
        var entryPointer: OpaquePointer?
        let status = archive_read_next_header(archive, &entryPointer)
        if status == ARCHIVE_EOF { return nil }
        guard status >= ARCHIVE_WARN, let e = entryPointer else { throw LibArchiveError.from(archive) }
        let header = try describeEntry(e, bytes: false)
        if archive_entry_is_encrypted(e) != 0 {
            throw IntegrityError.unsafeEntry(path: header.path, reason: .encryptedEntry)
        }
        return header
    }

    /// `archive_read_data`: the next bytes of the current entry; 0 at its end.
    func readData(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = archive_read_data(archive, buffer.baseAddress, buffer.count)
        if n < 0 { throw LibArchiveError.from(archive) }
        return n
    }
}

/// What libarchive says about the current entry, refusing types the format does not carry. With
/// `bytes` (format v2), names are taken as the raw bytes the stream holds (`hdrcharset=BINARY`), and
/// the owner, extended attributes and ACLs are read too.
private func describeEntry(_ e: OpaquePointer, bytes: Bool) throws -> TarEntryHeader {
    // Only the one asked for is fetched: libarchive makes the UTF-8 form by converting through wide
    // characters (mbrtowc), 2 % of a restore's samples when it was fetched and not used.
    func text(_ utf8: @autoclosure () -> UnsafePointer<CChar>?, _ raw: @autoclosure () -> UnsafePointer<CChar>?) throws -> String? {
        guard let p = bytes ? raw() : utf8() else { return nil }
        if !bytes { return NameCodec.decode(UnsafeRawBufferPointer(start: p, count: strlen(p))) }
        // Names are bytes in v2 (hdrcharset=BINARY), held as NameCodec strings.
        return NameCodec.decode(UnsafeRawBufferPointer(start: p, count: strlen(p)))
    }
    guard var path = try text(archive_entry_pathname_utf8(e), archive_entry_pathname(e)) else {
        throw IntegrityError.unsafeEntry(path: "?", reason: .nameNotUTF8)
    }
    let hadSlash = path.utf8.count > 1 && path.utf8.last == UInt8(ascii: "/")
    while path.utf8.count > 1 && path.utf8.last == UInt8(ascii: "/") { path.removeLast() }
    let type = archive_entry_filetype(e)
    let hardlink = try text(archive_entry_hardlink_utf8(e), archive_entry_hardlink(e))
    let kind: ManifestEntry.Kind
    if let hardlink, !hardlink.isEmpty {
        kind = .hardlink
    } else {
        switch UInt32(type) {
        case FileTypeBits.regular: kind = .file
        case FileTypeBits.directory: kind = .directory
        case FileTypeBits.symlink: kind = .symlink
        case FileTypeBits.characterDevice, FileTypeBits.blockDevice: throw IntegrityError.unsafeEntry(path: path, reason: .deviceNode)
        case FileTypeBits.fifo: throw IntegrityError.unsafeEntry(path: path, reason: .fifo)
        case FileTypeBits.socket: throw IntegrityError.unsafeEntry(path: path, reason: .socket)
        default: throw IntegrityError.unsafeEntry(path: path, reason: .unknownType(UInt32(type)))
        }
    }
    let link: String
    switch kind {
    case .symlink: link = try text(archive_entry_symlink_utf8(e), archive_entry_symlink(e)) ?? ""
    case .hardlink: link = hardlink ?? ""
    default: link = ""
    }
    let size = archive_entry_size_is_set(e) != 0 ? archive_entry_size(e) : 0
    guard size >= 0 else { throw IntegrityError.unsafeEntry(path: path, reason: .negativeSize) }
    var header = TarEntryHeader(kind: kind, path: path, mode: UInt32(archive_entry_perm(e)),
                                mtime: Int64(archive_entry_mtime(e)), mtimeNanoseconds: UInt32(clamping: archive_entry_mtime_nsec(e)),
                                size: UInt64(size), linkTarget: link)
    header.hadTrailingSlash = hadSlash
    if archive_entry_sparse_reset(e) > 0 {
        var offset: la_int64_t = 0, length: la_int64_t = 0
        var map: [SparseRegion] = []
        while archive_entry_sparse_next(e, &offset, &length) == ARCHIVE_OK {
            guard offset >= 0, length >= 0 else { throw IntegrityError.manifestMismatch(path: path, reason: .sparseMap) }
            map.append(SparseRegion(offset: UInt64(offset), length: UInt64(length)))
        }
        header.sparseMap = map
    }
    let uid = archive_entry_uid(e), gid = archive_entry_gid(e)
    guard (0...Int64(UInt32.max)).contains(uid), (0...Int64(UInt32.max)).contains(gid) else {
        throw IntegrityError.manifestMismatch(path: path, reason: .owner)
    }
    header.uid = UInt32(uid)
    header.gid = UInt32(gid)
    header.userName = try text(archive_entry_uname_utf8(e), archive_entry_uname(e)) ?? ""
    header.groupName = try text(archive_entry_gname_utf8(e), archive_entry_gname(e)) ?? ""
    if archive_entry_xattr_reset(e) > 0 {
        var name: UnsafePointer<CChar>?, value: UnsafeRawPointer?, length = 0
        while archive_entry_xattr_next(e, &name, &value, &length) == ARCHIVE_OK {
            guard let name else { continue }
            let v = value.map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
            header.xattrs.append(ExtendedAttribute(name: Array(String(cString: name).utf8), value: v))
        }
    }
    for (type, keyPath) in [(ARCHIVE_ENTRY_ACL_TYPE_ACCESS, \TarEntryHeader.accessACL), (ARCHIVE_ENTRY_ACL_TYPE_DEFAULT, \TarEntryHeader.defaultACL)] {
        guard archive_entry_acl_reset(e, type) > 0 else { continue }
        var entryType: Int32 = 0, permset: Int32 = 0, tag: Int32 = 0, qualifier: Int32 = 0
        var name: UnsafePointer<CChar>?
        while archive_entry_acl_next(e, type, &entryType, &permset, &tag, &qualifier, &name) == ARCHIVE_OK {
            let t: ACLEntry.Tag
            switch tag {
            case ARCHIVE_ENTRY_ACL_USER_OBJ: t = .userObj
            case ARCHIVE_ENTRY_ACL_USER: t = .user
            case ARCHIVE_ENTRY_ACL_GROUP_OBJ: t = .groupObj
            case ARCHIVE_ENTRY_ACL_GROUP: t = .group
            case ARCHIVE_ENTRY_ACL_MASK: t = .mask
            case ARCHIVE_ENTRY_ACL_OTHER: t = .other
            default: throw IntegrityError.manifestMismatch(path: path, reason: .acl)
            }
            let named = t == .user || t == .group
            header[keyPath: keyPath].append(ACLEntry(tag: t, permissions: UInt8(permset & 7),
                                                     id: named ? UInt32(bitPattern: qualifier) : ACLEntry.undefinedID,
                                                     name: named ? name.map { String(cString: $0) } ?? "" : ""))
        }
    }
    return header
}
