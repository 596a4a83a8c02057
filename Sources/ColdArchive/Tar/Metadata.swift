#if canImport(Glibc)
import Glibc
#endif

/// User and group names of numeric ids on this machine (`getpwuid_r`, `getgrgid_r`), looked up once
/// per id and cached: a tree of 600 000 files has a handful of owners.
struct OwnerNames {
    /// Names by id, and the last answer (consecutive files almost always share their owner).
    private struct Cache {
        var byID: [UInt32: String?] = [:]
        var last: (id: UInt32, name: String?)?

        mutating func name(_ id: UInt32, lookingUp look: (UInt32) -> String?) -> String? {
            if let last, last.id == id { return last.name }
            let name: String?
            if let known = byID[id] { name = known } else { name = look(id); byID[id] = name }
            last = (id, name)
            return name
        }
    }

    private var users = Cache()
    private var groups = Cache()

    mutating func userName(_ uid: UInt32) -> String? {
        users.name(uid) { uid in
            Self.lookup { buffer, size in
                var entry = passwd(), result: UnsafeMutablePointer<passwd>?
                return (getpwuid_r(uid_t(uid), &entry, buffer, size, &result), result.flatMap { $0.pointee.pw_name.map { String(cString: $0) } })
            }
        }
    }

    mutating func groupName(_ gid: UInt32) -> String? {
        groups.name(gid) { gid in
            Self.lookup { buffer, size in
                var entry = group(), result: UnsafeMutablePointer<group>?
                return (getgrgid_r(gid_t(gid), &entry, buffer, size, &result), result.flatMap { $0.pointee.gr_name.map { String(cString: $0) } })
            }
        }
    }

    /// Runs a `get*_r` call with a buffer that grows while it says ERANGE. Names that are not valid
    /// UTF-8 or longer than 255 bytes are treated as unknown (the id is kept either way).
    private static func lookup(_ call: (UnsafeMutablePointer<CChar>, Int) -> (Int32, String?)) -> String? {
        var size = 1024
        while size <= 1 << 20 {
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            defer { buffer.deallocate() }
            let (status, name) = call(buffer, size)
            if status == ERANGE { size *= 4; continue }
            guard status == 0, let name, (1...255).contains(name.utf8.count), String(validating: Array(name.utf8), as: UTF8.self) != nil else { return nil }
            return name
        }
        return nil
    }

    /// The local id of a user or group name, for restoring owners by name (`tar --same-owner`).
    static func uid(named name: String) -> UInt32? {
        var entry = passwd(), result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, let result else { return nil }
        return UInt32(result.pointee.pw_uid)
    }

    static func gid(named name: String) -> UInt32? {
        var entry = group(), result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, let result else { return nil }
        return UInt32(result.pointee.gr_gid)
    }
}

/// Extended attributes through Linux's `*xattr` system calls, by open descriptor (or, for a symlink,
/// by name in its open directory through `/proc/self/fd`, since there is no `lgetxattrat`).
enum ExtendedAttributes {
    /// Every attribute of the open file `fd`, by name in bytewise order. A file system without
    /// extended attributes gives none.
    static func list(fd: Int32) throws -> [(name: String, value: [UInt8])] {
        try read(names: { flistxattr(fd, $0, $1) }, value: { fgetxattr(fd, $0, $1, $2) })
    }

    static func list(symlinkNamed name: String, in directory: Int32) throws -> [(name: String, value: [UInt8])] {
        let path = NameCodec.bytes("/proc/self/fd/\(directory)/\(name)") + [0]
        return try path.withUnsafeBufferPointer { p in
            try p.withMemoryRebound(to: CChar.self) { c in
                try read(names: { llistxattr(c.baseAddress!, $0, $1) }, value: { lgetxattr(c.baseAddress!, $0, $1, $2) })
            }
        }
    }

    private static func read(names: (UnsafeMutablePointer<CChar>?, Int) -> Int,
                             value: (String, UnsafeMutableRawPointer?, Int) -> Int) throws -> [(name: String, value: [UInt8])] {
        var size = names(nil, 0)
        if size < 0 { return try unsupportedOrThrow("list extended attributes") }
        if size == 0 { return [] }
        var list = [CChar](repeating: 0, count: size + 1)
        size = list.withUnsafeMutableBufferPointer { names($0.baseAddress, $0.count) }
        if size < 0 { return try unsupportedOrThrow("list extended attributes") }
        var out: [(name: String, value: [UInt8])] = []
        var start = 0
        for i in 0..<size where list[i] == 0 {
            let nameBytes = list[start..<i].map { UInt8(bitPattern: $0) }
            start = i + 1
            // A name that is not UTF-8 is passed on escaped (NameCodec) for the caller to refuse by name.
            let name = NameCodec.decode(nameBytes)
            guard !name.isEmpty, nameBytes.count <= ExtendedAttribute.maxNameBytes else { continue }
            guard String(validating: nameBytes, as: UTF8.self) != nil else { out.append((name, [])); continue }
            var length = value(name, nil, 0)
            if length < 0 {
                if errno == ENODATA { continue }
                throw SystemError(operation: "read extended attribute \(name)", path: "", errno: errno)
            }
            guard length <= ExtendedAttribute.maxValueBytes else {
                throw SystemError(operation: "read extended attribute \(name) (larger than 64 KiB)", path: "", errno: E2BIG)
            }
            var data = [UInt8](repeating: 0, count: length)
            length = data.withUnsafeMutableBytes { value(name, $0.baseAddress, $0.count) }
            if length < 0 {
                if errno == ENODATA { continue }
                throw SystemError(operation: "read extended attribute \(name)", path: "", errno: errno)
            }
            out.append((name, Array(data[0..<length])))
        }
        return out.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
    }

    private static func unsupportedOrThrow(_ operation: String) throws -> [(name: String, value: [UInt8])] {
        if errno == ENOTSUP || errno == EOPNOTSUPP || errno == ENOSYS { return [] }
        throw SystemError(operation: operation, path: "", errno: errno)
    }

    /// Sets one attribute on an open file; returns the errno on failure.
    static func set(fd: Int32, name: String, value: [UInt8]) -> Int32? {
        let status = value.withUnsafeBytes { fsetxattr(fd, name, $0.baseAddress, $0.count, 0) }
        return status == 0 ? nil : errno
    }

    /// Whether an open file has the attribute `name`; nil when that cannot be told (an error other
    /// than "no such attribute" or "the file system has none").
    static func has(fd: Int32, name: String) -> Bool? {
        if fgetxattr(fd, name, nil, 0) >= 0 { return true }
        return errno == ENODATA || errno == ENOTSUP || errno == EOPNOTSUPP ? false : nil
    }
}

// <sys/xattr.h> is not part of Swift's Glibc module; these are glibc's own symbols.
@_silgen_name("flistxattr") private func flistxattr(_ fd: Int32, _ list: UnsafeMutablePointer<CChar>?, _ size: Int) -> Int
@_silgen_name("fgetxattr") private func fgetxattr(_ fd: Int32, _ name: UnsafePointer<CChar>, _ value: UnsafeMutableRawPointer?, _ size: Int) -> Int
@_silgen_name("fsetxattr") private func fsetxattr(_ fd: Int32, _ name: UnsafePointer<CChar>, _ value: UnsafeRawPointer?, _ size: Int, _ flags: Int32) -> Int32
@_silgen_name("llistxattr") private func llistxattr(_ path: UnsafePointer<CChar>, _ list: UnsafeMutablePointer<CChar>?, _ size: Int) -> Int
@_silgen_name("lgetxattr") private func lgetxattr(_ path: UnsafePointer<CChar>, _ name: UnsafePointer<CChar>, _ value: UnsafeMutableRawPointer?, _ size: Int) -> Int
