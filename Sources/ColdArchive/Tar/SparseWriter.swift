#if canImport(Glibc)
import Glibc
#endif

/// Writes a sparse file's content back with its holes (FORMAT.md §8, record 0x07): bytes that fall in
/// a data region are written at their offset (`pwrite`), bytes in a hole are skipped, and the file is
/// given its full size at the end, so the holes take no disk space, as in the source.
enum SparseWriter {
    /// `bytes` are the content at logical offset `position`.
    static func write(_ bytes: UnsafeRawBufferPointer, at position: UInt64, map: [SparseRegion], fd: Int32, path: String) throws {
        let end = position + UInt64(bytes.count)
        for region in map where region.length > 0 && region.offset < end && region.end > position {
            let from = max(region.offset, position), to = min(region.end, end)
            var done = 0
            let count = Int(to - from)
            let base = bytes.baseAddress! + Int(from - position)
            while done < count {
                let n = pwrite(fd, base + done, count - done, off_t(from) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SystemError(operation: "write", path: path, errno: errno)
                }
                done += n
            }
        }
    }

    /// Gives the file its logical size (a file that ends in a hole).
    static func finish(fd: Int32, size: UInt64, path: String) throws {
        guard ftruncate(fd, off_t(size)) == 0 else { throw SystemError(operation: "truncate", path: path, errno: errno) }
    }
}
