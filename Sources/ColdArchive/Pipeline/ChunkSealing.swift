/// A run of plaintext (tar or manifest bytes) on its way to become one chunk.
struct RawChunk {
    var index: UInt64
    var section: FormatV1.Section
    var last: Bool
    var buffer: ByteBuffer
    /// The files' content in this chunk, hashed by the worker before it compresses.
    var pieces: [ContentPiece] = []
}

/// A chunk as stored: its ciphertext and the record the trailer keeps for it.
struct SealedChunk {
    var index: UInt64
    var section: FormatV1.Section
    var sealed: ByteBuffer
    var record: ChunkRecord
}

/// Cuts a byte stream into chunks of `chunk_raw_size` bytes and sends them through the pipeline that
/// hashes the files' content in them, compresses, seals and hashes them on the worker threads;
/// sealed chunks come back in order to `consume`. The newest chunk is held back until the next one starts, so that the very last chunk
/// of the archive can be sealed with the last-chunk flag.
final class ChunkSealingStream {
    private let pipeline: OrderedPipeline<RawChunk, SealedChunk>
    private let rawPool: BufferPool
    private let sealedPool: BufferPool
    private let consume: (SealedChunk) throws -> Void
    private var current: ByteBuffer
    private var currentPieces: [ContentPiece] = []
    private var content = ContentTracker()
    private var pending: RawChunk?
    private(set) var chunksCut: UInt64 = 0
    private var section: FormatV1.Section = .data

    init(cipher: ChunkCipher, chunkRawSize: UInt32, level: Int32, workers: Int,
         consume: @escaping (SealedChunk) throws -> Void) {
        let rawSize = Int(chunkRawSize)
        let maxInFlight = workers * 2 + 1
        let rawPool = BufferPool(capacity: rawSize, keep: maxInFlight + 2)
        let sealedPool = BufferPool(capacity: ZstdFrameEncoder.bound(rawSize) + ChunkCipher.tagSize, keep: maxInFlight + 1)
        self.rawPool = rawPool
        self.sealedPool = sealedPool
        // Hand each sealed buffer back once the consumer has written it.
        self.consume = { chunk in
            try consume(chunk)
            sealedPool.give(chunk.sealed)
        }
        current = rawPool.take()
        pipeline = OrderedPipeline(workers: workers, maxInFlight: maxInFlight) {
            let encoder = try ZstdFrameEncoder(level: level)
            let frame = ByteBuffer(capacity: ZstdFrameEncoder.bound(rawSize))
            return { raw in
                for piece in raw.pieces { piece.hash(in: raw.buffer) }
                frame.count = try encoder.compress(raw.buffer.bytes, into: frame.storage)
                let rawLength = raw.buffer.count
                rawPool.give(raw.buffer)
                let sealed = sealedPool.take()
                sealed.count = cipher.seal(frame.bytes, index: raw.index, last: raw.last, section: raw.section, into: sealed.storage)
                let hash = Sodium.Blake2bState(outputBytes: 32)
                hash.update(sealed.bytes)
                let record = ChunkRecord(sealedLength: UInt32(sealed.count), rawLength: UInt32(rawLength), hash: hash.finalize())
                return SealedChunk(index: raw.index, section: raw.section, sealed: sealed, record: record)
            }
        }
    }

    deinit { pipeline.shutdown() }

    /// The most chunks in the pipeline at once, plus the one held back and the one being filled.
    var peakChunksInFlight: Int { pipeline.peakInFlight + 2 }

    /// The next `length` bytes written are the content of the file `hash` is for; the workers hash them.
    func expectContent(_ hash: ContentHash, length: UInt64) throws {
        try content.expect(hash, length: length)
    }

    /// Appends bytes to the current section.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes
        while !rest.isEmpty {
            let start = current.count
            let n = current.append(rest)
            if let piece = content.take(n, at: start) { currentPieces.append(piece) }
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
            if current.isFull { try cut() }
        }
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Ends the data section and waits until every data chunk is sealed and consumed (so every file's
    /// content hash is known); what follows is the manifest. Returns `manifest_first_chunk`.
    func startManifestSection() throws -> UInt64 {
        guard content.outstanding == 0 else {
            throw OperationError("internal error: the tar stream ended \(content.outstanding) bytes before a file's content")
        }
        if current.count > 0 { try cut() }
        // The manifest follows, so the data section's last chunk is not the archive's last.
        if let previous = pending {
            pending = nil
            try pipeline.submit(previous, consume: consume)
        }
        try pipeline.drain(consume: consume)
        section = .manifest
        return chunksCut
    }

    /// Seals the last chunk with the last-chunk flag and waits for every chunk to be consumed.
    func finish() throws {
        if current.count > 0 { try cut() }
        guard var last = pending else { throw OperationError("internal error: an archive without chunks") }
        last.last = true
        pending = nil
        try pipeline.submit(last, consume: consume)
        try pipeline.finish(consume: consume)
    }

    private func cut() throws {
        let chunk = RawChunk(index: chunksCut, section: section, last: false, buffer: current, pieces: currentPieces)
        currentPieces = []
        chunksCut += 1
        current = rawPool.take()
        if let previous = pending { try pipeline.submit(previous, consume: consume) }
        pending = chunk
    }
}
