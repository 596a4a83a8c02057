#if canImport(Glibc)
import Glibc
#endif

/// A vendor export that cannot be archived safely.
public struct UnsafeExportError: ColdArchiveError, Equatable {
    public let export: String
    public let problems: [String]

    public var kind: FailureKind { .integrity }

    public var description: String {
        let shown = problems.prefix(50).map { "  - \($0)" }.joined(separator: "\n")
        let more = problems.count > 50 ? "\n  … and \(problems.count - 50) more" : ""
        return "'\(export)' holds \(problems.count) unsafe entr\(problems.count == 1 ? "y" : "ies"); nothing was archived:\n\(shown)\(more)"
    }
}

/// Unpacks a vendor export (Salesforce, HubSpot and Dynamics deliver ZIPs; others tar or tar.gz)
/// into a private directory so that `create` archives it like any source: rewritten as pax, in
/// canonical order, with every entry hashed into the manifest. Every entry is checked first, and an
/// export with any unsafe entry is refused whole, with the list.
enum ExportImporter {
    static let workspacePrefix = ".coldarchive-import-"

    /// The top-level name an export gets: its file name without the archive extensions.
    static func name(of export: String) -> String {
        var name = FileSystem.baseName(of: export)
        for suffix in [".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tgz", ".zip", ".tar"] where name.lowercased().hasSuffix(suffix) {
            name = String(name.dropLast(suffix.count))
            break
        }
        return name
    }

    /// Checks every entry of `export`, then unpacks it into `root` (which must not exist).
    /// Returns warnings (dropped setuid bits, directory entries that came after their contents).
    static func unpack(_ export: String, into root: String) throws -> [SourceWarning] {
        try check(export)
        var warnings: [SourceWarning] = []
        try FileSystem.makeDirectory(root, mode: 0o700)
        let extractor = try SafeExtractor(root: root)
        let reader = try ExportReader(path: export)
        var directories = Set<[UInt8]>()
        while let header = try reader.nextEntry() {
            guard let path = normalized(header.path) else { continue }
            var entry = ManifestEntry(kind: header.kind, path: path, mode: UInt16(header.mode & 0o777), mtime: header.mtime,
                                      mtimeNanoseconds: header.mtimeNanoseconds, size: header.size,
                                      contentHash: ManifestEntry.zeroHash, linkTarget: header.linkTarget)
            if header.mode & 0o7000 != 0 { warnings.append(SourceWarning(.privilegeBitsDropped, path: "\(export)/\(path)", ": setuid, setgid and sticky bits dropped")) }
            // ZIPs made on other systems often carry no Unix permissions at all.
            if entry.kind == .file && entry.mode & 0o600 == 0 { entry.mode |= 0o644 }
            if entry.kind == .directory && entry.mode & 0o700 == 0 { entry.mode |= 0o755 }
            if entry.kind == .hardlink, let target = normalized(entry.linkTarget) { entry.linkTarget = target }
            // Parents the export does not list (ZIPs often omit them) are made as plain directories.
            let parts = try PathRules.components(of: path)
            for depth in 1..<parts.count {
                let parent = parts[0..<depth].joined(separator: "/")
                if directories.insert(PathRules.key(parent)).inserted {
                    try extractor.begin(ManifestEntry(kind: .directory, path: parent, mode: 0o755, mtime: header.mtime, mtimeNanoseconds: 0,
                                                      size: 0, contentHash: ManifestEntry.zeroHash, linkTarget: ""))
                }
            }
            if entry.kind == .directory {
                if !directories.insert(PathRules.key(path)).inserted {
                    warnings.append(SourceWarning(.metadataNotKept, path: "\(export)/\(path)",
                                                   ": the directory entry came after its contents; its time and mode were not kept"))
                    continue
                }
                try extractor.begin(entry)
                continue
            }
            try extractor.begin(entry)
            if entry.kind == .file {
                while true {
                    let n = try reader.readData(into: try extractor.space())
                    if n == 0 { break }
                    try extractor.commit(n)
                }
            }
            try extractor.end(entry)
        }
        _ = try extractor.finish()
        return warnings
    }

    /// The first pass: every entry's name, type and link, without unpacking anything.
    private static func check(_ export: String) throws {
        let reader = try ExportReader(path: export)
        var problems: [String] = []
        var seen = Set<[UInt8]>()
        while true {
            let header: TarEntryHeader
            do {
                guard let next = try reader.nextEntry() else { break }
                header = next
            } catch let error as IntegrityError {
                problems.append(error.description)
                continue
            }
            guard let path = normalized(header.path) else { continue }
            do {
                let parts = try PathRules.components(of: path)
                if !seen.insert(PathRules.key(path)).inserted && header.kind != .directory {
                    problems.append("'\(path)' appears twice")
                }
                switch header.kind {
                case .symlink where PathRules.symlinkEscapes(linkPath: parts, target: header.linkTarget):
                    problems.append("'\(path)' is a symlink to '\(header.linkTarget)', outside the export")
                case .hardlink:
                    guard let target = normalized(header.linkTarget) else {
                        problems.append("'\(path)' is a hardlink to the export's root")
                        break
                    }
                    _ = try PathRules.components(of: target)
                default:
                    break
                }
            } catch let error as IntegrityError {
                problems.append(error.description)
            }
        }
        guard problems.isEmpty else { throw UnsafeExportError(export: export, problems: problems) }
    }

    /// An entry name without leading "./" components; nil for the export's root itself. Anything
    /// else unusual (absolute, "..") is left for the path rules to refuse.
    static func normalized(_ path: String) -> String? {
        var p = Substring(path)
        while p.hasPrefix("./") { p = p.dropFirst(2) }
        while p.hasSuffix("/") && p.count > 1 { p = p.dropLast() }
        return p.isEmpty || p == "." ? nil : String(p)
    }
}
