/// The signed, plaintext, self-describing header: the prelude and its tag-length-value fields.
/// Its digest (`header_digest`) is the archive's identity: every chunk's associated data and the
/// signed trailer bind it, and re-wrapping the file key never changes it.
public struct ArchiveHeader: Sendable, Equatable {
    /// Field tags. Tags with bit 15 set are optional: a reader skips those it does not know.
    /// Tags without it are critical: a reader refuses an archive with one it does not know.
    enum Tag: UInt16 {
        case suite = 0x0001
        case archiveID = 0x0002
        case created = 0x0003
        case chunkRawSize = 0x0004
        case noncePrefix = 0x0005
        case payloadSalt = 0x0006
        case signerPublicKey = 0x0007
        case label = 0x8001
        case sources = 0x8002
        case creator = 0x8003
    }
    static let optionalBit: UInt16 = 0x8000

    public var suite: UInt16
    public var archiveID: [UInt8]
    /// Seconds since 1970-01-01T00:00:00Z.
    public var created: Int64
    public var chunkRawSize: UInt32
    public var noncePrefix: [UInt8]
    public var payloadSalt: [UInt8]
    public var signerPublicKey: [UInt8]
    public var label: String?
    public var sources: [String]
    public var creator: String?
    /// Optional fields this version does not know, kept so a rewrite preserves them.
    var unknownOptionalFields: [(tag: UInt16, value: [UInt8])] = []

    public static func == (a: ArchiveHeader, b: ArchiveHeader) -> Bool {
        a.encoded() == b.encoded()
    }

    init(archiveID: [UInt8], created: Int64, chunkRawSize: UInt32, noncePrefix: [UInt8], payloadSalt: [UInt8],
         signerPublicKey: [UInt8], label: String?, sources: [String], creator: String?) {
        self.suite = FormatV1.suite
        self.archiveID = archiveID
        self.created = created
        self.chunkRawSize = chunkRawSize
        self.noncePrefix = noncePrefix
        self.payloadSalt = payloadSalt
        self.signerPublicKey = signerPublicKey
        self.label = label
        self.sources = sources
        self.creator = creator
    }

    /// The prelude followed by the header fields, exactly as stored.
    func encoded() -> [UInt8] {
        var fields = ByteWriter(capacity: 256)
        func field(_ tag: UInt16, _ value: [UInt8]) {
            fields.u16(tag)
            fields.u32(UInt32(value.count))
            fields.raw(value)
        }
        var all: [(UInt16, [UInt8])] = []
        var w = ByteWriter(); w.u16(suite); all.append((Tag.suite.rawValue, w.bytes))
        all.append((Tag.archiveID.rawValue, archiveID))
        w = ByteWriter(); w.i64(created); all.append((Tag.created.rawValue, w.bytes))
        w = ByteWriter(); w.u32(chunkRawSize); all.append((Tag.chunkRawSize.rawValue, w.bytes))
        all.append((Tag.noncePrefix.rawValue, noncePrefix))
        all.append((Tag.payloadSalt.rawValue, payloadSalt))
        all.append((Tag.signerPublicKey.rawValue, signerPublicKey))
        if let label { all.append((Tag.label.rawValue, Array(label.utf8))) }
        if !sources.isEmpty {
            w = ByteWriter()
            w.u16(UInt16(sources.count))
            for s in sources { w.u16(UInt16(s.utf8.count)); w.raw(Array(s.utf8)) }
            all.append((Tag.sources.rawValue, w.bytes))
        }
        if let creator { all.append((Tag.creator.rawValue, Array(creator.utf8))) }
        all.append(contentsOf: unknownOptionalFields.map { ($0.tag, $0.value) })
        for (tag, value) in all.sorted(by: { $0.0 < $1.0 }) { field(tag, value) }

        var out = ByteWriter(capacity: FormatV1.preludeSize + fields.bytes.count)
        out.raw(FormatV1.magic)
        out.u16(FormatV1.formatVersion)
        out.u16(0)
        out.u32(UInt32(fields.bytes.count))
        out.raw(fields.bytes)
        return out.bytes
    }

    /// `header_digest`: BLAKE2b-256 of the prelude and the header fields.
    func digest() -> [UInt8] { Sodium.blake2b(encoded()) }

    /// Checks the 16-byte prelude and returns `header_length`.
    static func parsePrelude(_ prelude: [UInt8]) throws -> UInt32 {
        guard prelude.count == FormatV1.preludeSize else { throw IntegrityError.truncated(what: "prelude") }
        guard Array(prelude[0..<8]) == FormatV1.magic else {
            throw IntegrityError.notAnArchive(reason: "the file does not start with the coldarchive magic bytes")
        }
        var r = ByteReader(Array(prelude[8...]), what: "prelude")
        let version = try r.u16()
        guard version == FormatV1.formatVersion else { throw IntegrityError.unsupportedVersion(Int(version)) }
        let flags = try r.u16()
        guard flags == 0 else { throw IntegrityError.malformed(what: "prelude (reserved flags are set)") }
        let length = try r.u32()
        guard length >= 1, length <= FormatV1.maxHeaderLength else {
            throw IntegrityError.outOfRange(field: "header_length", value: UInt64(length), min: 1, max: UInt64(FormatV1.maxHeaderLength))
        }
        return length
    }

    /// Decodes the header fields that follow a prelude. Refuses unknown critical fields, unsorted or
    /// repeated tags, wrong fixed lengths, missing required fields and invalid UTF-8.
    static func decode(prelude: [UInt8], fields: [UInt8]) throws -> ArchiveHeader {
        let length = try parsePrelude(prelude)
        guard fields.count == Int(length) else { throw IntegrityError.truncated(what: "header") }
        var r = ByteReader(fields, what: "header")
        var values: [UInt16: [UInt8]] = [:]
        var unknown: [(UInt16, [UInt8])] = []
        var lastTag: UInt16? = nil
        while !r.isAtEnd {
            let tag = try r.u16()
            let len = try r.u32()
            guard Int(len) <= r.remaining else { throw IntegrityError.truncated(what: "header field 0x\(String(tag, radix: 16))") }
            let value = try r.raw(Int(len))
            if let lastTag, tag <= lastTag {
                throw IntegrityError.malformed(what: "header (fields out of order or repeated)")
            }
            lastTag = tag
            if Tag(rawValue: tag) != nil {
                values[tag] = value
            } else if tag & optionalBit != 0 {
                unknown.append((tag, value))
            } else {
                throw IntegrityError.unknownCriticalField(tag: Int(tag))
            }
        }
        func required(_ tag: Tag, size: Int) throws -> [UInt8] {
            guard let v = values[tag.rawValue] else { throw IntegrityError.malformed(what: "header (required field \(tag) is missing)") }
            guard v.count == size else { throw IntegrityError.malformed(what: "header field \(tag) (length \(v.count), expected \(size))") }
            return v
        }
        var sr = ByteReader(try required(.suite, size: 2), what: "suite")
        let suite = try sr.u16()
        guard suite == FormatV1.suite else { throw IntegrityError.unsupportedSuite(Int(suite)) }
        var cr = ByteReader(try required(.created, size: 8), what: "created")
        let created = try cr.i64()
        var kr = ByteReader(try required(.chunkRawSize, size: 4), what: "chunk_raw_size")
        let chunkRawSize = try kr.u32()
        guard chunkRawSize >= FormatV1.minChunkRawSize, chunkRawSize <= FormatV1.maxChunkRawSize else {
            throw IntegrityError.outOfRange(field: "chunk_raw_size", value: UInt64(chunkRawSize), min: UInt64(FormatV1.minChunkRawSize), max: UInt64(FormatV1.maxChunkRawSize))
        }
        var header = ArchiveHeader(
            archiveID: try required(.archiveID, size: 16), created: created, chunkRawSize: chunkRawSize,
            noncePrefix: try required(.noncePrefix, size: 16), payloadSalt: try required(.payloadSalt, size: 32),
            signerPublicKey: try required(.signerPublicKey, size: 32),
            label: try values[Tag.label.rawValue].map { try utf8($0, field: "label", limit: FormatV1.maxLabelBytes) },
            sources: try values[Tag.sources.rawValue].map(decodeSources) ?? [],
            creator: try values[Tag.creator.rawValue].map { try utf8($0, field: "creator", limit: FormatV1.maxLabelBytes) })
        header.unknownOptionalFields = unknown.map { (tag: $0.0, value: $0.1) }
        guard header.encoded() == prelude + fields else {
            throw IntegrityError.malformed(what: "header (non-canonical encoding)")
        }
        return header
    }

    private static func decodeSources(_ bytes: [UInt8]) throws -> [String] {
        var r = ByteReader(bytes, what: "sources field")
        let count = Int(try r.u16())
        guard count <= FormatV1.maxSources else {
            throw IntegrityError.outOfRange(field: "sources count", value: UInt64(count), min: 0, max: UInt64(FormatV1.maxSources))
        }
        var out: [String] = []
        for _ in 0..<count {
            let len = Int(try r.u16())
            out.append(try utf8(try r.raw(len), field: "source name", limit: FormatV1.maxPathBytes))
        }
        try r.expectEnd()
        return out
    }

    static func utf8(_ bytes: [UInt8], field: String, limit: Int) throws -> String {
        guard bytes.count <= limit else {
            throw IntegrityError.outOfRange(field: "length of \(field)", value: UInt64(bytes.count), min: 0, max: UInt64(limit))
        }
        guard let s = String(validating: bytes, as: UTF8.self), !s.utf8.contains(0) else {
            throw IntegrityError.malformed(what: "\(field) (not valid UTF-8, or it holds a NUL byte)")
        }
        return s
    }
}
