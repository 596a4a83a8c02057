/// Something `create` could not archive exactly as the source had it, or left out: reported, never
/// silent. Each has a kind scripts can match on (`create --json` lists them), the path it concerns, and
/// a sentence for people.
public struct SourceWarning: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// A device, FIFO or socket: never archived.
        case skippedSpecialFile = "skipped-special-file"
        /// Gone between listing its directory and reading it.
        case vanished
        /// Replaced (by another type, a link) between listing and reading: skipped.
        case changedWhileArchived = "changed-while-archived"
        /// Grew while read: only the size it had when its header was written was stored.
        case grewWhileRead = "grew-while-read"
        /// Shrank while read: the missing end was stored as zeros.
        case shrankWhileRead = "shrank-while-read"
        /// setuid, setgid or sticky bits: not kept.
        case privilegeBitsDropped = "privilege-bits-dropped"
        /// An import whose directory entry came after its contents: its time and mode were not kept.
        case metadataNotKept = "metadata-not-kept"
        /// coldarchive's own output or workspace inside a source: left out on purpose.
        case ownFile = "own-file"
        /// The archive is complete, but its directory could not be synced to disk.
        case notDurable = "not-durable"
    }

    public var kind: Kind
    public var path: String
    /// What happened, as it follows the quoted path in `description`.
    public var detail: String

    public init(_ kind: Kind, path: String, _ detail: String) {
        self.kind = kind
        self.path = path
        self.detail = detail
    }

    public var description: String { detail.hasPrefix(":") ? "'\(path)'\(detail)" : "'\(path)' \(detail)" }

    /// Whether the archive differs from the source because of this: what it holds is not what the
    /// source had, or something the source had is missing (exit code 4). Leaving out coldarchive's own
    /// output, or a failed directory sync after the archive was complete, do not count.
    public var archiveIsInexact: Bool { kind != .ownFile && kind != .notDurable }
}
