#if canImport(Glibc)
import Glibc
#endif

/// Something wrong with the data to archive.
public enum SourceError: ColdArchiveError, Equatable {
    case missing(path: String)
    case duplicateName(name: String)
    case nameNotUTF8(path: String)
    case nameTooLong(path: String)
    case symlinkEscapes(path: String, target: String)

    public var kind: FailureKind { .other }

    public var description: String {
        switch self {
        case .missing(let path): return "source '\(path)' does not exist"
        case .duplicateName(let name): return "two sources are both named '\(name)'; archive them from different names or under one parent"
        case .nameNotUTF8(let path): return "'\(path)' has a name that is not valid UTF-8; rename it (archives store UTF-8 names only)"
        case .nameTooLong(let path): return "'\(path)' has a name longer than \(FormatV1.maxPathBytes) bytes"
        case .symlinkEscapes(let path, let target):
            return "symlink '\(path)' points to '\(target)', which is absolute, leaves the archived tree, or goes up after going down (a/../b); restore would refuse it, so it is not archived — replace it with the file, a simpler relative link, or remove it"
        }
    }
}

/// Walks source directories in name order, writes every entry to the tar stream and reports its
/// manifest entry (each file's content is hashed once, by the sealing workers, on its way into the
/// chunks).
final class SourceWalker {
    private let tar: TarWriter
    private let content: ArchiveCreator.ContentWriter
    private(set) var warnings: [String] = []
    private(set) var entryCount: UInt64 = 0
    private(set) var contentBytes: UInt64 = 0
    private var hardlinks: [FileIdentity: String] = [:]
    private let buffer = ByteBuffer(capacity: 1 << 20)

    private struct FileIdentity: Hashable {
        let device: UInt64
        let inode: UInt64
    }

    init(content: ArchiveCreator.ContentWriter) {
        self.tar = content.tar
        self.content = content
    }

    /// Archives `diskPath` (following it if it is itself a symlink) under the top-level name `name`.
    func add(source diskPath: String, as name: String) throws {
        var st = stat()
        guard stat(diskPath, &st) == 0 else {
            if errno == ENOENT { throw SourceError.missing(path: diskPath) }
            throw SystemError(operation: "stat", path: diskPath, errno: errno)
        }
        try visit(diskPath: diskPath, archivePath: [name], status: st, followLinks: true)
    }

    /// Opens what `lstat` described, without following a symlink that replaced it since (except for a
    /// top-level source, which may itself be a link), and without blocking on a FIFO that replaced it;
    /// nil (with a warning) when it is gone or is no longer the same file.
    private func openSame(_ path: String, _ st: stat, directory: Bool, followLinks: Bool) throws -> Int32? {
        var flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK
        if directory { flags |= O_DIRECTORY }
        if !followLinks { flags |= O_NOFOLLOW }
        let fd = open(path, flags)
        guard fd >= 0 else {
            if [ENOENT, ELOOP, ENOTDIR, ENXIO].contains(errno) {
                warnings.append("'\(path)' changed or vanished while it was archived; skipped")
                return nil
            }
            throw SystemError(operation: "open", path: path, errno: errno)
        }
        var now = stat()
        guard fstat(fd, &now) == 0, now.st_dev == st.st_dev, now.st_ino == st.st_ino,
              now.st_mode & S_IFMT == st.st_mode & S_IFMT else {
            close(fd)
            warnings.append("'\(path)' was replaced while it was archived; skipped")
            return nil
        }
        if !directory {
            // Back to blocking reads for a regular file.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        }
        return fd
    }

    private func visit(diskPath: String, archivePath: [String], status st: stat, followLinks: Bool = false) throws {
        let path = archivePath.joined(separator: "/")
        guard path.utf8.count <= FormatV1.maxPathBytes else { throw SourceError.nameTooLong(path: diskPath) }
        var mode = UInt32(st.st_mode) & 0o7777
        if mode & 0o7000 != 0 {
            warnings.append("'\(diskPath)': setuid, setgid and sticky bits are not archived")
            mode &= 0o777
        }
        let mtime = Int64(st.st_mtim.tv_sec)
        let nsec = UInt32(st.st_mtim.tv_nsec)
        var entry = ManifestEntry(kind: .file, path: path, mode: UInt16(mode), mtime: mtime, mtimeNanoseconds: nsec,
                                  size: 0, contentHash: ManifestEntry.zeroHash, linkTarget: "")
        switch UInt32(st.st_mode) & 0o170000 {
        case FileTypeBits.directory:
            guard let fd = try openSame(diskPath, st, directory: true, followLinks: followLinks) else { return }
            let children = try childNames(fd, diskPath)
            entry.kind = .directory
            try emit(entry)
            for child in children {
                let childPath = diskPath.hasSuffix("/") ? diskPath + child : diskPath + "/" + child
                var cst = stat()
                guard lstat(childPath, &cst) == 0 else {
                    if errno == ENOENT {
                        warnings.append("'\(childPath)' vanished before it could be archived")
                        continue
                    }
                    throw SystemError(operation: "stat", path: childPath, errno: errno)
                }
                try visit(diskPath: childPath, archivePath: archivePath + [child], status: cst)
            }
        case FileTypeBits.symlink:
            entry.kind = .symlink
            entry.linkTarget = try readLink(diskPath)
            if PathRules.symlinkEscapes(linkPath: archivePath, target: entry.linkTarget) {
                throw SourceError.symlinkEscapes(path: diskPath, target: entry.linkTarget)
            }
            try emit(entry)
        case FileTypeBits.regular:
            let identity = FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
            if st.st_nlink > 1, let first = hardlinks[identity] {
                entry.kind = .hardlink
                entry.linkTarget = first
                try emit(entry)
                return
            }
            guard let fd = try openSame(diskPath, st, directory: false, followLinks: followLinks) else { return }
            if st.st_nlink > 1 { hardlinks[identity] = path }
            try addFile(OpenFile(adopting: fd, path: diskPath), entry: entry, size: UInt64(st.st_size))
        default:
            warnings.append("'\(diskPath)' is a device, FIFO or socket; skipped")
        }
    }

    private func emit(_ entry: ManifestEntry) throws {
        try tar.writeHeader(TarEntryHeader(kind: entry.kind, path: entry.path, mode: UInt32(entry.mode), mtime: entry.mtime,
                                           mtimeNanoseconds: entry.mtimeNanoseconds, size: entry.size, linkTarget: entry.linkTarget))
        try content.record(entry)
        entryCount += 1
        contentBytes += entry.size
    }

    /// Streams one regular file into the tar stream. A file that shrinks while
    /// it is read is padded with zeros, one that grows is cut at the size it had; both are reported.
    func addFile(_ file: OpenFile, entry: ManifestEntry, size: UInt64) throws {
        let diskPath = file.path
        var entry = entry
        entry.size = size
        try tar.writeHeader(TarEntryHeader(kind: .file, path: entry.path, mode: UInt32(entry.mode), mtime: entry.mtime,
                                           mtimeNanoseconds: entry.mtimeNanoseconds, size: size, linkTarget: ""))
        try content.recordFile(entry)
        var remaining = size
        var shrank = false
        while remaining > 0 {
            let want = Int(min(UInt64(buffer.capacity), remaining))
            let slice = UnsafeMutableRawBufferPointer(rebasing: buffer.storage[0..<want])
            var n = try file.readSequential(into: slice)
            if n < want {
                shrank = true
                UnsafeMutableRawBufferPointer(rebasing: slice[n...]).initializeMemory(as: UInt8.self, repeating: 0)
                n = want
            }
            try tar.writeData(UnsafeRawBufferPointer(rebasing: slice[0..<n]))
            remaining -= UInt64(n)
        }
        if shrank {
            warnings.append("'\(diskPath)' shrank while it was read; the missing end was stored as zeros")
        } else {
            var probe: UInt8 = 0
            if try withUnsafeMutableBytes(of: &probe, { try file.readSequential(into: $0) }) > 0 {
                warnings.append("'\(diskPath)' grew while it was read; only its first \(size) bytes were stored")
            }
        }
        entryCount += 1
        contentBytes += size
    }

    private func readLink(_ path: String) throws -> String {
        var buf = [UInt8](repeating: 0, count: FormatV1.maxPathBytes + 1)
        let n = buf.withUnsafeMutableBufferPointer { p in
            p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { readlink(path, $0, p.count) }
        }
        guard n >= 0 else { throw SystemError(operation: "read link", path: path, errno: errno) }
        guard n <= FormatV1.maxPathBytes else { throw SourceError.nameTooLong(path: path) }
        guard let target = String(validating: buf[0..<n], as: UTF8.self) else { throw SourceError.nameNotUTF8(path: path) }
        return target
    }

    /// The names in an open directory (the descriptor is consumed), sorted bytewise; refuses names
    /// that are not UTF-8.
    private func childNames(_ fd: Int32, _ path: String) throws -> [String] {
        guard let dir = fdopendir(fd) else {
            close(fd)
            throw SystemError(operation: "list directory", path: path, errno: errno)
        }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        while let entry = readdir(dir) {
            let raw = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
            if raw == [46] || raw == [46, 46] { continue }
            names.append(raw)
        }
        names.sort { $0.lexicographicallyPrecedes($1) }
        return try names.map { raw in
            guard let name = String(validating: raw, as: UTF8.self) else {
                throw SourceError.nameNotUTF8(path: path + "/" + String(decoding: raw, as: UTF8.self))
            }
            return name
        }
    }
}
