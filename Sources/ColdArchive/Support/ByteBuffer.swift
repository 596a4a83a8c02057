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

/// A list of what a hand-over buffer holds, where `data` records say which bytes of the buffer are
/// content (restore's writer batches, create's walk blocks).
protocol ContentRecord {
    static func data(_ range: Range<Int>) -> Self
    var dataRange: Range<Int>? { get }
}

extension Array where Element: ContentRecord {
    /// Records that `range` of the buffer is content, extending the last record when it ends where
    /// `range` starts (one record per piece of a file, however many reads filled it).
    mutating func appendContent(_ range: Range<Int>) {
        if let last = last?.dataRange, last.upperBound == range.lowerBound {
            self[count - 1] = .data(last.lowerBound..<range.upperBound)
        } else {
            append(.data(range))
        }
    }
}
