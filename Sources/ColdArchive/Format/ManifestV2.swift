/// One extended attribute of an entry (manifest record 0x03): its name and value as bytes.
public struct ExtendedAttribute: Sendable, Equatable, Codable, Hashable {
    public var name: [UInt8]
    public var value: [UInt8]

    public init(name: [UInt8], value: [UInt8]) {
        self.name = name
        self.value = value
    }

    /// The name as text (extended attribute names are ASCII in practice: `user.origin`).
    public var displayName: String { String(decoding: name, as: UTF8.self) }

    static let maxNameBytes = 255

    /// FORMAT.md §8: an attribute name is printable ASCII (0x21–0x7E) without `=` or `%`.
    static func isPortableName(_ name: [UInt8]) -> Bool {
        !name.isEmpty && name.count <= maxNameBytes && name.allSatisfy { (0x21...0x7E).contains($0) && $0 != 0x3D && $0 != 0x25 }
    }

    /// The order of a manifest's xattr records (FORMAT.md §8): by name length, then name.
    static func precedes(_ a: ExtendedAttribute, _ b: ExtendedAttribute) -> Bool {
        a.name.count != b.name.count ? a.name.count < b.name.count : a.name.lexicographicallyPrecedes(b.name)
    }
    static let maxValueBytes = 65_536
}

/// One data region of a sparse file (manifest record 0x07): `length` bytes at `offset`.
public struct SparseRegion: Sendable, Equatable, Codable, Hashable {
    public var offset: UInt64
    public var length: UInt64

    public init(offset: UInt64, length: UInt64) {
        self.offset = offset
        self.length = length
    }

    var end: UInt64 { offset + length }
    static let maxRegions = 1 << 20
}

/// One entry of a POSIX.1e ACL (manifest records 0x04 and 0x05), with Linux's tag values.
public struct ACLEntry: Sendable, Equatable, Codable, Hashable {
    public enum Tag: UInt8, Sendable, Codable {
        case userObj = 1, user = 2, groupObj = 4, group = 8, mask = 16, other = 32
    }

    public var tag: Tag
    /// 4 read, 2 write, 1 execute.
    public var permissions: UInt8
    /// The uid (`user`) or gid (`group`); `ACLEntry.undefinedID` for the other tags.
    public var id: UInt32
    /// The user or group name on the archiving host (`user` and `group` only; may be empty).
    public var name: String

    public init(tag: Tag, permissions: UInt8, id: UInt32 = ACLEntry.undefinedID, name: String = "") {
        self.tag = tag
        self.permissions = permissions
        self.id = id
        self.name = name
    }

    public static let undefinedID: UInt32 = 0xFFFF_FFFF
    static let maxEntries = 1024

    /// The order FORMAT.md §8 requires (and Linux's kernel too): by tag, then id.
    static func precedes(_ a: ACLEntry, _ b: ACLEntry) -> Bool {
        a.tag.rawValue != b.tag.rawValue ? a.tag.rawValue < b.tag.rawValue : a.id < b.id
    }

    var isNamed: Bool { tag == .user || tag == .group }

    /// `user:NAME:rwx` style permissions, as getfacl prints them.
    public var permissionText: String {
        (permissions & 4 != 0 ? "r" : "-") + (permissions & 2 != 0 ? "w" : "-") + (permissions & 1 != 0 ? "x" : "-")
    }
}

extension ManifestEntry {
    /// The v2 fixed part after `entry_length` (FORMAT.md §8).
    static let fixedSizeV2 = 1 + 1 + 2 + 4 + 4 + 8 + 4 + 8 + 32 + 8 + 2 + 2 + 2
    static let maxEncodedSizeV2 = 1 << 20

    enum RecordTag: UInt8 {
        case userName = 0x01, groupName = 0x02, xattr = 0x03, accessACL = 0x04, defaultACL = 0x05, readSize = 0x06, sparseMap = 0x07
    }
    static let optionalRecordBit: UInt8 = 0x80

    /// The extension records, in the canonical order: by tag, then value bytes.
    private func records() -> [(UInt8, [UInt8])] {
        var out: [(UInt8, [UInt8])] = []
        if let userName { out.append((RecordTag.userName.rawValue, Array(userName.utf8))) }
        if let groupName { out.append((RecordTag.groupName.rawValue, Array(groupName.utf8))) }
        let xattrRecords = xattrs.map { [UInt8($0.name.count)] + $0.name + $0.value }.sorted { $0.lexicographicallyPrecedes($1) }
        for x in xattrRecords { out.append((RecordTag.xattr.rawValue, x)) }
        if !accessACL.isEmpty { out.append((RecordTag.accessACL.rawValue, Self.encodeACL(accessACL))) }
        if !defaultACL.isEmpty { out.append((RecordTag.defaultACL.rawValue, Self.encodeACL(defaultACL))) }
        if let readSize {
            var w = ByteWriter(); w.u64(readSize)
            out.append((RecordTag.readSize.rawValue, w.bytes))
        }
        if let sparseMap {
            var w = ByteWriter(capacity: 4 + 16 * sparseMap.count)
            w.u32(UInt32(sparseMap.count))
            for r in sparseMap { w.u64(r.offset); w.u64(r.length) }
            out.append((RecordTag.sparseMap.rawValue, w.bytes))
        }
        return out
    }

    private static func encodeACL(_ acl: [ACLEntry]) -> [UInt8] {
        var w = ByteWriter()
        w.u16(UInt16(acl.count))
        for e in acl {
            w.u8(e.tag.rawValue); w.u8(e.permissions); w.u32(e.id)
            let name = Array(e.name.utf8)
            w.u8(UInt8(name.count)); w.raw(name)
        }
        return w.bytes
    }

    func encodeV2(into w: inout ByteWriter) {
        // The common entry has at most its owner names: written straight into `w` without building
        // record arrays (this runs once per entry on create's tar thread).
        let simple = xattrs.isEmpty && accessACL.isEmpty && defaultACL.isEmpty && readSize == nil && sparseMap == nil
        let recs = simple ? [] : records()
        let user = userName?.utf8.count, group = groupName?.utf8.count
        let recordBytes = simple ? (user.map { 5 + $0 } ?? 0) + (group.map { 5 + $0 } ?? 0) : recs.reduce(0) { $0 + 5 + $1.1.count }
        let recordCount = simple ? (user == nil ? 0 : 1) + (group == nil ? 0 : 1) : recs.count
        // Names as their bytes (NameCodec): the same as their UTF-8 unless they hold escaped bytes.
        let p = NameCodec.bytes(path), l = NameCodec.bytes(linkTarget)
        w.u32(UInt32(Self.fixedSizeV2 + p.count + l.count + recordBytes))
        w.u8(kind.rawValue)
        w.u8(flags.rawValue)
        w.u16(mode)
        w.u32(uid)
        w.u32(gid)
        w.i64(mtime)
        w.u32(mtimeNanoseconds)
        w.u64(size)
        w.raw(contentHash)
        w.u64(tarOffset)
        w.u16(UInt16(p.count)); w.raw(p)
        w.u16(UInt16(l.count)); w.raw(l)
        w.u16(UInt16(recordCount))
        if simple {
            if let userName { w.u8(RecordTag.userName.rawValue); w.u32(UInt32(userName.utf8.count)); w.utf8(userName) }
            if let groupName { w.u8(RecordTag.groupName.rawValue); w.u32(UInt32(groupName.utf8.count)); w.utf8(groupName) }
        } else {
            for (tag, value) in recs { w.u8(tag); w.u32(UInt32(value.count)); w.raw(value) }
        }
    }

    /// Decodes a v2 entry, enforcing every rule of FORMAT.md §8 that one entry can be checked against.
    static func decodeV2(_ body: [UInt8], names: OwnerNameCache? = nil) throws -> ManifestEntry {
        var r = ByteReader(body, what: "manifest entry")
        func bad(_ what: String) -> IntegrityError { .malformed(what: "manifest entry (\(what))") }
        guard let kind = Kind(rawValue: try r.u8()) else { throw bad("unknown type") }
        let flags = Flags(rawValue: try r.u8())
        guard Flags.known.isSuperset(of: flags) else { throw bad("unknown flags") }
        let mode = try r.u16()
        guard mode & ~0o7777 == 0 else { throw bad("mode \(String(mode, radix: 8))") }
        let uid = try r.u32(), gid = try r.u32()
        let mtime = try r.i64()
        let nsec = try r.u32()
        guard nsec < 1_000_000_000 else { throw bad("nanoseconds") }
        let size = try r.u64()
        let hash = try r.raw(32)
        let tarOffset = try r.u64()
        let pathBytes = try r.raw(Int(try r.u16()))
        let linkBytes = try r.raw(Int(try r.u16()))
        // Names are bytes in v2 (any but NUL), held as NameCodec strings.
        func checkName(_ bytes: [UInt8], _ field: String) throws {
            guard bytes.count <= FormatV1.maxPathBytes else {
                throw IntegrityError.outOfRange(field: "length of \(field)", value: UInt64(bytes.count), min: 0, max: UInt64(FormatV1.maxPathBytes))
            }
            guard !bytes.contains(0) else { throw IntegrityError.malformed(what: "\(field) (it holds a NUL byte)") }
        }
        try checkName(pathBytes, "manifest path")
        try checkName(linkBytes, "manifest link target")
        let path = NameCodec.decode(pathBytes)
        let link = NameCodec.decode(linkBytes)
        var entry = ManifestEntry(kind: kind, path: path, mode: mode, mtime: mtime, mtimeNanoseconds: nsec, size: size,
                                  contentHash: hash, linkTarget: link)
        entry.flags = flags
        entry.uid = uid
        entry.gid = gid
        entry.tarOffset = tarOffset
        let count = Int(try r.u16())
        var last: (UInt8, [UInt8])?
        for _ in 0..<count {
            let tag = try r.u8()
            let length = Int(try r.u32())
            guard length <= r.remaining else { throw IntegrityError.truncated(what: "manifest record") }
            let value = try r.raw(length)
            if let last, !(last.0 < tag || (last.0 == tag && last.1.lexicographicallyPrecedes(value))) {
                throw bad("records out of order or repeated")
            }
            last = (tag, value)
            guard let known = RecordTag(rawValue: tag) else {
                if tag & optionalRecordBit != 0 { continue }
                throw bad("unknown critical record 0x\(String(tag, radix: 16))")
            }
            try entry.apply(known, value, names: names)
        }
        try r.expectEnd()
        try entry.checkV2Rules()
        return entry
    }

    private mutating func apply(_ tag: RecordTag, _ value: [UInt8], names: OwnerNameCache?) throws {
        func bad(_ what: String) -> IntegrityError { .malformed(what: "manifest entry '\(DisplayName.escaped(path))' (\(what))") }
        func ownerName(_ v: [UInt8]) throws -> String {
            // The same few names on every entry: the last one decoded is kept (per thread).
            if let cached = names?.last, cached.bytes == v { return cached.name }
            guard (1...255).contains(v.count), !v.contains(0), let s = String(validating: v, as: UTF8.self) else { throw bad("owner name") }
            names?.last = (v, s)
            return s
        }
        switch tag {
        case .userName: userName = try ownerName(value)
        case .groupName: groupName = try ownerName(value)
        case .xattr:
            guard let n = value.first, n >= 1, value.count >= 1 + Int(n) else { throw bad("xattr record") }
            let name = Array(value[1...Int(n)])
            let data = Array(value[(1 + Int(n))...])
            guard ExtendedAttribute.isPortableName(name), data.count <= ExtendedAttribute.maxValueBytes else { throw bad("xattr record") }
            guard name != Array(ACLXattr.accessName.utf8), name != Array(ACLXattr.defaultName.utf8) else {
                throw bad("an ACL stored as an extended attribute")
            }
            // Records are ordered by value, whose first byte is the name's length, then the name: a repeated
            // name would sit right after the first.
            if let previous = xattrs.last, previous.name == name { throw bad("xattr name repeated") }
            xattrs.append(ExtendedAttribute(name: name, value: data))
        case .accessACL: accessACL = try Self.decodeACL(value, bad)
        case .defaultACL: defaultACL = try Self.decodeACL(value, bad)
        case .readSize:
            guard value.count == 8 else { throw bad("read_size length") }
            var r = ByteReader(value, what: "read_size")
            readSize = try r.u64()
        case .sparseMap:
            var r = ByteReader(value, what: "sparse_map")
            let count = Int(try r.u32())
            guard count >= 1, count <= SparseRegion.maxRegions, value.count == 4 + 16 * count else { throw bad("sparse_map length") }
            sparseMap = try (0..<count).map { _ in SparseRegion(offset: try r.u64(), length: try r.u64()) }
        }
    }

    private static func decodeACL(_ value: [UInt8], _ bad: (String) -> IntegrityError) throws -> [ACLEntry] {
        var r = ByteReader(value, what: "ACL record")
        let count = Int(try r.u16())
        guard (1...ACLEntry.maxEntries).contains(count) else { throw bad("ACL entry count") }
        var out: [ACLEntry] = []
        for _ in 0..<count {
            guard let tag = ACLEntry.Tag(rawValue: try r.u8()) else { throw bad("ACL tag") }
            let perm = try r.u8()
            guard perm & ~7 == 0 else { throw bad("ACL permissions") }
            let id = try r.u32()
            let nameBytes = try r.raw(Int(try r.u8()))
            guard !nameBytes.contains(where: { [0, 0x0A, 0x2C, 0x3A].contains($0) }), let name = String(validating: nameBytes, as: UTF8.self) else {
                throw bad("ACL name")
            }
            let e = ACLEntry(tag: tag, permissions: perm, id: id, name: name)
            guard e.isNamed || (id == ACLEntry.undefinedID && name.isEmpty) else { throw bad("ACL id or name on an unnamed entry") }
            if let previous = out.last, !ACLEntry.precedes(previous, e) { throw bad("ACL entries out of order or repeated") }
            out.append(e)
        }
        try r.expectEnd()
        let tags = out.map(\.tag)
        let named = tags.contains(.user) || tags.contains(.group)
        guard tags.contains(.userObj), tags.contains(.groupObj), tags.contains(.other), tags.contains(.mask) == named else {
            throw bad("an ACL without its owner, group and other entries, or with a mask exactly when it has no named entry")
        }
        return out
    }

    /// The rules between fields of one v2 entry (FORMAT.md §8).
    func checkV2Rules() throws {
        func bad(_ what: String) -> IntegrityError { .malformed(what: "manifest entry '\(DisplayName.escaped(path))' (\(what))") }
        guard kind == .file || kind == .hardlink || flags.isEmpty else { throw bad("flags on a \(kind.name)") }
        if kind != .file {
            guard size == 0, contentHash == Self.zeroHash else { throw bad("a \(kind.name) with a size or content hash") }
            guard readSize == nil, !flags.contains(.shrank) else { throw bad("a \(kind.name) that shrank") }
        }
        guard flags.contains(.shrank) == (readSize != nil) else { throw bad("flag shrank and read_size disagree") }
        if flags.contains(.shrank) {
            guard flags.contains(.changedWhileRead), let readSize, readSize < size else { throw bad("read_size") }
        }
        guard defaultACL.isEmpty || kind == .directory else { throw bad("a default ACL on a \(kind.name)") }
        if let sparseMap {
            guard kind == .file else { throw bad("a sparse map on a \(kind.name)") }
            guard Self.isValidSparseMap(sparseMap, size: size) else { throw bad("sparse map") }
        }
        if !accessACL.isEmpty {
            guard accessACL.contains(where: \.isNamed) else { throw bad("an access ACL the mode already says") }
            func perm(_ tag: ACLEntry.Tag) -> UInt16 { UInt16(accessACL.first { $0.tag == tag }?.permissions ?? 0) }
            guard perm(.userObj) == (mode >> 6) & 7, perm(.mask) == (mode >> 3) & 7, perm(.other) == mode & 7 else {
                throw bad("an access ACL that disagrees with the mode")
            }
        }
        switch kind {
        case .symlink:
            guard !linkTarget.isEmpty else { throw bad("a symlink without a target") }
        case .hardlink:
            guard !linkTarget.isEmpty else { throw bad("a hardlink without a target") }
        case .deleted:
            guard mode == 0, uid == 0, gid == 0, mtime == 0, mtimeNanoseconds == 0, flags.isEmpty, linkTarget.isEmpty,
                  userName == nil, groupName == nil, xattrs.isEmpty, accessACL.isEmpty else {
                throw bad("a deleted entry with metadata")
            }
        case .file, .directory:
            guard linkTarget.isEmpty else { throw bad("a \(kind.name) with a link target") }
        }
    }

    /// FORMAT.md §8, record 0x07: regions in order, not overlapping, inside `size`; all but the last
    /// non-empty and 512-aligned at both ends.
    static func isValidSparseMap(_ map: [SparseRegion], size: UInt64) -> Bool {
        var previousEnd: UInt64 = 0
        for (i, r) in map.enumerated() {
            let (end, overflow) = r.offset.addingReportingOverflow(r.length)
            guard !overflow, r.offset >= previousEnd, end <= size else { return false }
            if i < map.count - 1 {
                guard r.length > 0, r.offset % 512 == 0, end % 512 == 0 else { return false }
            }
            previousEnd = end
        }
        return true
    }

    /// The metadata a hardlink must share with the file it links to (FORMAT.md §8).
    func sameMetadata(as other: ManifestEntry) -> Bool {
        mode == other.mode && uid == other.uid && gid == other.gid && mtime == other.mtime
            && mtimeNanoseconds == other.mtimeNanoseconds && flags == other.flags && userName == other.userName
            && groupName == other.groupName && xattrs == other.xattrs && accessACL == other.accessACL
    }
}

/// Linux's binary form of POSIX ACLs, as the `system.posix_acl_access` and `system.posix_acl_default`
/// extended attributes hold them (linux/posix_acl_xattr.h): `u32 version = 2`, then per entry
/// `u16 tag, u16 perm, u32 id`, all little-endian.
enum ACLXattr {
    static let accessName = "system.posix_acl_access"
    static let defaultName = "system.posix_acl_default"
    private static let version: UInt32 = 2

    static func decode(_ bytes: [UInt8]) -> [ACLEntry]? {
        guard bytes.count >= 4, (bytes.count - 4) % 8 == 0 else { return nil }
        var r = ByteReader(bytes, what: "ACL")
        guard (try? r.u32()) == version else { return nil }
        var out: [ACLEntry] = []
        while !r.isAtEnd {
            guard let tag = try? r.u16(), let perm = try? r.u16(), let id = try? r.u32(),
                  tag <= 0xFF, let t = ACLEntry.Tag(rawValue: UInt8(tag)) else { return nil }
            let named = t == .user || t == .group
            out.append(ACLEntry(tag: t, permissions: UInt8(perm & 7), id: named ? id : ACLEntry.undefinedID))
        }
        return out.sorted(by: ACLEntry.precedes)
    }

    static func encode(_ acl: [ACLEntry]) -> [UInt8] {
        var w = ByteWriter()
        w.u32(version)
        for e in acl.sorted(by: ACLEntry.precedes) {
            w.u16(UInt16(e.tag.rawValue)); w.u16(UInt16(e.permissions)); w.u32(e.id)
        }
        return w.bytes
    }
}

/// The owner name decoded last, kept by a manifest decoder: manifests repeat one or two user and group
/// names on every entry, and each would otherwise be validated and made into a `String` again.
final class OwnerNameCache {
    var last: (bytes: [UInt8], name: String)?
}

/// The parts of a version 2 manifest entry that order, offsets and selection need — type, size,
/// `tar_offset`, path and link bytes — read from its encoded body without decoding the rest (owner
/// names, attributes, ACLs): a selective restore reads every entry and decodes only those it takes.
struct EntryHead {
    let kind: ManifestEntry.Kind
    let size: UInt64
    let tarOffset: UInt64
    let path: [UInt8]
    let link: [UInt8]

    init(v2 body: [UInt8]) throws {
        func bad(_ what: String) -> IntegrityError { .malformed(what: "manifest entry (\(what))") }
        guard body.count >= ManifestEntry.fixedSizeV2 else { throw IntegrityError.truncated(what: "manifest entry") }
        guard let kind = ManifestEntry.Kind(rawValue: body[0]) else { throw bad("unknown type") }
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(body[at + $1]) << (8 * $1) } }
        func u16(_ at: Int) -> Int { Int(body[at]) | Int(body[at + 1]) << 8 }
        self.kind = kind
        size = u64(24)
        tarOffset = u64(64)
        let pathLength = u16(72)
        guard 74 + pathLength + 2 <= body.count else { throw IntegrityError.truncated(what: "manifest entry") }
        let linkLength = u16(74 + pathLength)
        guard 76 + pathLength + linkLength + 2 <= body.count, pathLength <= FormatV1.maxPathBytes, linkLength <= FormatV1.maxPathBytes else {
            throw IntegrityError.truncated(what: "manifest entry")
        }
        path = Array(body[74..<74 + pathLength])
        link = Array(body[76 + pathLength..<76 + pathLength + linkLength])
    }
}
