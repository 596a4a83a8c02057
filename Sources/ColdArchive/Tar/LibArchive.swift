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
        init(sink: @escaping (UnsafeRawBufferPointer) throws -> Void) { self.sink = sink }
    }

    private let archive: OpaquePointer
    private let context: Context
    private let entry: OpaquePointer

    init(sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        ArchiveLocale.useUTF8OnThisThread()
        guard let a = archive_write_new(), let e = archive_entry_new() else {
            throw LibArchiveError(message: "out of memory")
        }
        archive = a
        entry = e
        context = Context(sink: sink)
        guard archive_write_set_format_pax(a) == ARCHIVE_OK,
              archive_write_set_bytes_per_block(a, 0) == ARCHIVE_OK else { throw LibArchiveError.from(a) }
        let write: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeRawPointer?, Int) -> Int = { _, client, buffer, length in
            let ctx = Unmanaged<Context>.fromOpaque(client!).takeUnretainedValue()
            do {
                try ctx.sink(UnsafeRawBufferPointer(start: buffer, count: length))
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

    /// `archive_write_header` for one entry.
    func writeHeader(_ h: TarEntryHeader) throws {
        archive_entry_clear(entry)
        archive_entry_set_pathname_utf8(entry, h.path)
        archive_entry_set_perm(entry, mode_t(h.mode))
        archive_entry_set_mtime(entry, time_t(h.mtime), Int(h.mtimeNanoseconds))
        archive_entry_set_uid(entry, 0)
        archive_entry_set_gid(entry, 0)
        switch h.kind {
        case .file:
            archive_entry_set_filetype(entry, FileTypeBits.regular)
            archive_entry_set_size(entry, la_int64_t(h.size))
        case .directory:
            archive_entry_set_filetype(entry, FileTypeBits.directory)
            archive_entry_set_size(entry, 0)
        case .symlink:
            archive_entry_set_filetype(entry, FileTypeBits.symlink)
            archive_entry_set_symlink_utf8(entry, h.linkTarget)
            archive_entry_set_size(entry, 0)
        case .hardlink:
            archive_entry_set_filetype(entry, FileTypeBits.regular)
            archive_entry_set_hardlink_utf8(entry, h.linkTarget)
            archive_entry_set_size(entry, 0)
        }
        try check(archive_write_header(archive, entry))
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
        let source: () throws -> ByteBuffer?
        var current: ByteBuffer?
        var error: Error?
        init(source: @escaping () throws -> ByteBuffer?) { self.source = source }
    }

    private let archive: OpaquePointer
    private let context: Context
    private var opened = false

    /// `source` returns the next piece of the stream, or nil at its end. Each piece must stay
    /// untouched until `source` is called again.
    init(source: @escaping () throws -> ByteBuffer?) throws {
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
                    ctx.current = next
                    if next.count > 0 {
                        buffer?.pointee = UnsafeRawPointer(next.storage.baseAddress!)
                        return next.count
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
        return try describeEntry(e)
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
        let header = try describeEntry(e)
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

/// What libarchive says about the current entry, refusing types the format does not carry.
private func describeEntry(_ e: OpaquePointer) throws -> TarEntryHeader {
    guard let rawPath = archive_entry_pathname_utf8(e) else {
        throw IntegrityError.unsafeEntry(path: "?", reason: .nameNotUTF8)
    }
    var path = String(cString: rawPath)
    while path.utf8.count > 1 && path.utf8.last == UInt8(ascii: "/") { path.removeLast() }
    let type = archive_entry_filetype(e)
    let hardlink = archive_entry_hardlink_utf8(e).map { String(cString: $0) }
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
    case .symlink: link = archive_entry_symlink_utf8(e).map { String(cString: $0) } ?? ""
    case .hardlink: link = hardlink ?? ""
    default: link = ""
    }
    let size = archive_entry_size_is_set(e) != 0 ? archive_entry_size(e) : 0
    guard size >= 0 else { throw IntegrityError.unsafeEntry(path: path, reason: .negativeSize) }
return TarEntryHeader(kind: kind, path: path, mode: UInt32(archive_entry_perm(e)),
                      mtime: Int64(archive_entry_mtime(e)), mtimeNanoseconds: UInt32(clamping: archive_entry_mtime_nsec(e)),
                      size: UInt64(size), linkTarget: link)
}
