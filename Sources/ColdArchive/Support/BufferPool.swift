import Foundation

/// Buffers of one capacity, handed out and taken back, so the pipeline reuses a fixed set of chunk
/// buffers instead of allocating one per chunk: memory stays flat and no allocator arena grows
/// because buffers are allocated on one thread and freed on another. The lock makes it shareable.
final class BufferPool: @unchecked Sendable {
    let capacity: Int
    private let lock = NSLock()
    private var free: [ByteBuffer] = []
    private let keep: Int

    /// `keep` is how many idle buffers are kept at most; more are released.
    init(capacity: Int, keep: Int) {
        self.capacity = capacity
        self.keep = keep
    }

    /// An empty buffer of `capacity` bytes.
    func take() -> ByteBuffer {
        lock.lock()
        let buffer = free.popLast()
        lock.unlock()
        if let buffer {
            buffer.count = 0
            return buffer
        }
        return ByteBuffer(capacity: capacity)
    }

    /// Returns a buffer that is no longer used by anyone.
    func give(_ buffer: ByteBuffer) {
        guard buffer.capacity == capacity else { return }
        lock.lock()
        if free.count < keep { free.append(buffer) }
        lock.unlock()
    }
}
