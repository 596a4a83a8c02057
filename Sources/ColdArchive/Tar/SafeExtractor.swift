#if canImport(Glibc)
import Glibc
#endif

/// Writes entries below one root directory and nowhere else. Every path is walked component by
/// component with `openat(…, O_NOFOLLOW)`, so a symlink — planted earlier in the same archive or
/// already there — is never followed; nothing is ever replaced (`O_EXCL`, `mkdirat`, `symlinkat`
/// and `linkat` all fail on an existing name); device nodes, FIFOs and setuid bits never get here.
/// Directory modes and times are applied at the end, deepest first, so read-only directories can
/// still be filled.
final class SafeExtractor: EntrySink {
    private let root: DirectoryHandle
    private var rootFD: Int32 { root.fd }
    private let rootPath: String
    private var directories: [ManifestEntry] = []
    /// The directory the last entry went into: entries come in tree order, so most share it.
    private var cachedParent: (parts: ArraySlice<String>, handle: DirectoryHandle)?
    /// Files are written on these threads when there are any, else on the calling thread.
    private let writers: FileWriters?
    private var currentFile: Int32 = -1
    private var currentEntry: ManifestEntry?
    private var currentOwner: (uid: UInt32, gid: UInt32)?
    private var currentPosition: UInt64 = 0
    private let hasher: Sodium.Blake2bState?
    private lazy var buffer = ByteBuffer(capacity: 1 << 20)

    /// `writers` threads create and fill regular files (0: the calling thread does). With
    /// `checkContent`, every file's content is hashed as it is written and compared with the
    /// manifest's BLAKE2b-256.
    /// Owner, attributes, ACLs and times of every restored entry, and what could not be applied.
    let applier: MetadataApplier

    init(root: String, writers: Int = 0, checkContent: Bool = false, owners: OwnerPolicy = .automatic) throws {
        rootPath = root
        applier = MetadataApplier(policy: owners)
        let fd = NameCodec.withCString(root) { open($0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard fd >= 0 else { throw SystemError(operation: "open", path: root, errno: errno) }
        self.root = DirectoryHandle(fd: fd)
        applier.learnCreation(rootFD: fd)
        self.writers = writers > 0 ? FileWriters(lanes: writers, checkContent: checkContent, rootPath: root, applier: applier) : nil
        hasher = writers == 0 && checkContent ? Sodium.Blake2bState(outputBytes: 32) : nil
        checksContentHashes = checkContent
    }

    deinit {
        writers?.shutdown()
        if currentFile >= 0 { close(currentFile) }
    }

    let checksContentHashes: Bool

    /// The most writer lanes that ever created files in one directory at once (0 without lanes).
    var peakLanesPerDirectory: Int { writers?.peakLanesPerDirectory ?? 0 }
    var lanesForLargeFiles: Int { writers?.lanesForLargeFiles ?? 0 }

    /// Stops the writer threads (dropping what they have not written yet); for a restore that failed,
    /// before its staging directory is removed.
    func shutdown() {
        writers?.shutdown()
    }

    /// The open directory that holds the last component of `parts`. Reusing it is safe: nothing
    /// restored is ever replaced, so a directory opened without following links stays the one the
    /// path names.
    private func parentDirectory(_ parts: [String], path: String) throws -> DirectoryHandle {
        let parent = parts.dropLast()
        if parent.isEmpty { return root }
        if let cachedParent, PathRules.same(cachedParent.parts, parent) { return cachedParent.handle }
        let handle = DirectoryHandle(fd: try Self.openParent(of: parts, path: path, rootFD: rootFD))
        cachedParent = (parent, handle)
        return handle
    }

    func begin(_ entry: ManifestEntry) throws {
        let parts = try PathRules.components(of: entry.path)
        let name = parts[parts.count - 1]
        let handle = try parentDirectory(parts, path: entry.path)
        let parent = handle.fd
        switch entry.kind {
        case .directory:
            guard NameCodec.withCString(name, { mkdirat(parent, $0, 0o700) }) == 0 else { throw failure("create directory", entry.path) }
            directories.append(entry)
        case .file:
            if entry.flags.contains(.changedWhileRead) {
                applier.notice(.changedWhileRead, entry.path, entry.flags.contains(.shrank)
                    ? "shrank while it was archived: restored as the \(entry.readSize ?? 0) bytes that were read"
                    : "changed while it was archived: restored as stored, which may mix old and new content")
            }
            let owner = applier.owner(for: entry)
            if let writers {
                try writers.beginFile(FileWriters.FileStart(entry: entry, directory: handle, name: name, owner: owner))
                return
            }
            currentOwner = owner
            let fd = NameCodec.withCString(name) { openat(parent, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, MetadataApplier.creationMode(for: entry)) }
            guard fd >= 0 else { throw failure("create file", entry.path) }
            currentFile = fd
            currentEntry = entry
            currentPosition = 0
            hasher?.reset()
        case .symlink:
            guard NameCodec.withCString(entry.linkTarget, { t in NameCodec.withCString(name) { symlinkat(t, parent, $0) } }) == 0 else { throw failure("create symlink", entry.path) }
            applier.applySymlink(parent: parent, name: name, entry: entry, owner: applier.owner(for: entry))
            _ = NameCodec.withCString(name) { utimensat(parent, $0, Self.times(entry), AT_SYMLINK_NOFOLLOW) }
        case .hardlink:
            // The file it points at must be complete, with its mode and times, before it is linked.
            try writers?.drain()
            let targetParts = try PathRules.components(of: entry.linkTarget)
            let targetParent = try Self.openParent(of: targetParts, path: entry.linkTarget, rootFD: rootFD)
            defer { if targetParent != rootFD { close(targetParent) } }
            let targetName = targetParts[targetParts.count - 1]
            var st = stat()
            guard NameCodec.withCString(targetName, { fstatat(targetParent, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0,
                  UInt32(st.st_mode) & 0o170000 == FileTypeBits.regular else {
                throw IntegrityError.unsafeEntry(path: entry.path, reason: .hardlinkNotToRestoredFile)
            }
            // A hardlink carries its file's metadata (FORMAT.md §8): the permission bits must agree.
            guard UInt16(st.st_mode) & 0o777 == entry.mode & 0o777 else {
                throw IntegrityError.manifestMismatch(path: entry.path, reason: .mode(tar: UInt32(st.st_mode) & 0o7777, manifest: entry.mode))
            }
            guard NameCodec.withCString(targetName, { t in NameCodec.withCString(name) { linkat(targetParent, t, parent, $0, 0) } }) == 0 else { throw failure("create hardlink", entry.path) }
        case .deleted:
            throw IntegrityError.malformed(what: "manifest entry '\(DisplayName.escaped(entry.path))' (a deleted entry reached the extractor)")
        }
    }

    /// Room for the current file's next content bytes; fill a prefix and `commit` it.
    func space() throws -> UnsafeMutableRawBufferPointer {
        if let writers { return try writers.space() }
        return buffer.storage
    }

    func commit(_ count: Int) throws {
        if let writers {
            writers.commit(count)
            return
        }
        try write(UnsafeRawBufferPointer(rebasing: buffer.storage[0..<count]))
    }

    /// Appends bytes to the current regular file, on the calling thread (no writer lanes).
    private func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard currentFile >= 0 else {
            throw IntegrityError.unsafeEntry(path: "?", reason: .contentForNonFile)
        }
        hasher?.update(bytes)
        defer { currentPosition += UInt64(bytes.count) }
        if let entry = currentEntry, let map = entry.sparseMap {
            return try SparseWriter.write(bytes, at: currentPosition, map: map, fd: currentFile, path: "\(rootPath)/\(entry.path)")
        }
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(currentFile, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("write", currentEntry?.path ?? "a restored file")
            }
            done += n
        }
    }

    func end(_ entry: ManifestEntry) throws {
        guard entry.kind == .file else { return }
        if let writers {
            try writers.endFile()
            return
        }
        defer {
            close(currentFile)
            currentFile = -1
            currentEntry = nil
        }
        if let hasher, hasher.finalize() != entry.contentHash {
            throw IntegrityError.manifestMismatch(path: entry.path, reason: .contentHash)
        }
        if entry.sparseMap != nil { try SparseWriter.finish(fd: currentFile, size: entry.size, path: "\(rootPath)/\(entry.path)") }
        try applier.apply(fd: currentFile, entry: entry, owner: currentOwner, path: "\(rootPath)/\(entry.path)", created: true)
    }

    /// Waits until every file is written, closed and checked.
    func finishContent() throws {
        try writers?.drain()
    }

    /// Applies directory modes and times, deepest first, then flushes the restored data to disk.
    /// With `exceptTopLevel`, top-level directories are left writable and returned, for the caller to
    /// finish once they are moved into place.
    func finish(exceptTopLevel: Bool = false) throws -> [ManifestEntry] {
        try finishContent()
        cachedParent = nil
        var deferred: [ManifestEntry] = []
        for entry in directories.reversed() {
            if exceptTopLevel && PathRules.isTopLevel(entry.path) {
                deferred.append(entry)
                continue
            }
            try Self.applyModeAndTimes(entry, rootFD: rootFD, rootPath: rootPath, applier: applier)
        }
        // Everything written reaches the disk before the restore reports success (this file system only).
        _ = syncfs(rootFD)
        return deferred
    }

    /// Sets a directory's mode and times, reaching it without following symlinks.
    static func applyModeAndTimes(_ entries: [ManifestEntry], under root: String, applier: MetadataApplier) throws {
        guard !entries.isEmpty else { return }
        let fd = NameCodec.withCString(root) { open($0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard fd >= 0 else { throw SystemError(operation: "open", path: root, errno: errno) }
        defer { close(fd) }
        for entry in entries { try applyModeAndTimes(entry, rootFD: fd, rootPath: root, applier: applier) }
    }

    /// A directory's owner, mode, attributes, ACLs and times, reaching it without following symlinks.
    private static func applyModeAndTimes(_ entry: ManifestEntry, rootFD: Int32, rootPath: String, applier: MetadataApplier) throws {
        let parts = try PathRules.components(of: entry.path)
        let parent = try openParent(of: parts, path: entry.path, rootFD: rootFD)
        defer { if parent != rootFD { close(parent) } }
        let fd = NameCodec.withCString(parts[parts.count - 1]) { openat(parent, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard fd >= 0 else { throw SystemError(operation: "open directory", path: "\(rootPath)/\(entry.path)", errno: errno) }
        defer { close(fd) }
        try applier.apply(fd: fd, entry: entry, owner: applier.owner(for: entry), path: "\(rootPath)/\(entry.path)")
    }

    /// Opens the directory that will hold the last component, refusing symlinks on the way.
    private static func openParent(of parts: [String], path: String, rootFD: Int32) throws -> Int32 {
        var fd = rootFD
        for component in parts.dropLast() {
            let next = NameCodec.withCString(component) { openat(fd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            let code = errno
            if fd != rootFD { close(fd) }
            guard next >= 0 else {
                if code == ELOOP || code == ENOTDIR {
                    throw IntegrityError.unsafeEntry(path: path, reason: .pathThroughSymlink)
                }
                if code == ENOENT {
                    throw IntegrityError.unsafeEntry(path: path, reason: .parentNotBefore)
                }
                throw SystemError(operation: "open directory", path: path, errno: code)
            }
            fd = next
        }
        return fd
    }

    private func failure(_ operation: String, _ path: String) -> Error {
        Self.failure(operation, path, rootPath: rootPath, errno: errno)
    }

    /// The error for a failed system call on a restored entry; `EEXIST` means the archive names it twice.
    static func failure(_ operation: String, _ path: String, rootPath: String, errno code: Int32) -> Error {
        if code == EEXIST {
            return IntegrityError.unsafeEntry(path: path, reason: .appearsTwice)
        }
        return SystemError(operation: operation, path: "\(rootPath)/\(path)", errno: code)
    }

    /// Access and modification time for `utimensat`/`futimens`: both the archived mtime.
    static func times(_ entry: ManifestEntry) -> [timespec] {
        let t = timespec(tv_sec: Int(entry.mtime), tv_nsec: Int(entry.mtimeNanoseconds))
        return [t, t]
    }
}

/// `syncfs(2)`: flush one file system (glibc declares it only under _GNU_SOURCE, which Swift's Glibc
/// module does not set).
@_silgen_name("syncfs")
private func syncfs(_ fd: Int32) -> Int32
