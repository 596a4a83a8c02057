import Foundation

/// The BLAKE2b-256 of one file's content, computed by the sealing workers from the chunk buffers the
/// content lands in, so that the thread that walks and reads the sources does not hash. A file's
/// content may span chunks that different workers seal at the same time; its pieces are hashed in
/// order, each worker waiting for the previous piece. Workers take chunks in order, so the piece
/// waited for is always already being hashed: no wait can last.
final class ContentHash: @unchecked Sendable {
    private let state = Sodium.Blake2bState(outputBytes: 32)
    /// Pieces handed to chunks so far (the cutting thread's count).
    fileprivate(set) var piecesCut = 0
    /// Pieces hashed so far, and the digest after the last one; guarded by `ContentHash.condition`.
    private var piecesHashed = 0
    private var digest: [UInt8]?

    /// One lock for every file's hand-over between workers: waits are rare and short.
    private static let condition = NSCondition()

    /// Hashes piece `index` once every earlier piece is hashed; `last` finalizes.
    fileprivate func hash(piece index: Int, _ bytes: UnsafeRawBufferPointer, last: Bool) {
        Self.condition.lock()
        while piecesHashed != index { Self.condition.wait() }
        Self.condition.unlock()
        state.update(bytes)
        let result = last ? state.finalize() : nil
        Self.condition.lock()
        piecesHashed += 1
        if let result { digest = result }
        Self.condition.broadcast()
        Self.condition.unlock()
    }

    /// The digest, once the piece marked last is hashed.
    var result: [UInt8]? {
        Self.condition.lock()
        defer { Self.condition.unlock() }
        return digest
    }
}

/// Part of a raw chunk that is a file's content: bytes `range` of the chunk are piece `piece` of it.
struct ContentPiece {
    let hash: ContentHash
    let range: Range<Int>
    let piece: Int
    let last: Bool

    func hash(in buffer: ByteBuffer) {
        hash.hash(piece: piece, UnsafeRawBufferPointer(rebasing: buffer.storage[range]), last: last)
    }
}

/// Tracks which bytes written to the chunk stream are file content, as pieces (one per copy into a
/// chunk buffer: a write that crosses a chunk boundary makes two). Used only by the thread that
/// writes the stream. It relies on libarchive passing an entry's data straight to the write callback
/// (`archive_write_set_bytes_per_block(a, 0)`): headers are written by `archive_write_header` before
/// the content is announced, padding at the next header or at close, after it is complete; entries
/// never carry sparse maps (`archive_entry_clear`).
struct ContentTracker {
    private var current: ContentHash?
    private var remaining: UInt64 = 0

    /// The next `length` bytes written are the content of the file `hash` is for.
    mutating func expect(_ hash: ContentHash, length: UInt64) throws {
        guard remaining == 0 else {
            throw OperationError("internal error: a file's content was announced \(remaining) bytes before the previous file's ended")
        }
        current = length > 0 ? hash : nil
        remaining = length
    }

    /// `count` bytes were just copied to `start` in the chunk being filled: the piece among them
    /// that is content, if any. Content always comes first (the tar stream has no gap).
    mutating func take(_ count: Int, at start: Int) -> ContentPiece? {
        guard let hash = current, remaining > 0, count > 0 else { return nil }
        let n = Int(min(UInt64(count), remaining))
        remaining -= UInt64(n)
        let piece = ContentPiece(hash: hash, range: start..<start + n, piece: hash.piecesCut, last: remaining == 0)
        hash.piecesCut += 1
        if remaining == 0 { current = nil }
        return piece
    }

    /// The content bytes still expected (non-zero means a writer broke its promise).
    var outstanding: UInt64 { remaining }
}

/// Manifest entries in tar order, held until the content hash of each file is computed (it is,
/// once the chunk holding the file's last byte is sealed), then passed on in the same order.
/// Holds at most the entries of the chunks in flight.
final class PendingManifest {
    private var queue: [(entry: ManifestEntry, hash: ContentHash?, ended: Bool)] = []
    private var head = 0
    /// The queue index of the file whose content is being written, until `endFile`.
    private var openFile: Int?
    private let sink: (ManifestEntry) throws -> Void

    init(sink: @escaping (ManifestEntry) throws -> Void) { self.sink = sink }

    /// An entry whose content hash is already known (or that has none).
    func append(_ entry: ManifestEntry) throws {
        queue.append((entry, nil, true))
        try flush()
    }

    /// A file entry whose content follows; `hash` (nil for an empty file) will compute its content
    /// hash, and `endFile` completes what only the end of reading tells (flags, read size).
    func appendFile(_ entry: ManifestEntry, hash: ContentHash?) {
        openFile = queue.count
        queue.append((entry, hash, false))
    }

    /// The open file's content is complete: what reading it found out goes into its entry.
    func endFile(flags: ManifestEntry.Flags, readSize: UInt64?, contentHash: [UInt8]? = nil) throws {
        guard let index = openFile else { throw OperationError("internal error: a file ended that was not begun") }
        openFile = nil
        queue[index].entry.flags = flags
        queue[index].entry.readSize = readSize
        if let contentHash { queue[index].entry.contentHash = contentHash }
        queue[index].ended = true
        try flush()
    }

    /// Passes on every entry at the front whose hash is known and whose file has ended.
    func flush() throws {
        while head < queue.count {
            var (entry, hash, ended) = queue[head]
            guard ended else { break }
            if let hash {
                guard let digest = hash.result else { break }
                entry.contentHash = digest
            }
            try sink(entry)
            head += 1
        }
        if head > 4096 && head * 2 > queue.count {
            queue.removeFirst(head)
            if let index = openFile { openFile = index - head }
            head = 0
        }
    }

    var isEmpty: Bool { head == queue.count }
}
