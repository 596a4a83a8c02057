import Glibc

/// The rules every archive path and link target obey, shared by the writer (which refuses to store
/// what a restore would refuse) and the safe extractor (which refuses what a hostile writer stored).
enum PathRules {
    static let maxComponentBytes = 255

    /// Splits a relative archive path into its components, or says why it is unsafe. Runs once or
    /// more per entry on every restore, so it works on the UTF-8 bytes rather than on `Character`s.
    static func components(of path: String) throws -> [String] {
        // The rules are checked in one place (`checkPath`), on the name's bytes: an escaped byte (NameCodec)
        // counts as one byte there, as on the file system.
        try checkPath(NameCodec.bytes(path), path: path)
        var path = path
        path.makeContiguousUTF8()
        // An escape is four UTF-8 bytes none of which is '/': splitting the UTF-8 splits the names.
        return path.utf8.split(separator: slash, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Names are bytes. Swift's `String` equality is canonical equivalence, under which "café" with a
    /// precomposed é (U+00E9) equals "cafe" + U+0301, though a file system holds them as two files; so
    /// wherever a path or name is compared, sorted or used as a key, it is by its UTF-8 bytes.
    static func same(_ a: String, _ b: String) -> Bool {
        // Byte equality (String's == is canonical equivalence), by memcmp: byte by byte through the
        // UTF-8 views was 2 % of a restore's samples (issue 17's profile).
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in x.count == y.count && (x.isEmpty || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0) }
        }
    }
    static func same(_ a: some Collection<String>, _ b: some Collection<String>) -> Bool { a.elementsEqual(b, by: same) }
    /// A set or dictionary key that keeps canonically equivalent names apart.
    static func key(_ name: String) -> [UInt8] { Array(name.utf8) }

    static let slash = UInt8(ascii: "/")
    static let dot = UInt8(ascii: ".")

    /// Whether an archive path names a top-level entry (has no `/`).
    static func isTopLevel(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { $0.isEmpty || memchr($0.baseAddress!, Int32(slash), $0.count) == nil }
    }

    /// True when a symlink at `linkPath` with this `target` could point outside the archive's root.
    /// Allowed targets are relative, go up (`..`) only before going down (`../../a/b`, never `a/../b`,
    /// whose `a` might itself be a link), and never go above the root; `.` components are ignored.
    /// Every link in a tree obeying this resolves inside it, however links chain.
    static func symlinkEscapes(linkPath: [String], target: String) -> Bool {
        symlinkEscapes(linkDepth: linkPath.count, target: target)
    }

    /// The same, for a link whose path has `linkDepth` components. Works on the UTF-8 bytes: a `/`
    /// followed by a combining mark is one `Character` but still a separator to the file system.
    static func symlinkEscapes(linkDepth: Int, target: String) -> Bool {
        let bytes = Array(target.utf8)
        if bytes.isEmpty || bytes[0] == slash || bytes.contains(0) { return true }
        var depth = linkDepth - 1
        var descending = false
        for part in bytes.split(separator: slash, omittingEmptySubsequences: true) where !(part.count == 1 && part.first == dot) {
            if part.count == 2 && part.first == dot && part.last == dot {
                if descending { return true }
                depth -= 1
                if depth < 0 { return true }
            } else {
                descending = true
            }
        }
        return false
    }
}

/// Checks, in O(depth) memory, that a sequence of entries is in canonical order, that no path
/// repeats, that every entry's parent is a directory listed before it, and that hardlinks point
/// backwards. Works on the names' bytes, without splitting paths into strings: it runs for every
/// manifest entry of every restore, list and selective restore.
struct EntryOrderCheck {
    private var previous: [UInt8]?
    private var directories: [[UInt8]] = []

    /// Returns the entry's path as bytes (NameCodec).
    @discardableResult
    mutating func check(_ entry: ManifestEntry) throws -> [UInt8] {
        let bytes = NameCodec.bytes(entry.path)
        try check(kind: entry.kind, path: bytes, link: entry.kind == .hardlink ? NameCodec.bytes(entry.linkTarget) : [])
        return bytes
    }

    /// The same on an entry's parts: its type, its path's bytes, and for a hardlink its target's.
    mutating func check(kind: ManifestEntry.Kind, path bytes: [UInt8], link target: [UInt8]) throws {
        func path() -> String { NameCodec.decode(bytes) }
        try PathRules.checkPath(bytes, path: path())
        guard previous.map({ PathRules.precedes(bytes: $0, bytes) }) ?? true else {
            throw IntegrityError.unsafeEntry(path: path(), reason: .outOfOrderOrRepeated)
        }
        while let top = directories.last, !PathRules.isBelow(bytes, top) { directories.removeLast() }
        if let slash = bytes.lastIndex(of: PathRules.slash) {
            guard let top = directories.last, top.count == slash, bytes.starts(with: top) else {
                throw IntegrityError.unsafeEntry(path: path(), reason: .parentNotBefore)
            }
        }
        if kind == .hardlink {
            try PathRules.checkPath(target, path: NameCodec.decode(target))
            guard PathRules.precedes(bytes: target, bytes) else {
                throw IntegrityError.unsafeEntry(path: path(), reason: .hardlinkForward)
            }
        }
        if kind == .directory { directories.append(bytes) }
        previous = bytes
    }
}

extension PathRules {
    /// The rules of `components(of:)` (relative, no empty, `.` or `..` component, no NUL, at most 4 096
    /// bytes with components of at most 255) checked on a path's bytes without splitting it.
    static func checkPath(_ bytes: [UInt8], path: @autoclosure () -> String) throws {
        func unsafe(_ reason: UnsafeReason) -> IntegrityError { .unsafeEntry(path: path(), reason: reason) }
        guard !bytes.isEmpty else { throw unsafe(.emptyName) }
        guard bytes.count <= FormatV1.maxPathBytes else { throw unsafe(.nameTooLong) }
        guard bytes[0] != slash else { throw unsafe(.absolutePath) }
        var start = 0
        for i in 0...bytes.count {
            if i < bytes.count {
                if bytes[i] == 0 { throw unsafe(.nulByte) }
                if bytes[i] != slash { continue }
            }
            let length = i - start
            if length == 0 || (length == 1 && bytes[start] == dot) { throw unsafe(.emptyOrDotComponent) }
            if length == 2 && bytes[start] == dot && bytes[start + 1] == dot { throw unsafe(.dotDotComponent) }
            if length > maxComponentBytes { throw unsafe(.componentTooLong) }
            start = i + 1
        }
    }

    /// The canonical order on paths' bytes: component by component, each bytewise — which is bytewise
    /// comparison with `/` sorting below every other byte (names hold no NUL).
    static func precedes(bytes a: [UInt8], _ b: [UInt8]) -> Bool {
        for i in 0..<min(a.count, b.count) where a[i] != b[i] {
            return (a[i] == slash ? 0 : a[i]) < (b[i] == slash ? 0 : b[i])
        }
        return a.count < b.count
    }

    /// Whether the path `bytes` lies below the directory `directory` (both as bytes).
    static func isBelow(_ bytes: [UInt8], _ directory: [UInt8]) -> Bool {
        bytes.count > directory.count && bytes[directory.count] == slash && bytes.starts(with: directory)
    }
}
