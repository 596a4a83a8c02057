/// The rules every archive path and link target obey, shared by the writer (which refuses to store
/// what a restore would refuse) and the safe extractor (which refuses what a hostile writer stored).
enum PathRules {
    static let maxComponentBytes = 255

    /// Splits a relative archive path into its components, or says why it is unsafe.
    static func components(of path: String) throws -> [String] {
        func unsafe(_ reason: String) -> IntegrityError { .unsafeEntry(path: path, reason: reason) }
        guard !path.isEmpty else { throw unsafe("the name is empty") }
        guard path.utf8.count <= FormatV1.maxPathBytes else { throw unsafe("the name is longer than \(FormatV1.maxPathBytes) bytes") }
        guard !path.utf8.contains(0) else { throw unsafe("the name contains a NUL byte") }
        guard !path.hasPrefix("/") else { throw unsafe("absolute paths are never restored") }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for part in parts {
            if part.isEmpty || part == "." { throw unsafe("the name has an empty or '.' component") }
            if part == ".." { throw unsafe("'..' components could write outside the target") }
            if part.utf8.count > maxComponentBytes { throw unsafe("a component is longer than \(maxComponentBytes) bytes") }
        }
        return parts
    }

    /// True when a symlink at `linkPath` with this `target` could point outside the archive's root.
    /// Allowed targets are relative, go up (`..`) only before going down (`../../a/b`, never `a/../b`,
    /// whose `a` might itself be a link), and never go above the root; `.` components are ignored.
    /// Every link in a tree obeying this resolves inside it, however links chain.
    static func symlinkEscapes(linkPath: [String], target: String) -> Bool {
        if target.isEmpty || target.hasPrefix("/") || target.utf8.contains(0) { return true }
        var depth = linkPath.count - 1
        var descending = false
        for part in target.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            if part == ".." {
                if descending { return true }
                depth -= 1
                if depth < 0 { return true }
            } else {
                descending = true
            }
        }
        return false
    }

    /// The canonical entry order: paths compared component by component, each component bytewise
    /// (a pre-order walk with children in bytewise name order). Strictly increasing order means no
    /// path can appear twice.
    static func precedes(_ a: [String], _ b: [String]) -> Bool {
        for (x, y) in zip(a, b) where x != y {
            return Array(x.utf8).lexicographicallyPrecedes(Array(y.utf8))
        }
        return a.count < b.count
    }
}

/// Checks, in O(depth) memory, that a sequence of entries is in canonical order, that no path
/// repeats, that every entry's parent is a directory listed before it, and that hardlinks point
/// backwards.
struct EntryOrderCheck {
    private var previous: [String] = []
    private var directories: [[String]] = []

    mutating func check(_ entry: ManifestEntry) throws {
        let parts = try PathRules.components(of: entry.path)
        guard previous.isEmpty || PathRules.precedes(previous, parts) else {
            throw IntegrityError.unsafeEntry(path: entry.path, reason: "it is out of order or appears twice")
        }
        while let top = directories.last, !(top.count < parts.count && Array(parts.prefix(top.count)) == top) {
            directories.removeLast()
        }
        if parts.count > 1 && directories.last != Array(parts.dropLast()) {
            throw IntegrityError.unsafeEntry(path: entry.path, reason: "its parent directory is not in the archive before it")
        }
        if entry.kind == .hardlink {
            let target = try PathRules.components(of: entry.linkTarget)
            guard PathRules.precedes(target, parts) else {
                throw IntegrityError.unsafeEntry(path: entry.path, reason: "a hardlink must point at a file earlier in the archive")
            }
        }
        if entry.kind == .directory { directories.append(parts) }
        previous = parts
    }
}
