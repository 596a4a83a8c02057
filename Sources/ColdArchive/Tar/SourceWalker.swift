#if canImport(Glibc)
import Glibc
#endif

/// Something wrong with the data to archive.
public enum SourceError: ColdArchiveError, Equatable {
    case missing(path: String)
    case duplicateName(name: String)
    case nameTooLong(path: String)

    public var kind: FailureKind { .other }

    public var description: String {
        switch self {
        case .missing(let path): return "source '\(path)' does not exist"
        case .duplicateName(let name): return "two sources are both named '\(name)'; archive them from different names or under one parent"
        case .nameTooLong(let path): return "'\(path)' has a name longer than \(FormatV1.maxPathBytes) bytes"
        }
    }
}

/// A file's identity on this machine: device and inode.
struct FileIdentity: Hashable, Sendable {
    let device: UInt64
    let inode: UInt64

    init(_ st: stat) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }

    /// The identity of what `path` names (following a final symlink), or nil if it cannot be read.
    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        self.init(st)
    }
}

/// Walks source directories in name order, writes every entry to the tar stream and reports its
/// manifest entry (each file's content is hashed once, by the sealing workers, on its way into the
/// chunks).
final class SourceWalker {
    private let output: WalkOutput
    private(set) var warnings: [SourceWarning] = []
    private(set) var entryCount: UInt64 = 0
    private(set) var contentBytes: UInt64 = 0
    /// The first entry archived for each multiply-linked file, by identity.
    private var hardlinks: [FileIdentity: ManifestEntry] = [:]
    private var owners = OwnerNames()
    /// coldarchive's own files of this run (the archive being written, the import workspace), each with
    /// what to call it: a source that contains them never archives them.
    var ownFiles: [FileIdentity: String] = [:]
    /// What to leave out below the sources.
    var exclude = ExcludeRules(patterns: [])
    /// Do not descend into directories on another file system than their source's.
    var oneFileSystem = false
    /// The device of the source being walked (for `oneFileSystem`).
    private var sourceDevice: UInt64?
    /// Called with a child's path between listing its directory and opening it: the window in which
    /// a local user can swap the name for a symlink or a FIFO. Tests use it to swap deterministically.
    var beforeOpeningChild: ((String) -> Void)?
    /// Called with a regular file's path after its first read: tests change the file there, as a
    /// CRM writing to it during the archive would.
    var whileReading: ((String) -> Void)?
    /// An incremental's or differential's comparison with its base, and the new change index; nil
    /// outside a vault series.
    var changes: ChangeTracker?
    /// Directories visited but not archived yet (unchanged since the base): archived only when an entry
    /// below them is, since every entry's parent must precede it (FORMAT.md §8). Always a suffix of
    /// the directories being walked.
    private var deferred: [ManifestEntry] = []


    /// A walker that writes to the archive's content on the calling thread.
    convenience init(content: ArchiveCreator.ContentWriter) {
        self.init(output: DirectWalkOutput(content: content))
    }

    init(output: WalkOutput) {
        self.output = output
    }

    /// Archives `diskPath` (following it if it is itself a symlink) under the top-level name `name`.
    func add(source diskPath: String, as name: String) throws {
        // A top-level source may itself be a link; everything below it is reached without following one.
        // Only directories and regular files are ever opened (opening a device can have effects).
        var st = stat()
        guard NameCodec.withCString(diskPath, { stat($0, &st) }) == 0 else {
            if errno == ENOENT { throw SourceError.missing(path: diskPath) }
            throw SystemError(operation: "stat", path: diskPath, errno: errno)
        }
        let type = UInt32(st.st_mode) & 0o170000
        guard type == FileTypeBits.directory || type == FileTypeBits.regular else {
            warnings.append(SourceWarning(.skippedSpecialFile, path: diskPath, "is a device, FIFO or socket; skipped"))
            return
        }
        let fd = openWithoutTouchingAccessTime(AT_FDCWD, diskPath, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            if errno == ENOENT { throw SourceError.missing(path: diskPath) }
            throw SystemError(operation: "open", path: diskPath, errno: errno)
        }
        sourceDevice = UInt64(st.st_dev)
        try emitDeletions(before: name)
        try visit(opened: fd, diskPath: diskPath, archivePath: name, depth: 1)
    }

    /// After the last source: every base path the walk did not reach is gone.
    func finishSources() throws {
        guard let changes else { return }
        for path in try changes.deletionsOfTheRest() { try emitDeleted(path) }
    }

    private func emitDeletions(before archivePath: String) throws {
        guard let changes, changes.comparesWithBase else { return }
        for path in try changes.deletions(before: NameCodec.bytes(archivePath)) { try emitDeleted(path) }
    }

    /// A `deleted` entry (FORMAT.md §8): the path, and everything below it, is gone since the base.
    private func emitDeleted(_ path: [UInt8]) throws {
        try flushDeferred()
        try output.entry(ManifestEntry(kind: .deleted, path: NameCodec.decode(path), mode: 0, mtime: 0, mtimeNanoseconds: 0, size: 0,
                                       contentHash: ManifestEntry.zeroHash, linkTarget: ""))
        entryCount += 1
    }

    /// Archives the directories deferred above the entry about to be archived.
    private func flushDeferred() throws {
        guard !deferred.isEmpty else { return }
        let pending = deferred
        deferred = []
        for entry in pending {
            try output.entry(entry)
            entryCount += 1
        }
    }

    /// Archives what `fd` (opened without blocking, and below the top without following a link) is,
    /// as `archivePath`; consumes `fd`. Everything is described by `fstat` of the open descriptor, so
    /// what is archived is what was opened, whatever replaced the name since.
    private func visit(opened fd: Int32, diskPath: @autoclosure () -> String, archivePath: String, depth: Int) throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            close(fd)
            throw SystemError(operation: "stat", path: diskPath(), errno: code)
        }
        if let what = ownFiles[FileIdentity(st)] {
            close(fd)
            warnings.append(SourceWarning(.ownFile, path: diskPath(), "is \(what); not archived"))
            return
        }
        switch UInt32(st.st_mode) & 0o170000 {
        case FileTypeBits.directory:
            try visitDirectory(fd, st, diskPath: diskPath(), archivePath: archivePath, depth: depth)
        case FileTypeBits.regular:
            try visitRegular(fd, st, diskPath: diskPath(), archivePath: archivePath)
        default:
            close(fd)
            warnings.append(SourceWarning(.skippedSpecialFile, path: diskPath(), "is a device, FIFO or socket; skipped"))
        }
    }

    /// A regular file, open as `fd` (consumed): a hardlink to a file archived before, or its content.
    private func visitRegular(_ fd: Int32, _ st: stat, diskPath: String, archivePath: String) throws {
        let identity = FileIdentity(st)
        if st.st_nlink > 1, let first = hardlinks[identity] {
            close(fd)
            // A hardlink carries its file's metadata as archived (FORMAT.md §8), not a second reading.
            var entry = first
            entry.kind = .hardlink
            entry.path = archivePath
            entry.linkTarget = first.path
            entry.size = 0
            entry.contentHash = ManifestEntry.zeroHash
            entry.flags.remove(.shrank)
            entry.readSize = nil
            entry.sparseMap = nil
            guard NameCodec.bytes(archivePath).count <= FormatV1.maxPathBytes else { throw SourceError.nameTooLong(path: diskPath) }
            if let changes {
                let bytes = NameCodec.bytes(archivePath)
                if changes.comparesWithBase { _ = try changes.take(bytes, kind: .file) }
                try changes.draft.append(IndexRecord(kind: .file, st, path: bytes), .otherName(inode: UInt64(st.st_ino)))
            }
            try emit(entry)
            return
        }
        let file = OpenFile(adopting: fd, path: diskPath)
        if let changes {
            let bytes = NameCodec.bytes(archivePath)
            let now = IndexRecord(kind: .file, st, path: bytes)
            let old = changes.comparesWithBase ? try changes.take(bytes, kind: .file) : nil
            // --rehash: unchanged metadata, but the content is read and compared (an edit that kept
            // size and times); unchanged content is not stored.
            if let old, changes.isUnchanged(old, now), changes.rehash, try Self.contentHash(of: file) == old.contentHash {
                var same = now
                same.contentHash = old.contentHash
                try changes.draft.append(same)
                changes.countUnchanged()
                return
            }
            try changes.draft.append(now, .stored(inode: UInt64(st.st_ino)))
            _ = lseek(file.fd, 0, SEEK_SET)
        }
        var entry = try makeEntry(.file, st, diskPath: diskPath, archivePath: archivePath, fd: file.fd)
        entry.sparseMap = Self.sparseMap(fd: file.fd, st)
        let flags = try addFile(file, entry: entry, size: UInt64(st.st_size), before: st)
        if st.st_nlink > 1 {
            var first = entry
            first.flags = flags
            hardlinks[identity] = first
        }
    }

    private func visitDirectory(_ fd: Int32, _ st: stat, diskPath: String, archivePath: String, depth: Int) throws {
        defer { close(fd) }
        let directory = try makeEntry(.directory, st, diskPath: diskPath, archivePath: archivePath, fd: fd)
        let bytes = NameCodec.bytes(archivePath)
        if let changes {
            let now = IndexRecord(kind: .directory, st, path: bytes)
            let old = changes.comparesWithBase ? try changes.take(bytes, kind: .directory) : nil
            try changes.draft.append(now)
            if let old, changes.isUnchanged(old, now) {
                deferred.append(directory)
            } else {
                try emit(directory)
            }
        } else {
            try emit(directory)
        }
        defer {
            // Closed without anything below it archived: it stays out of the archive.
            if let last = deferred.last, PathRules.same(last.path, archivePath) { deferred.removeLast() }
        }
        // A mount point below the source, with --one-file-system: the directory, not what is mounted on it.
        if oneFileSystem, let sourceDevice, UInt64(st.st_dev) != sourceDevice { return }
        for (child, listedType) in try children(fd, diskPath) {
            let childPath = archivePath + "/" + child
            if exclude.matches(path: NameCodec.bytes(childPath)) { continue }
            let childDisk = { diskPath.hasSuffix("/") ? diskPath + child : diskPath + "/" + child }
            var type = listedType
            if type == UInt8(DT_UNKNOWN) {
                // The file system does not say (some network and FUSE ones): ask, without opening it.
                var cst = stat()
                guard NameCodec.withCString(child, { fstatat(fd, $0, &cst, AT_SYMLINK_NOFOLLOW) }) == 0 else {
                    if errno == ENOENT {
                        warnings.append(SourceWarning(.vanished, path: childDisk(), "vanished before it could be archived"))
                        continue
                    }
                    throw SystemError(operation: "stat", path: childDisk(), errno: errno)
                }
                switch UInt32(cst.st_mode) & 0o170000 {
                case FileTypeBits.regular: type = UInt8(DT_REG)
                case FileTypeBits.directory: type = UInt8(DT_DIR)
                case FileTypeBits.symlink: type = UInt8(DT_LNK)
                default: type = UInt8(DT_FIFO)
                }
            }
            if type != UInt8(DT_LNK) && type != UInt8(DT_REG) && type != UInt8(DT_DIR) {
                warnings.append(SourceWarning(.skippedSpecialFile, path: childDisk(), "is a device, FIFO or socket; skipped"))
                continue
            }
            try emitDeletions(before: childPath)
            if type == UInt8(DT_LNK) {
                try visitSymlink(in: fd, child, diskPath: childDisk(), archivePath: childPath, depth: depth + 1)
                continue
            }
            // An incremental does not open a file whose metadata is as the base recorded it.
            if type == UInt8(DT_REG), let changes, changes.comparesWithBase, !changes.rehash,
               try skipUnchangedFile(child, in: fd, archivePath: childPath, tracker: changes) {
                continue
            }
            beforeOpeningChild?(childDisk())
            // O_NOFOLLOW: a symlink that replaced the name since it was listed is not followed;
            // O_NONBLOCK: nor does a FIFO that replaced it block the walk.
            let cfd = openWithoutTouchingAccessTime(fd, child, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
            guard cfd >= 0 else {
                let code = errno
                if [ENOENT, ELOOP, ENOTDIR, ENXIO].contains(code) {
                    warnings.append(SourceWarning(.changedWhileArchived, path: childDisk(), "changed or vanished while it was archived; skipped"))
                } else {
                    throw SystemError(operation: "open", path: childDisk(), errno: code)
                }
                continue
            }
            try visit(opened: cfd, diskPath: childDisk(), archivePath: childPath, depth: depth + 1)
        }
        if let changes, changes.comparesWithBase {
            for path in try changes.deletions(below: bytes) { try emitDeleted(path) }
        }
    }

    /// With a base to compare with: when the file `name` in `directory` has the size, times, mode,
    /// owner and inode its base record has, records it in the new index and returns true, without opening it.
    private func skipUnchangedFile(_ name: String, in directory: Int32, archivePath: String, tracker: ChangeTracker) throws -> Bool {
        let bytes = NameCodec.bytes(archivePath)
        guard let old = try tracker.peek(bytes), old.kind == .file else { return false }
        var st = stat()
        guard NameCodec.withCString(name, { fstatat(directory, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0,
              UInt32(st.st_mode) & 0o170000 == FileTypeBits.regular else { return false }
        let now = IndexRecord(kind: .file, st, path: bytes, contentHash: old.contentHash)
        guard tracker.isUnchanged(old, now) else { return false }
        try tracker.keepUnchanged(bytes, now: now)
        return true
    }

    /// BLAKE2b-256 of a file's content, read from the start (for `--rehash`).
    static func contentHash(of file: OpenFile) throws -> [UInt8] {
        let hash = Sodium.Blake2bState(outputBytes: 32)
        let buffer = ByteBuffer(capacity: 1 << 20)
        var offset: UInt64 = 0
        while true {
            buffer.count = try file.read(into: buffer.storage, at: offset)
            if buffer.count == 0 { break }
            hash.update(buffer.bytes)
            offset += UInt64(buffer.count)
        }
        return hash.finalize()
    }

    /// Linux's O_NOATIME (glibc defines it only under _GNU_SOURCE).
    private static let noAccessTime: Int32 = 0o1000000
    /// Cleared after the first EPERM: O_NOATIME needs the file's owner (or CAP_FOWNER), and files of
    /// other users would otherwise cost a failed `openat` each.
    private var useNoAccessTime = true

    /// `openat` with O_NOATIME where allowed, so archiving leaves the sources' access times as they
    /// were (a cold archive should not change what it archives, and on `relatime` mounts every first
    /// read after a change would otherwise write an inode).
    private func openWithoutTouchingAccessTime(_ directory: Int32, _ name: String, _ flags: Int32) -> Int32 {
        if useNoAccessTime {
            let fd = NameCodec.withCString(name) { openat(directory, $0, flags | Self.noAccessTime) }
            if fd >= 0 || errno != EPERM { return fd }
            useNoAccessTime = false
        }
        return NameCodec.withCString(name) { openat(directory, $0, flags) }
    }

    private func visitSymlink(in directory: Int32, _ name: String, diskPath: String, archivePath: String, depth: Int) throws {
        var st = stat()
        guard NameCodec.withCString(name, { fstatat(directory, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else {
            if errno == ENOENT {
                warnings.append(SourceWarning(.vanished, path: diskPath, "vanished before it could be archived"))
                return
            }
            throw SystemError(operation: "stat", path: diskPath, errno: errno)
        }
        guard UInt32(st.st_mode) & 0o170000 == FileTypeBits.symlink else {
            warnings.append(SourceWarning(.changedWhileArchived, path: diskPath, "changed while it was archived; skipped"))
            return
        }
        var entry = try makeEntry(.symlink, st, diskPath: diskPath, archivePath: archivePath, symlinkIn: (directory, name))
        let warned = warnings.count
        guard let target = try readLink(in: directory, name, diskPath: diskPath) else {
            if warnings.count == warned {
                warnings.append(SourceWarning(.changedWhileArchived, path: diskPath, "changed or vanished while it was archived; skipped"))
            }
            return
        }
        // A link's target is data (FORMAT.md §8, v2): absolute or leaving the tree, it is archived as
        // it is; restore never follows one.
        entry.linkTarget = target
        if let changes {
            let bytes = NameCodec.bytes(archivePath)
            let now = IndexRecord(kind: .symlink, st, path: bytes, link: NameCodec.bytes(target))
            let old = changes.comparesWithBase ? try changes.take(bytes, kind: .symlink) : nil
            try changes.draft.append(now)
            if let old, changes.isUnchanged(old, now) {
                changes.countUnchanged()
                return
            }
        }
        try emit(entry)
    }

    /// A file's data regions when it has holes (fewer blocks allocated than its size says), found with
    /// `lseek(SEEK_DATA/SEEK_HOLE)`; nil for a file without holes, or whose regions would break FORMAT.md
    /// §8's alignment rule (it is then stored whole, holes as zeros).
    static func sparseMap(fd: Int32, _ st: stat) -> [SparseRegion]? {
        let size = Int64(st.st_size)
        guard size > 0, Int64(st.st_blocks) * 512 < size else { return nil }
        var regions: [SparseRegion] = []
        var position: Int64 = 0
        while position < size {
            let data = lseek(fd, off_t(position), Self.seekData)
            if data < 0 { if errno == ENXIO { break } else { return nil } }
            let hole = lseek(fd, off_t(data), Self.seekHole)
            guard hole > data else { return nil }
            regions.append(SparseRegion(offset: UInt64(data), length: UInt64(hole - data)))
            position = Int64(hole)
            guard regions.count < SparseRegion.maxRegions else { return nil }
        }
        _ = lseek(fd, 0, SEEK_SET)
        if regions.count == 1 && regions[0].offset == 0 && regions[0].length == UInt64(size) { return nil }
        if regions.last.map({ $0.end < UInt64(size) }) ?? true { regions.append(SparseRegion(offset: UInt64(size), length: 0)) }
        return ManifestEntry.isValidSparseMap(regions, size: UInt64(size)) ? regions : nil
    }

    /// Linux's SEEK_DATA and SEEK_HOLE (glibc defines them only under _GNU_SOURCE).
    private static let seekData: Int32 = 3
    private static let seekHole: Int32 = 4

    /// The manifest entry for what `st` describes, with everything format v2 keeps: mode with its
    /// setuid, setgid and sticky bits, owner and group (with their names here), extended attributes and
    /// ACLs — read from the open `fd`, or for a symlink by name in its directory.
    private func makeEntry(_ kind: ManifestEntry.Kind, _ st: stat, diskPath: String, archivePath: String,
                           fd: Int32? = nil, symlinkIn: (directory: Int32, name: String)? = nil) throws -> ManifestEntry {
        guard NameCodec.bytes(archivePath).count <= FormatV1.maxPathBytes else { throw SourceError.nameTooLong(path: diskPath) }
        var seconds = Int64(st.st_mtim.tv_sec), nanoseconds = UInt32(st.st_mtim.tv_nsec)
        if seconds == -1 && nanoseconds > 0 {
            // The pax record cannot state a time in (-1 s, 0 s) through libarchive (FORMAT.md §10).
            warnings.append(SourceWarning(.timeRounded, path: diskPath, "has a modification time in the last second of 1969, which the tar stream cannot state with its fraction; stored as 1969-12-31T23:59:59Z"))
            nanoseconds = 0
        }
        var entry = ManifestEntry(kind: kind, path: archivePath, mode: UInt16(UInt32(st.st_mode) & 0o7777), mtime: seconds,
                                  mtimeNanoseconds: nanoseconds, size: 0, contentHash: ManifestEntry.zeroHash, linkTarget: "")
        seconds = 0
        entry.uid = UInt32(st.st_uid)
        entry.gid = UInt32(st.st_gid)
        entry.userName = owners.userName(entry.uid)
        entry.groupName = owners.groupName(entry.gid)
        let attributes: [(name: String, value: [UInt8])]
        do {
            if let fd {
                attributes = try ExtendedAttributes.list(fd: fd)
            } else if let symlinkIn {
                attributes = try ExtendedAttributes.list(symlinkNamed: symlinkIn.name, in: symlinkIn.directory)
            } else {
                attributes = []
            }
        } catch let error as SystemError {
            warnings.append(SourceWarning(.attributesNotRead, path: diskPath, "its extended attributes could not be read (\(String(cString: strerror(error.errno)))); archived without them"))
            attributes = []
        }
        for (name, value) in attributes {
            switch name {
            case ACLXattr.accessName, ACLXattr.defaultName:
                guard let acl = ACLXattr.decode(value) else {
                    warnings.append(SourceWarning(.attributesNotRead, path: diskPath, "has an ACL this version cannot read; archived without it"))
                    continue
                }
                // Names the ACL text form cannot carry (':', ',', newline) are left empty: the id stays.
                let named = acl.map { e -> ACLEntry in
                    var e = e
                    if e.tag == .user { e.name = owners.userName(e.id) ?? "" }
                    if e.tag == .group { e.name = owners.groupName(e.id) ?? "" }
                    if e.name.utf8.contains(where: { $0 == 0x3A || $0 == 0x2C || $0 == 0x0A }) { e.name = "" }
                    return e
                }
                if name == ACLXattr.accessName {
                    // A minimal ACL (owner, group, other) is the mode; only an extended one is stored.
                    if named.contains(where: \.isNamed) { entry.accessACL = named }
                } else if kind == .directory {
                    entry.defaultACL = named
                }
            case _ where !ExtendedAttribute.isPortableName(Array(name.utf8)):
                // FORMAT.md §8: printable ASCII without '=' (a pax keyword ends there) or '%' (libarchive's
                // percent-encoding of the name does not round-trip it) — what tar can carry exactly.
                warnings.append(SourceWarning(.attributesNotRead, path: diskPath, "has an extended attribute whose name ('\(name)') holds a space, '=', '%' or a byte outside printable ASCII, which the tar stream cannot carry exactly; archived without it"))
            default:
                entry.xattrs.append(ExtendedAttribute(name: Array(name.utf8), value: value))
            }
        }
        entry.xattrs.sort(by: ExtendedAttribute.precedes)
        return entry
    }

    private func emit(_ entry: ManifestEntry) throws {
        try flushDeferred()
        try output.entry(entry)
        entryCount += 1
        contentBytes += entry.size
    }

    /// Streams one regular file into the tar stream. A file that shrinks while it is read is padded
    /// with zeros (the tar header already gave its size), one that grows is cut at the size it had;
    /// either, or a change of its modification or change time while it was read, flags its entry
    /// `changed_while_read` (FORMAT.md §8) and is reported. `before` is the `fstat` the entry was made
    /// from, when there is one.
    @discardableResult
    func addFile(_ file: OpenFile, entry: ManifestEntry, size: UInt64, before: stat? = nil) throws -> ManifestEntry.Flags {
        let diskPath = file.path
        var entry = entry
        entry.size = size
        // A sparse file's tar data is its map and data regions, not its content: the walk hashes the
        // content (holes read as zeros) itself.
        let sparseHash = entry.sparseMap == nil ? nil : Sodium.Blake2bState(outputBytes: 32)
        try flushDeferred()
        try output.beginFile(entry)
        var remaining = size
        var shrank = false, grew = false
        var readSize: UInt64 = 0
        // The last read asks for one byte more than is left, when it fits: a file that grew shows
        // without another system call.
        var askedPastEnd = false
        while remaining > 0 {
            let space = try output.space()
            let want = Int(min(UInt64(space.count), remaining))
            askedPastEnd = want < space.count
            let ask = askedPastEnd ? want + 1 : want
            var n = shrank ? 0 : try file.readSequential(into: UnsafeMutableRawBufferPointer(rebasing: space[0..<ask]))
            if n > want {
                grew = true
                n = want
            } else if n < want {
                if !shrank { readSize = size - remaining + UInt64(n) }
                shrank = true
                UnsafeMutableRawBufferPointer(rebasing: space[n..<want]).initializeMemory(as: UInt8.self, repeating: 0)
                n = want
            }
            sparseHash?.update(UnsafeRawBufferPointer(rebasing: space[0..<n]))
            try output.commit(n)
            remaining -= UInt64(n)
            whileReading?(diskPath)
        }
        if !shrank && !grew && !askedPastEnd {
            var probe: UInt8 = 0
            grew = try withUnsafeMutableBytes(of: &probe, { try file.readSequential(into: $0) }) > 0
        }
        var changed = false
        if let before, !shrank, !grew {
            var after = stat()
            if fstat(file.fd, &after) == 0 {
                changed = after.st_size != before.st_size || after.st_mtim.tv_sec != before.st_mtim.tv_sec
                    || after.st_mtim.tv_nsec != before.st_mtim.tv_nsec || after.st_ctim.tv_sec != before.st_ctim.tv_sec
                    || after.st_ctim.tv_nsec != before.st_ctim.tv_nsec
            }
        }
        var flags: ManifestEntry.Flags = []
        if shrank {
            flags = [.changedWhileRead, .shrank]
            warnings.append(SourceWarning(.shrankWhileRead, path: diskPath, "shrank while it was read: \(readSize) of \(size) bytes were read and the rest stored as zeros; restore cuts it at \(readSize) bytes"))
        } else if grew {
            flags = .changedWhileRead
            warnings.append(SourceWarning(.grewWhileRead, path: diskPath, "grew while it was read; only its first \(size) bytes were stored"))
        } else if changed {
            flags = .changedWhileRead
            warnings.append(SourceWarning(.changedWhileRead, path: diskPath, "changed while it was read; what was stored may mix old and new content"))
        }
        try output.endFile(flags: flags, readSize: shrank ? readSize : nil, contentHash: sparseHash?.finalize())
        entryCount += 1
        contentBytes += size
        return flags
    }

    /// The link's target; nil when it is no longer a link (or gone).
    private func readLink(in directory: Int32, _ name: String, diskPath: String) throws -> String? {
        var buf = [UInt8](repeating: 0, count: FormatV1.maxPathBytes + 1)
        let n = buf.withUnsafeMutableBufferPointer { p in
            p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { buffer in NameCodec.withCString(name) { readlinkat(directory, $0, buffer, p.count) } }
        }
        guard n >= 0 else {
            if errno == EINVAL || errno == ENOENT { return nil }
            throw SystemError(operation: "read link", path: diskPath, errno: errno)
        }
        guard n <= FormatV1.maxPathBytes else { throw SourceError.nameTooLong(path: diskPath) }
        // A target is bytes too (FORMAT.md §8): one that is not UTF-8 is kept exactly (NameCodec).
        return NameCodec.decode(buf[0..<n])
    }

    /// The entries of an open directory with their `d_type`, sorted bytewise by name; refuses names
    /// that are not UTF-8. `fd` stays open.
    private func children(_ fd: Int32, _ path: String) throws -> [(name: String, type: UInt8)] {
        let own = dup(fd)
        guard own >= 0, let dir = fdopendir(own) else {
            let code = errno
            close(own)
            throw SystemError(operation: "list directory", path: path, errno: code)
        }
        defer { closedir(dir) }
        var names: [([UInt8], UInt8)] = []
        while let entry = readdir(dir) {
            let raw = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
            if raw == [46] || raw == [46, 46] { continue }
            names.append((raw, entry.pointee.d_type))
        }
        // Bytewise, with memcmp: a directory of tens of thousands of tickets is sorted on every create.
        names.sort { a, b in
            let n = min(a.0.count, b.0.count)
            let c = a.0.withUnsafeBufferPointer { pa in b.0.withUnsafeBufferPointer { pb in memcmp(pa.baseAddress!, pb.baseAddress!, n) } }
            return c != 0 ? c < 0 : a.0.count < b.0.count
        }
        // Names are bytes (FORMAT.md §8): one that is not UTF-8 (Latin-1 from an old Windows share) is
        // archived exactly, through NameCodec, like any other.
        return names.map { raw, type in (NameCodec.decode(raw), type) }
    }
}

/// Where the walker's entries and file content go, in walk order.
protocol WalkOutput: AnyObject {
    /// A directory, symlink or hardlink: its tar header and complete manifest entry.
    func entry(_ entry: ManifestEntry) throws
    /// A regular file of `entry.size` bytes, whose content follows through `space`/`commit`.
    func beginFile(_ entry: ManifestEntry) throws
    /// The current file's content is complete; what reading it found out, and for a sparse file (whose
    /// tar data is not its content) the content hash the walk computed.
    func endFile(flags: ManifestEntry.Flags, readSize: UInt64?, contentHash: [UInt8]?) throws
    /// Room for the current file's next bytes (at least a few KiB): fill a prefix, then `commit` it.
    func space() throws -> UnsafeMutableRawBufferPointer
    func commit(_ count: Int) throws
}

/// Writes the walk straight into the tar stream and the manifest, on the walking thread.
final class DirectWalkOutput: WalkOutput {
    private let content: ArchiveCreator.ContentWriter
    private lazy var buffer = ByteBuffer(capacity: 1 << 20)

    init(content: ArchiveCreator.ContentWriter) { self.content = content }

    func entry(_ entry: ManifestEntry) throws {
        var entry = entry
        entry.tarOffset = try content.tar.nextHeaderOffset()
        // A deleted entry has no tar entry: its offset is the next one's (FORMAT.md §8).
        if entry.kind != .deleted { try content.tar.writeHeader(entry) }
        try content.record(entry)
    }

    func beginFile(_ entry: ManifestEntry) throws {
        var entry = entry
        entry.tarOffset = try content.tar.nextHeaderOffset()
        try content.tar.writeHeader(entry)
        try content.recordFile(entry)
    }

    func endFile(flags: ManifestEntry.Flags, readSize: UInt64?, contentHash: [UInt8]?) throws {
        try content.endFile(flags, readSize, contentHash)
    }

    func space() throws -> UnsafeMutableRawBufferPointer { buffer.storage }

    func commit(_ count: Int) throws {
        try content.tar.writeData(UnsafeRawBufferPointer(rebasing: buffer.storage[0..<count]))
    }

    /// Applies `block`'s records (from a walk on another thread) to the tar stream and the manifest.
    func apply(_ block: WalkBlocks.Block) throws {
        for record in block.records {
            switch record {
            case .entry(let entry): try self.entry(entry)
            case .beginFile(let entry): try beginFile(entry)
            case .data(let range): try content.tar.writeData(UnsafeRawBufferPointer(rebasing: block.buffer.storage[range]))
            case .endFile(let flags, let readSize, let hash): try endFile(flags: flags, readSize: readSize, contentHash: hash)
            }
        }
    }
}
