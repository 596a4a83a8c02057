import Foundation
import ColdArchive

/// The part of encoding and repair that walks slices: a run of slices of one stripe (the same slice
/// range of each of its columns) is processed in pieces of at most `pieceBytes`, and each row's
/// slices are hashed as the pieces pass, so memory is (rows × piece) whatever the slice size.
struct SliceRun {
    let stripe: Int
    /// Slices [first, end) of each column of the stripe.
    let first: Int
    let end: Int

    static let pieceBytes = 64 << 10
}

/// BLAKE2b-128 of one slice, built piece by piece.
final class SliceHasher {
    private let state = Sodium.Blake2bState(outputBytes: ParityIndex.hashSize)
    private var fed = false

    func update(_ bytes: UnsafeRawBufferPointer) {
        state.update(bytes)
        fed = true
    }

    /// The hash of what was fed since the last call (an empty slice is never asked for).
    func finish() -> [UInt8] {
        precondition(fed, "a slice hash was asked for with no bytes")
        let out = state.finalize()
        state.reset()
        fed = false
        return out
    }
}

/// Several threads pulling items by number; the first error stops the rest and is rethrown.
final class WorkQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var nextItem = 0
    private let count: Int
    private var failure: Error?

    init(count: Int) { self.count = count }

    private func take() -> Int? {
        lock.withLock {
            guard failure == nil, nextItem < count else { return nil }
            defer { nextItem += 1 }
            return nextItem
        }
    }

    private func fail(_ error: Error) { lock.withLock { if failure == nil { failure = error } } }

    /// Runs `body(item, worker)` for every item on `workers` threads; `setUp(worker)` makes each
    /// thread's own state first.
    func run<State>(workers: Int, setUp: (Int) -> State, _ body: (Int, State) throws -> Void) throws {
        let threads = max(1, min(workers, count))
        withoutActuallyEscaping(setUp) { setUp in
            withoutActuallyEscaping(body) { body in
                let box = UncheckedBox(setUp: setUp, body: body)
                DispatchQueue.concurrentPerform(iterations: threads) { worker in
                    let state = box.setUp(worker)
                    while let item = self.take() {
                        do { try box.body(item, state) } catch { self.fail(error) }
                    }
                }
            }
        }
        if let failure { throw failure }
    }

    private struct UncheckedBox<State>: @unchecked Sendable {
        let setUp: (Int) -> State
        let body: (Int, State) throws -> Void
    }
}

/// A buffer per row of a stripe, `SliceRun.pieceBytes` each, owned by one worker.
final class RowBuffers {
    let rows: [UnsafeMutableRawBufferPointer]

    init(count: Int, bytes: Int) {
        rows = (0..<count).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64) }
    }

    deinit { rows.forEach { $0.deallocate() } }
}

extension ParityIndex {
    /// The byte range of the archive file that `length` bytes at `offset` into column `column` cover
    /// (clipped at the file's end: what lies past it is zero padding).
    func archiveRange(column: Int, offset: UInt64, length: Int) -> Range<UInt64> {
        let start = UInt64(column) * columnLength + offset
        return min(start, archiveSize)..<min(start + UInt64(length), archiveSize)
    }

    /// The column of stripe `t` at position `c`.
    func column(stripe t: Int, position c: Int) -> Int { c * stripeCount + t }

    /// Reads `length` bytes at `offset` into column `column` of the archive into `buffer`, zero past
    /// the file's end (and past `available`, the bytes the damaged file still has).
    static func readColumn(_ file: OpenFile?, index: ParityIndex, column: Int, offset: UInt64, length: Int,
                           available: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let range = index.archiveRange(column: column, offset: offset, length: length)
        let readable = range.lowerBound..<min(range.upperBound, max(range.lowerBound, available))
        var got = 0
        if let file, !readable.isEmpty {
            got = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<readable.count]), at: readable.lowerBound)
        }
        if got < length { UnsafeMutableRawBufferPointer(rebasing: buffer[got..<length]).initializeMemory(as: UInt8.self, repeating: 0) }
    }

    /// Feeds the archive bytes of `piece` (bytes [offset, offset+length) of column `column`) to the
    /// hash of each slice they belong to, and calls `finished(slice, hash)` for each slice that ends in it.
    func hashDataPiece(_ piece: UnsafeRawBufferPointer, column: Int, offset: UInt64, hasher: SliceHasher,
                       finished: (Int, [UInt8]) -> Void) {
        let range = archiveRange(column: column, offset: offset, length: piece.count)
        var at = range.lowerBound
        let s = UInt64(sliceSize)
        while at < range.upperBound {
            let slice = Int(at / s)
            let sliceEnd = min(UInt64(slice + 1) * s, archiveSize)
            let stop = min(sliceEnd, range.upperBound)
            let local = Int(at - range.lowerBound)
            hasher.update(UnsafeRawBufferPointer(rebasing: piece[local..<(local + Int(stop - at))]))
            if stop == sliceEnd { finished(slice, hasher.finish()) }
            at = stop
        }
    }

    /// Likewise for a parity piece at `offset` into parity column `row` of stripe `t` (always whole slices).
    func hashParityPiece(_ piece: UnsafeRawBufferPointer, offset: UInt64, hasher: SliceHasher, finished: (Int, [UInt8]) -> Void) {
        var at = offset
        let end = offset + UInt64(piece.count)
        let s = UInt64(sliceSize)
        while at < end {
            let slice = Int(at / s)
            let stop = min(UInt64(slice + 1) * s, end)
            let local = Int(at - offset)
            hasher.update(UnsafeRawBufferPointer(rebasing: piece[local..<(local + Int(stop - at))]))
            if stop == UInt64(slice + 1) * s { finished(slice, hasher.finish()) }
            at = stop
        }
    }
}
