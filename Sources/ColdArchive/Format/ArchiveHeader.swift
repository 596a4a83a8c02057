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
        case series = 0x0010
        case sequence = 0x0011
        case period = 0x0012
        case previousArchiveDigest = 0x0013
        case backupMode = 0x0014
        case baseArchiveDigest = 0x0015
        case retainUntil = 0x0016
    }

    /// `backup_mode` (FORMAT.md §5): what the archive holds relative to its base.
    public enum BackupMode: UInt8, Sendable, Codable {
        case full = 1
        case incremental = 2
        case differential = 3
    }

    /// The series fields of a v2 header (FORMAT.md §5), all signed.
    public struct SeriesPosition: Sendable, Equatable {
        public var series: String
        /// 1 for the first archive of the series.
        public var sequence: UInt64
        /// `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or `YYYY-Www`.
        public var period: String
        /// The `archive_digest` of the archive with `sequence - 1`; nil exactly when `sequence` is 1.
        public var previousArchiveDigest: [UInt8]?

        public init(series: String, sequence: UInt64, period: String, previousArchiveDigest: [UInt8]?) {
            self.series = series
            self.sequence = sequence
            self.period = period
            self.previousArchiveDigest = previousArchiveDigest
        }
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
    /// 1 or 2: the prelude's (and footer's) `format_version`.
    public var formatVersion: UInt16 = FormatV1.version2
    /// v2: the series this archive belongs to, and where in it.
    public var position: SeriesPosition?
    /// v2: nil means full.
    public var backupMode: BackupMode?
    /// v2: the base archive's `archive_digest` (incremental and differential archives).
    public var baseArchiveDigest: [UInt8]?
    /// v2: seconds since the epoch before which the archive must not be deleted.
    public var retainUntil: Int64?
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
        if let position {
            all.append((Tag.series.rawValue, Array(position.series.utf8)))
            w = ByteWriter(); w.u64(position.sequence); all.append((Tag.sequence.rawValue, w.bytes))
            all.append((Tag.period.rawValue, Array(position.period.utf8)))
            if let previous = position.previousArchiveDigest { all.append((Tag.previousArchiveDigest.rawValue, previous)) }
        }
        if let backupMode { all.append((Tag.backupMode.rawValue, [backupMode.rawValue])) }
        if let baseArchiveDigest { all.append((Tag.baseArchiveDigest.rawValue, baseArchiveDigest)) }
        if let retainUntil { w = ByteWriter(); w.i64(retainUntil); all.append((Tag.retainUntil.rawValue, w.bytes)) }
        all.append(contentsOf: unknownOptionalFields.map { ($0.tag, $0.value) })
        for (tag, value) in all.sorted(by: { $0.0 < $1.0 }) { field(tag, value) }

        var out = ByteWriter(capacity: FormatV1.preludeSize + fields.bytes.count)
        out.raw(FormatV1.magic)
        out.u16(formatVersion)
        out.u16(0)
        out.u32(UInt32(fields.bytes.count))
        out.raw(fields.bytes)
        return out.bytes
    }

    /// `header_digest`: BLAKE2b-256 of the prelude and the header fields.
    func digest() -> [UInt8] { Sodium.blake2b(encoded()) }

    /// Checks the 16-byte prelude and returns `header_length`.
    static func parsePrelude(_ prelude: [UInt8]) throws -> UInt32 {
        try parsePreludeAndVersion(prelude).length
    }

    /// Checks the 16-byte prelude and returns `format_version` and `header_length`.
    static func parsePreludeAndVersion(_ prelude: [UInt8]) throws -> (version: UInt16, length: UInt32) {
        guard prelude.count == FormatV1.preludeSize else { throw IntegrityError.truncated(what: "prelude") }
        guard Array(prelude[0..<8]) == FormatV1.magic else {
            throw IntegrityError.notAnArchive(reason: "the file does not start with the coldarchive magic bytes")
        }
        var r = ByteReader(Array(prelude[8...]), what: "prelude")
        let version = try r.u16()
        guard FormatV1.readableVersions.contains(version) else { throw IntegrityError.unsupportedVersion(Int(version)) }
        let flags = try r.u16()
        guard flags == 0 else { throw IntegrityError.malformed(what: "prelude (reserved flags are set)") }
        let length = try r.u32()
        guard length >= 1, length <= FormatV1.maxHeaderLength else {
            throw IntegrityError.outOfRange(field: "header_length", value: UInt64(length), min: 1, max: UInt64(FormatV1.maxHeaderLength))
        }
        return (version, length)
    }

    /// Decodes the header fields that follow a prelude. Refuses unknown critical fields, unsorted or
    /// repeated tags, wrong fixed lengths, missing required fields and invalid UTF-8.
    static func decode(prelude: [UInt8], fields: [UInt8]) throws -> ArchiveHeader {
        let (version, length) = try parsePreludeAndVersion(prelude)
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
            if let known = Tag(rawValue: tag), version >= FormatV1.version2 || !Self.v2Only.contains(known) {
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
        header.formatVersion = version
        if version >= FormatV1.version2 { try header.decodeV2Fields(values) }
        guard header.encoded() == prelude + fields else {
            throw IntegrityError.malformed(what: "header (non-canonical encoding)")
        }
        return header
    }

    /// Fields that exist only from version 2 on: in a v1 header they are unknown critical fields.
    static let v2Only: Set<Tag> = [.series, .sequence, .period, .previousArchiveDigest, .backupMode, .baseArchiveDigest, .retainUntil]

    /// The series and retention fields and the rules that tie them together (FORMAT.md §5).
    private mutating func decodeV2Fields(_ values: [UInt16: [UInt8]]) throws {
        func bad(_ what: String) -> IntegrityError { .malformed(what: "header (\(what))") }
        guard values[Tag.sources.rawValue] == nil else { throw bad("a version 2 header holds the plaintext sources field") }
        let series = values[Tag.series.rawValue], sequence = values[Tag.sequence.rawValue], period = values[Tag.period.rawValue]
        let previous = values[Tag.previousArchiveDigest.rawValue]
        if series == nil && sequence == nil && period == nil {
            guard previous == nil else { throw bad("a previous-archive digest without a series") }
        } else {
            guard let series, let sequence, let period else { throw bad("series, sequence and period must appear together") }
            let name = try Self.utf8(series, field: "series", limit: 64)
            guard Self.isValidSeriesName(name) else { throw bad("series name '\(DisplayName.escaped(name))'") }
            guard sequence.count == 8 else { throw bad("sequence length") }
            var r = ByteReader(sequence, what: "sequence")
            let number = try r.u64()
            guard number >= 1 else { throw bad("sequence 0") }
            let periodText = try Self.utf8(period, field: "period", limit: 16)
            guard Self.isValidPeriod(periodText) else { throw bad("period '\(DisplayName.escaped(periodText))'") }
            if let previous { guard previous.count == 32 else { throw bad("previous_archive_digest length") } }
            guard (previous != nil) == (number >= 2) else {
                throw bad("sequence \(number) \(number >= 2 ? "without" : "with") a previous-archive digest")
            }
            position = SeriesPosition(series: name, sequence: number, period: periodText, previousArchiveDigest: previous)
        }
        if let mode = values[Tag.backupMode.rawValue] {
            guard mode.count == 1, let m = BackupMode(rawValue: mode[0]) else { throw bad("backup_mode") }
            backupMode = m
        }
        if let base = values[Tag.baseArchiveDigest.rawValue] {
            guard base.count == 32 else { throw bad("base_archive_digest length") }
            baseArchiveDigest = base
        }
        let needsBase = backupMode == .incremental || backupMode == .differential
        guard needsBase == (baseArchiveDigest != nil), !needsBase || position != nil else {
            throw bad("an incremental or differential archive needs a series and a base-archive digest, and only it has a base")
        }
        if let retain = values[Tag.retainUntil.rawValue] {
            guard retain.count == 8 else { throw bad("retain_until length") }
            var r = ByteReader(retain, what: "retain_until")
            let value = try r.i64()
            guard value >= created else { throw bad("retain_until before created") }
            retainUntil = value
        }
    }

    /// 1–64 bytes of `A–Z a–z 0–9 . _ -`, the first a letter or digit.
    public static func isValidSeriesName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count) else { return false }
        func alnum(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) }
        return alnum(bytes[0]) && bytes.allSatisfy { alnum($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }

    /// `YYYY`, `YYYY-MM`, `YYYY-MM-DD` (a real date) or `YYYY-Www` (week 01–53).
    public static func isValidPeriod(_ text: String) -> Bool {
        let b = Array(text.utf8)
        func digits(_ r: Range<Int>) -> Int? {
            guard r.upperBound <= b.count, b[r].allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
            return b[r].reduce(0) { $0 * 10 + Int($1 - 0x30) }
        }
        guard let year = digits(0..<4), year >= 1 else { return false }
        if b.count == 4 { return true }
        guard b.count >= 7, b[4] == 0x2D else { return false }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        if b[5] == 0x57 {
            guard b.count == 8, let week = digits(6..<8) else { return false }
            // ISO 8601: a year has 53 weeks when 1 January is a Thursday, or a Wednesday in a leap year.
            let y = year - 1
            let january1 = (1 + 5 * (y % 4) + 4 * (y % 100) + 6 * (y % 400)) % 7  // 0 Sunday … 6 Saturday
            let weeks = january1 == 4 || (leap && january1 == 3) ? 53 : 52
            return (1...weeks).contains(week)
        }
        guard let month = digits(5..<7), (1...12).contains(month) else { return false }
        if b.count == 7 { return true }
        guard b.count == 10, b[7] == 0x2D, let day = digits(8..<10) else { return false }
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return (1...days).contains(day)
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
