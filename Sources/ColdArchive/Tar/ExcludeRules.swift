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

    /// Patterns without a wildcard or escape (`*?[\`), whose `fnmatch` is byte equality: compared as
    /// bytes, without a C string per name (a selective restore tries every manifest entry).
    private let literalNames: [[UInt8]]
    private let literalPaths: [[UInt8]]
    private let globNames: [[CChar]]
    private let globPaths: [[CChar]]

    init(patterns: [String]) {
        self.patterns = patterns
        func isLiteral(_ p: String) -> Bool { !p.utf8.contains { $0 == 0x2A || $0 == 0x3F || $0 == 0x5B || $0 == 0x5C } }
        let names = patterns.filter { !$0.contains("/") }
        let paths = patterns.filter { $0.contains("/") }.map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 }
        literalNames = names.filter(isLiteral).map { NameCodec.bytes($0) }
        literalPaths = paths.filter(isLiteral).map { NameCodec.bytes($0) }
        func cString(_ p: String) -> [CChar] { NameCodec.bytes(p).map { CChar(bitPattern: $0) } + [0] }
        globNames = names.filter { !isLiteral($0) }.map(cString)
        globPaths = paths.filter { !isLiteral($0) }.map(cString)
    }

    /// Whether a pattern matches the archive path `bytes` (its last component for a pattern without `/`).
    func matches(path bytes: [UInt8]) -> Bool {
        guard !patterns.isEmpty else { return false }
        let nameStart = (bytes.lastIndex(of: 0x2F) ?? -1) + 1
        if literalPaths.contains(where: { $0 == bytes }) || literalNames.contains(where: { $0.elementsEqual(bytes[nameStart...]) }) { return true }
        guard !globNames.isEmpty || !globPaths.isEmpty else { return false }
        let cPath = bytes.map { CChar(bitPattern: $0) } + [0]
        return cPath.withUnsafeBufferPointer { p in
            globPaths.contains { fnmatch($0, p.baseAddress!, FNM_PATHNAME) == 0 }
                || globNames.contains { fnmatch($0, p.baseAddress! + nameStart, 0) == 0 }
        }
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
