/// One entry of the chunk table: where a chunk ends, how big it becomes, and its keyless hash.
public struct ChunkRecord: Sendable, Equatable {
    /// `sealed_len`: bytes of ciphertext (zstd frame + 16-byte tag) stored for the chunk.
    public var sealedLength: UInt32
    /// `raw_len`: bytes the chunk's zstd frame decompresses to.
    public var rawLength: UInt32
    /// `chunk_hash`: BLAKE2b-256 of the chunk's stored ciphertext.
    public var hash: [UInt8]

    func encode(into w: inout ByteWriter) {
        w.u32(sealedLength)
        w.u32(rawLength)
        w.raw(hash)
    }

    static func decode(_ r: inout ByteReader) throws -> ChunkRecord {
        ChunkRecord(sealedLength: try r.u32(), rawLength: try r.u32(), hash: try r.raw(32))
    }
}

/// The fixed part of the trailer: the totals a reader checks the payload against.
public struct TrailerTotals: Sendable, Equatable {
    public var headerDigest: [UInt8]
    public var chunkCount: UInt64
    public var manifestFirstChunk: UInt64
    public var tarBytes: UInt64
    public var manifestBytes: UInt64
    public var entryCount: UInt64
    public var contentBytes: UInt64
    public var payloadBytes: UInt64

    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: FormatV1.trailerFixedSize)
        w.raw(FormatV1.trailerMagic)
        w.raw(headerDigest)
        w.u64(chunkCount)
        w.u64(manifestFirstChunk)
        w.u64(tarBytes)
        w.u64(manifestBytes)
        w.u64(entryCount)
        w.u64(contentBytes)
        w.u64(payloadBytes)
        return w.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> TrailerTotals {
        var r = ByteReader(bytes, what: "trailer")
        guard try r.raw(8) == FormatV1.trailerMagic else { throw IntegrityError.malformed(what: "trailer (magic)") }
        let t = TrailerTotals(headerDigest: try r.raw(32), chunkCount: try r.u64(), manifestFirstChunk: try r.u64(),
                              tarBytes: try r.u64(), manifestBytes: try r.u64(), entryCount: try r.u64(),
                              contentBytes: try r.u64(), payloadBytes: try r.u64())
        try r.expectEnd()
        guard t.chunkCount >= 2, t.chunkCount <= FormatV1.maxChunkCount else {
            throw IntegrityError.outOfRange(field: "chunk_count", value: t.chunkCount, min: 2, max: FormatV1.maxChunkCount)
        }
        guard t.manifestFirstChunk >= 1, t.manifestFirstChunk < t.chunkCount else {
            throw IntegrityError.inconsistent(what: "manifest_first_chunk \(t.manifestFirstChunk) is outside 1..<\(t.chunkCount)")
        }
        return t
    }

    /// `trailer_length` for this chunk count.
    var trailerLength: UInt64 {
        UInt64(FormatV1.trailerFixedSize) + chunkCount * UInt64(FormatV1.chunkRecordSize) + UInt64(FormatV1.signatureSize)
    }
}

/// The fixed-size footer at the very end of the file: where the payload and the trailer are, so a
/// reader (or a ranged GET) can start from the end.
public struct Footer: Sendable, Equatable {
    public var formatVersion: UInt16 = FormatV1.version2
    public var payloadOffset: UInt64
    public var trailerOffset: UInt64
    public var trailerLength: UInt64

    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: FormatV1.footerSize)
        w.raw(FormatV1.footerMagic)
        w.u16(formatVersion)
        w.raw([0, 0, 0, 0, 0, 0])
        w.u64(payloadOffset)
        w.u64(trailerOffset)
        w.u64(trailerLength)
        w.raw(Sodium.blake2b(w.bytes, outputBytes: 16))
        return w.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> Footer {
        guard bytes.count == FormatV1.footerSize else { throw IntegrityError.truncated(what: "footer") }
        guard Array(bytes[0..<8]) == FormatV1.footerMagic else {
            throw IntegrityError.truncatedFile(reason: "there is no footer at the end of the file (it was cut short, or bytes were appended)")
        }
        guard Sodium.blake2b(Array(bytes[0..<40]), outputBytes: 16) == Array(bytes[40..<56]) else {
            throw IntegrityError.checksumMismatch(what: "footer")
        }
        var r = ByteReader(Array(bytes[8..<40]), what: "footer")
        let version = try r.u16()
        guard FormatV1.readableVersions.contains(version) else { throw IntegrityError.unsupportedVersion(Int(version)) }
        guard try r.raw(6) == [0, 0, 0, 0, 0, 0] else { throw IntegrityError.malformed(what: "footer (reserved bytes)") }
        return Footer(formatVersion: version, payloadOffset: try r.u64(), trailerOffset: try r.u64(), trailerLength: try r.u64())
    }
}
