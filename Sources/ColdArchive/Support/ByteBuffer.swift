/// A heap buffer with a stable address, handed between pipeline stages (and to C callbacks) without
/// copying. Exactly one stage owns it at a time; that hand-over is what makes it safe to send.
final class ByteBuffer: @unchecked Sendable {
    let storage: UnsafeMutableRawBufferPointer
    /// How many bytes at the start of `storage` hold data.
    var count: Int = 0

    init(capacity: Int) {
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(capacity, 1), alignment: 64)
    }

    deinit { storage.deallocate() }

    var capacity: Int { storage.count }
    var isFull: Bool { count == storage.count }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[0..<count]) }

    /// Copies as much of `source` as fits; returns how many bytes were taken.
    func append(_ source: UnsafeRawBufferPointer) -> Int {
        let n = min(source.count, storage.count - count)
        if n > 0 {
            UnsafeMutableRawBufferPointer(rebasing: storage[count..<count + n])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<n]))
            count += n
        }
        return n
    }

    func toArray() -> [UInt8] { Array(bytes) }
}
