#if canImport(Glibc)
import Glibc
#endif

/// The user's exclude patterns, as `create --exclude` and `--exclude-from` give them (FORMAT.md §8
/// records them in the source description). Matching is `fnmatch(3)` on the names' bytes: a pattern
/// without `/` is tried against each name (`*.tmp`, `cache`, as GNU tar's unanchored `--exclude`);
/// a pattern with `/` against the whole archive path from the top-level name (`crm/tmp/*`), where
/// `*` and `?` do not match `/` (`FNM_PATHNAME`).
struct ExcludeRules: Sendable {
    let patterns: [String]
    private let namePatterns: [String]
    private let pathPatterns: [String]

    init(patterns: [String]) {
        self.patterns = patterns
        namePatterns = patterns.filter { !$0.contains("/") }
        pathPatterns = patterns.filter { $0.contains("/") }.map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 }
    }

    func excludes(name: String, path: String) -> Bool {
        guard !patterns.isEmpty else { return false }
        // On the names' bytes (NameCodec), so '?' matches one byte, a Latin-1 one included.
        return NameCodec.withCString(name) { n in namePatterns.contains { p in NameCodec.withCString(p) { fnmatch($0, n, 0) } == 0 } }
            || NameCodec.withCString(path) { n in pathPatterns.contains { p in NameCodec.withCString(p) { fnmatch($0, n, FNM_PATHNAME) } == 0 } }
    }
}

/// Exclude files, as `create --exclude-from` reads them.
public enum ExcludePatterns {
    /// The patterns of the exclude file at `path` (at most 16 MiB); its lines are bytes like names
    /// (NameCodec), so a pattern may name a Latin-1 file exactly.
    public static func read(file path: String) throws -> [String] {
        let bytes = try FileSystem.readSmallFile(path, limit: 16 << 20)
        return bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
            .map { line in NameCodec.decode(line.last == 0x0D ? line.dropLast() : line) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    /// The patterns of an exclude file: one per line, without blank lines and `#` comments (as
    /// restic's `--exclude-file` and rsync's `--exclude-from` read them); CR LF line ends are accepted.
    public static func read(_ text: String) -> [String] {
        // "\r\n" is one Character in Swift: both line ends split.
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map(String.init)
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }
}
