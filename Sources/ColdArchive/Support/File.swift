#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// An open POSIX file descriptor. Every call retries `EINTR` here and nowhere else, and failures
/// become a `SystemError` that names the operation and the path.
package final class OpenFile {
    package let fd: Int32
    package let path: String
    private let counter = NSLock()
    private var positionalBytesRead: UInt64 = 0

    /// Bytes read so far with `read(into:at:)` (on any thread): what a restore reports it read.
    var bytesRead: UInt64 { counter.withLock { positionalBytesRead } }

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// Takes ownership of a descriptor opened elsewhere.
    convenience init(adopting fd: Int32, path: String) {
        self.init(fd: fd, path: path)
    }

    /// `open(path, O_RDONLY)`.
    package static func forReading(_ path: String) throws -> OpenFile {
        OpenFile(fd: try retrying("open", path) { NameCodec.withCString(path) { open($0, O_RDONLY | O_CLOEXEC) } }, path: path)
    }

    /// `open(path, O_WRONLY|O_CREAT|O_EXCL)`: a new file that must not exist yet.
    package static func createNew(_ path: String, mode: mode_t = 0o644, readWrite: Bool = false) throws -> OpenFile {
        let access = readWrite ? O_RDWR : O_WRONLY
        return OpenFile(fd: try retrying("create", path) { NameCodec.withCString(path) { open($0, access | O_CREAT | O_EXCL | O_CLOEXEC, mode) } }, path: path)
    }

    /// `fstat(2)`'s size.
    package func size() throws -> UInt64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SystemError(operation: "stat", path: path, errno: errno) }
        return UInt64(st.st_size)
    }

    /// `pread(2)` until `buffer` is full or the file ends; returns the bytes read.
    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        let n = try transfer("read", count: buffer.count) { done in
            pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
        }
        counter.withLock { positionalBytesRead += UInt64(n) }
        return n
    }

    /// Reads exactly `count` bytes at `offset`; a short read means the named structure is truncated.
    package func readExactly(_ count: Int, at offset: UInt64, what: String) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let n = try out.withUnsafeMutableBytes { try read(into: $0, at: offset) }
        guard n == count else { throw IntegrityError.truncated(what: what) }
        return out
    }

    /// `read(2)` at the current position until `buffer` is full or end of file.
    func readSequential(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var switchedToBlocking = false
        return try transfer("read", count: buffer.count) { done in
            let n = Glibc.read(fd, buffer.baseAddress! + done, buffer.count - done)
            if n < 0 && errno == EAGAIN && !switchedToBlocking {
                // Opened with O_NONBLOCK (sources are, so that a FIFO cannot block the walk); local
                // files never say EAGAIN, some FUSE ones can: switch to blocking reads once and retry
                // (as an interrupted call). A second EAGAIN is an error.
                let flags = fcntl(fd, F_GETFL)
                if flags >= 0 && flags & O_NONBLOCK != 0 && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0 {
                    switchedToBlocking = true
                    errno = EINTR
                } else {
                    errno = EAGAIN
                }
            }
            return n
        }
    }

    /// `write(2)` until every byte is written.
    func write(_ buffer: UnsafeRawBufferPointer) throws {
        let written = try transfer("write", count: buffer.count) { done in
            Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
        }
        guard written == buffer.count else { throw SystemError(operation: "write", path: path, errno: EIO) }
    }

    /// Repeats `call` (given the bytes done so far) until `count` bytes are done or it returns 0
    /// (end of file), retrying `EINTR`; returns the bytes done.
    private func transfer(_ operation: String, count: Int, _ call: (Int) -> Int) throws -> Int {
        var done = 0
        while done < count {
            let n = call(done)
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError(operation: operation, path: path, errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// `pwrite(2)` of every byte at `offset`.
    package func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        let written = try transfer("write", count: buffer.count) { done in
            pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
        }
        guard written == buffer.count else { throw SystemError(operation: "write", path: path, errno: EIO) }
    }

    package func write(_ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }

    /// `sync_file_range(SYNC_FILE_RANGE_WRITE)`: starts writing a range back to the disk without
    /// waiting, so that a later `fsync` has less left to do. Advice only: failures are ignored.
    func startWriteback(offset: UInt64, count: UInt64) {
        _ = sync_file_range(fd, Int64(offset), Int64(count), 2 /* SYNC_FILE_RANGE_WRITE */)
    }

    /// `fsync(2)`.
    package func sync() throws {
        guard fsync(fd) == 0 else { throw SystemError(operation: "fsync", path: path, errno: errno) }
    }

    private static func retrying(_ operation: String, _ path: String, _ call: () -> Int32) throws -> Int32 {
        while true {
            let fd = call()
            if fd >= 0 { return fd }
            if errno != EINTR { throw SystemError(operation: operation, path: path, errno: errno) }
        }
    }
}

/// Small file-system operations used by the key store and the archive writer.
package enum FileSystem {
    package static func exists(_ path: String) -> Bool {
        var st = stat()
        return NameCodec.withCString(path) { lstat($0, &st) } == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return NameCodec.withCString(path) { stat($0, &st) } == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
        if NameCodec.withCString(path, { mkdir($0, mode) }) != 0 && errno != EEXIST {
            throw SystemError(operation: "create directory", path: path, errno: errno)
        }
    }

    /// `mkdir -p`: creates `path` and whatever parents are missing (the parents with mode 0755).
    /// Returns the directories it created, outermost first, so a failed command can remove them again.
    @discardableResult
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws -> [String] {
        var missing: [String] = []
        var current = path
        while !current.isEmpty && current != "/" && current != "." && !exists(current) {
            missing.append(current)
            current = parent(of: current)
        }
        var created: [String] = []
        for directory in missing.reversed() {
            let directoryMode: mode_t = directory == path ? mode : 0o755
            if NameCodec.withCString(directory, { mkdir($0, directoryMode) }) != 0 {
                guard errno == EEXIST else { throw SystemError(operation: "create directory", path: directory, errno: errno) }
                continue
            }
            created.append(directory)
        }
        return created
    }

    package static func rename(_ from: String, _ to: String) throws {
        guard NameCodec.withCString(from, { f in NameCodec.withCString(to) { Glibc.rename(f, $0) } }) == 0 else { throw SystemError(operation: "rename", path: "\(from)' to '\(to)", errno: errno) }
    }

    package static func remove(_ path: String) {
        _ = NameCodec.withCString(path) { unlink($0) }
    }

    /// `fsync` on a directory, so that a rename in it survives a crash.
    package static func syncDirectory(_ path: String) throws {
        let fd = NameCodec.withCString(path) { open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else { throw SystemError(operation: "open directory", path: path, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SystemError(operation: "fsync directory", path: path, errno: errno) }
    }

    static func directoryEntries(_ path: String) throws -> [String] {
        guard let dir = NameCodec.withCString(path, { opendir($0) }) else { throw SystemError(operation: "list directory", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            // Names as bytes (NameCodec): one that is not UTF-8 is listed exactly, not with U+FFFD.
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in NameCodec.decode(raw.prefix(while: { $0 != 0 })) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { NameCodec.bytes($0).lexicographicallyPrecedes(NameCodec.bytes($1)) }
    }

    package static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    package static func baseName(of path: String) -> String {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return trimmed }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsynced, then
    /// renamed over `path`, then the directory fsynced.
    package static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
        let temp = "\(parent(of: path))/.\(baseName(of: path)).tmp-\(getpid())-\(Sodium.randomBytes(4).hex)"
        do {
            let file = try OpenFile.createNew(temp, mode: mode)
            guard fchmod(file.fd, mode) == 0 else { throw SystemError(operation: "chmod", path: temp, errno: errno) }
            try file.write(bytes)
            try file.sync()
            try rename(temp, path)
            try syncDirectory(parent(of: path))
        } catch {
            remove(temp)
            throw error
        }
    }

    /// Overwrites a small file with zeros, syncs it, and unlinks it. (On copy-on-write or journalled
    /// file systems and SSDs the old blocks may survive; docs/KEYS.md says what that means.)
    static func shred(_ path: String) throws {
        let file = try OpenFile.forReading(path)
        let size = try file.size()
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd >= 0 {
            let zeros = [UInt8](repeating: 0, count: Int(min(size, 1 << 20)))
            _ = zeros.withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, $0.count) }
            fsync(fd)
            close(fd)
        }
        guard unlink(path) == 0 else { throw SystemError(operation: "remove", path: path, errno: errno) }
    }

    /// Deletes a directory tree without following any symlink in it.
    static func removeTree(_ path: String) throws {
        var st = stat()
        guard NameCodec.withCString(path, { lstat($0, &st) }) == 0 else { return }
        if UInt32(st.st_mode) & 0o170000 == FileTypeBits.directory {
            _ = NameCodec.withCString(path) { chmod($0, 0o700) }
            for name in try FileSystem.directoryEntries(path) { try removeTree("\(path)/\(name)") }
            guard NameCodec.withCString(path, { rmdir($0) }) == 0 else { throw SystemError(operation: "remove directory", path: path, errno: errno) }
        } else {
            guard NameCodec.withCString(path, { unlink($0) }) == 0 else { throw SystemError(operation: "remove", path: path, errno: errno) }
        }
    }

    /// Reads a small file whole, refusing anything larger than `limit` bytes.
    package static func readSmallFile(_ path: String, limit: Int) throws -> [UInt8] {
        let file = try OpenFile.forReading(path)
        let size = try file.size()
        guard size <= UInt64(limit) else {
            throw OperationError("'\(path)' is \(size) bytes, larger than the \(limit) bytes such a file may have")
        }
        return try file.readExactly(Int(size), at: 0, what: path)
    }
}

/// `sync_file_range(2)` (glibc declares it only under _GNU_SOURCE, which Swift's Glibc module does not set).
/// Bound by symbol name: with four integer arguments Swift's and C's calling conventions pass them in
/// the same registers on x86_64 and arm64, the Linux targets this tool is built for.
@_silgen_name("sync_file_range")
private func sync_file_range(_ fd: Int32, _ offset: Int64, _ count: Int64, _ flags: UInt32) -> Int32
