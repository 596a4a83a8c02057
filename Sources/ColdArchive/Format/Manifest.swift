/// One entry of the encrypted manifest: what the tar stream holds at the same position, with the
/// BLAKE2b-256 of each regular file's content, which `verify --deep` and `restore --check-content` check.
public struct ManifestEntry: Sendable, Equatable, Codable {
    public enum Kind: UInt8, Sendable, Codable {
        case file = 1
        case directory = 2
        case symlink = 3
        case hardlink = 4
        /// v2, incremental and differential archives only: the path no longer exists (FORMAT.md §8).
        case deleted = 5

        public var name: String {
            switch self {
            case .file: "file"
            case .directory: "directory"
            case .symlink: "symlink"
            case .hardlink: "hardlink"
            case .deleted: "deleted"
            }
        }
    }

    public var kind: Kind
    /// Relative, '/'-separated, UTF-8, no trailing slash.
    public var path: String
    /// Permission bits (0o777 at most).
    public var mode: UInt16
    public var mtime: Int64
    public var mtimeNanoseconds: UInt32
    /// Content bytes of a regular file; 0 for every other kind.
    public var size: UInt64
    /// BLAKE2b-256 of a regular file's content; 32 zero bytes for every other kind.
    public var contentHash: [UInt8]
    /// A symlink's target, or the archive path a hardlink points at; empty otherwise.
    public var linkTarget: String

    // Format version 2 (FORMAT.md §8); v1 entries leave these at their defaults.

    public var flags: Flags = []
    /// Numeric owner and group on the archiving host.
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    /// Owner and group names on the archiving host (record 0x01, 0x02); nil when unknown there.
    public var userName: String?
    public var groupName: String?
    /// Extended attributes other than POSIX ACLs, by name in bytewise order (record 0x03).
    public var xattrs: [ExtendedAttribute] = []
    /// POSIX.1e access and default ACLs (records 0x04, 0x05); empty when the mode says it all.
    public var accessACL: [ACLEntry] = []
    public var defaultACL: [ACLEntry] = []
    /// Bytes read before a file that shrank ended (record 0x06); nil unless `flags` has `.shrank`.
    public var readSize: UInt64?
    /// Where the entry's first header block is in the tar stream.
    public var tarOffset: UInt64 = 0
    /// A sparse file's data regions (record 0x07); every byte outside them is a hole. nil for a file
    /// stored whole.
    public var sparseMap: [SparseRegion]?

    public struct Flags: OptionSet, Sendable, Codable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// Size, mtime or ctime differed after reading, or the file had grown: content may be mixed.
        public static let changedWhileRead = Flags(rawValue: 1)
        /// The file ended early; zeros were stored from `readSize` to `size`.
        public static let shrank = Flags(rawValue: 2)
        static let known: Flags = [.changedWhileRead, .shrank]
    }

    public init(kind: Kind, path: String, mode: UInt16, mtime: Int64, mtimeNanoseconds: UInt32, size: UInt64,
                contentHash: [UInt8], linkTarget: String) {
        self.kind = kind
        self.path = path
        self.mode = mode
        self.mtime = mtime
        self.mtimeNanoseconds = mtimeNanoseconds
        self.size = size
        self.contentHash = contentHash
        self.linkTarget = linkTarget
    }

    /// `contentHash` in lower-case hexadecimal, as `b2sum -l 256` prints it.
    public var contentHashHex: String { contentHash.hex }

    static let fixedSize = 1 + 2 + 8 + 4 + 8 + 32 + 2 + 2
    static let maxEncodedSize = fixedSize + 2 * FormatV1.maxPathBytes
    static let zeroHash = [UInt8](repeating: 0, count: 32)

    func encode(into w: inout ByteWriter, version: UInt16) {
        if version >= FormatV1.version2 { return encodeV2(into: &w) }
        let p = NameCodec.bytes(path), l = NameCodec.bytes(linkTarget)
        w.u32(UInt32(Self.fixedSize + p.count + l.count))
        w.u8(kind.rawValue)
        w.u16(mode)
        w.i64(mtime)
        w.u32(mtimeNanoseconds)
        w.u64(size)
        w.raw(contentHash)
        w.u16(UInt16(p.count))
        w.raw(p)
        w.u16(UInt16(l.count))
        w.raw(l)
    }

    static func decode(_ body: [UInt8], version: UInt16, names: OwnerNameCache? = nil) throws -> ManifestEntry {
        if version >= FormatV1.version2 { return try decodeV2(body, names: names) }
        var r = ByteReader(body, what: "manifest entry")
        guard let kind = Kind(rawValue: try r.u8()), kind != .deleted else { throw IntegrityError.malformed(what: "manifest entry (unknown type)") }
        let mode = try r.u16()
        guard mode & ~0o777 == 0 else { throw IntegrityError.malformed(what: "manifest entry (mode \(String(mode, radix: 8)))") }
        let mtime = try r.i64()
        let nsec = try r.u32()
        guard nsec < 1_000_000_000 else { throw IntegrityError.malformed(what: "manifest entry (nanoseconds)") }
        let size = try r.u64()
        let hash = try r.raw(32)
        // UTF-8 in v1; held as NameCodec strings like every name.
        let path = NameCodec.decode(Array(try ArchiveHeader.utf8(try r.raw(Int(try r.u16())), field: "manifest path", limit: FormatV1.maxPathBytes).utf8))
        let link = NameCodec.decode(Array(try ArchiveHeader.utf8(try r.raw(Int(try r.u16())), field: "manifest link target", limit: FormatV1.maxPathBytes).utf8))
        try r.expectEnd()
        guard kind == .file || (size == 0 && hash == zeroHash) else {
            throw IntegrityError.malformed(what: "manifest entry '\(path)' (a \(kind.name) with a size or content hash)")
        }
        return ManifestEntry(kind: kind, path: path, mode: mode, mtime: mtime, mtimeNanoseconds: nsec, size: size,
                             contentHash: hash, linkTarget: link)
    }
}

/// Turns the manifest section's plaintext, fed in pieces of any size, back into entries, with every
/// length capped before it is trusted.
struct ManifestDecoder {
    private var buffer: [UInt8] = []
    private var start = 0
    private var sawMagic = false
    private(set) var decodedCount: UInt64 = 0
    let version: UInt16
    /// v2: the source description's JSON text, once read.
    private(set) var description: [UInt8]?
    private let names = OwnerNameCache()

    init(version: UInt16 = FormatV1.formatVersion) { self.version = version }

    mutating func feed(_ bytes: [UInt8]) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Consumes the manifest's magic once enough bytes are there; false while more are needed.
    private mutating func consumeMagic() throws -> Bool {
        if sawMagic { return true }
        let v2 = version >= FormatV1.version2
        guard buffer.count - start >= (v2 ? 12 : 8) else { return false }
        guard Array(buffer[start..<start + 8]) == (v2 ? FormatV1.manifestMagicV2 : FormatV1.manifestMagic) else {
            throw IntegrityError.malformed(what: "manifest (magic)")
        }
        if v2 {
            var r = ByteReader(Array(buffer[start + 8..<start + 12]), what: "manifest")
            let length = Int(try r.u32())
            guard length <= FormatV1.maxDescriptionBytes else {
                throw IntegrityError.outOfRange(field: "description_length", value: UInt64(length), min: 0, max: UInt64(FormatV1.maxDescriptionBytes))
            }
            guard buffer.count - start >= 12 + length else { return false }
            description = Array(buffer[start + 12..<start + 12 + length])
            start += 12 + length
        } else {
            start += 8
        }
        sawMagic = true
        return true
    }

    /// The next complete entry, or nil if more bytes are needed.
    mutating func next() throws -> ManifestEntry? {
        guard let body = try nextBody() else { return nil }
        return try decode(body)
    }

    /// Decodes a body `nextBody` gave, owner names shared through one cache per manifest.
    func decode(_ body: [UInt8]) throws -> ManifestEntry {
        try ManifestEntry.decode(body, version: version, names: names)
    }

    /// The next complete entry's encoded body (after its length), undecoded, or nil if more bytes are
    /// needed: for readers that look at most entries only in part (`EntryHead`).
    mutating func nextBody() throws -> [UInt8]? {
        guard try consumeMagic() else { return nil }
        guard buffer.count - start >= 4 else { return nil }
        let length = Int(buffer[start]) | Int(buffer[start + 1]) << 8 | Int(buffer[start + 2]) << 16 | Int(buffer[start + 3]) << 24
        let (minimum, maximum) = version >= FormatV1.version2 ? (ManifestEntry.fixedSizeV2 + 1, ManifestEntry.maxEncodedSizeV2)
                                                               : (ManifestEntry.fixedSize, ManifestEntry.maxEncodedSize)
        guard length >= minimum, length <= maximum else {
            throw IntegrityError.outOfRange(field: "manifest entry_length", value: UInt64(length), min: UInt64(minimum), max: UInt64(maximum))
        }
        guard buffer.count - start >= 4 + length else { return nil }
        let body = Array(buffer[start + 4..<start + 4 + length])
        start += 4 + length
        decodedCount += 1
        return body
    }

    /// Throws unless the manifest ended exactly after its last entry (or its magic, when it has none).
    mutating func expectEnd() throws {
        guard try consumeMagic(), start == buffer.count else {
            throw IntegrityError.malformed(what: "manifest (bytes after the last entry, or no entries)")
        }
    }
}
