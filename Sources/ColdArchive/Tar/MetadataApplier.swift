import Foundation

/// Whose owner a restore sets (FORMAT.md §12), as GNU tar's `--same-owner`, `--numeric-owner` and
/// `--no-same-owner` do.
public enum OwnerPolicy: String, Sendable, Codable {
    /// Run as root: by name where the name is known here, else by number (tar's default for root).
    /// Run as another user: none.
    case automatic
    /// By number only, ignoring the names (`--numeric-owner`).
    case numeric
    /// Never (`--no-owner`): everything belongs to the user who restores.
    case none
}

/// Something a restore could not apply to one entry exactly as the archive has it: reported by name,
/// never dropped silently.
public struct RestoreNotice: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable {
        /// The owner or group could not be set.
        case owner
        /// An extended attribute could not be set (the file system does not take it, or permission).
        case extendedAttribute = "extended-attribute"
        /// An ACL could not be set.
        case acl
        /// setuid, setgid or sticky bits could not be kept.
        case specialBits = "special-bits"
        /// The file changed while it was archived (FORMAT.md §8): restored as stored.
        case changedWhileRead = "changed-while-read"
    }

    public var kind: Kind
    public var path: String
    public var detail: String

    public var description: String { "'\(DisplayName.escaped(path))': \(detail)" }
}

/// Applies what format v2 keeps beyond content — owner, mode with special bits, extended attributes,
/// ACLs, the cut of a file that shrank while read, times — to restored entries, and collects what it
/// could not apply. Owners are resolved on the parsing thread (`owner(for:)`); `apply` runs on writer
/// lanes at once, so the notices are guarded by a lock.
final class MetadataApplier: @unchecked Sendable {
    let policy: OwnerPolicy
    /// Whether owners are set at all (root, and not `.none`).
    let setsOwners: Bool
    private var userIDs: [String: UInt32?] = [:]
    private var groupIDs: [String: UInt32?] = [:]
    private let lock = NSLock()
    private var notices: [RestoreNotice] = []
    private var noticeCount = 0
    /// At most this many notices are kept (the count goes on): memory stays bounded.
    static let maxNotices = 10_000

    init(policy: OwnerPolicy) {
        self.policy = policy
        setsOwners = policy != .none && (geteuid() == 0 || policy == .numeric)
    }

    /// What a regular file created below the restore's root has before anything is applied: the
    /// permission bits asked of `openat` less `umask`, and `uid`/`gid` (open(2): the creator's
    /// effective ids, or the directory's group below a setgid directory). Nil when that is not known
    /// for sure — a default ACL on the root decides modes instead of the umask — and then every file
    /// gets its owner and mode set explicitly.
    struct Creation: Equatable {
        let umask: mode_t
        let uid: UInt32
        let gid: UInt32
    }

    /// Set once by the extractor before any file is created (`learnCreation(rootFD:)`).
    private(set) var creation: Creation?

    /// Learns `creation` for files created below the directory `rootFD`. Every directory below it is
    /// made by the extractor, so it passes the root's setgid bit and group down unchanged until the
    /// directories' own modes are applied at the end, after every file.
    func learnCreation(rootFD: Int32) {
        creation = nil
        var st = stat()
        guard fstat(rootFD, &st) == 0, let mask = Self.processUmask() else { return }
        guard ExtendedAttributes.has(fd: rootFD, name: ACLXattr.defaultName) == false else { return }
        let gid = UInt32(st.st_mode) & UInt32(S_ISGID) != 0 ? UInt32(st.st_gid) : UInt32(getegid())
        creation = Creation(umask: mask, uid: UInt32(geteuid()), gid: gid)
    }

    /// The process's umask, read from /proc/self/status (Linux 4.7+) so that no other thread sees it
    /// change, as it would with umask(2) set-and-restore; nil where that line is missing.
    static func processUmask() -> mode_t? {
        // Files in /proc report a size of 0: read until end of file.
        let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var status: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while status.count < 1 << 16 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            status += chunk[0..<n]
        }
        for line in String(decoding: status, as: UTF8.self).split(separator: "\n") where line.hasPrefix("Umask:") {
            return mode_t(line.dropFirst("Umask:".count).trimmingCharacters(in: .whitespaces), radix: 8)
        }
        return nil
    }

    /// The permission bits to create a regular file with: its archived ones (never the special bits,
    /// which `apply` sets after the owner). The descriptor `openat` returns may write whatever the mode.
    static func creationMode(for entry: ManifestEntry) -> mode_t {
        mode_t(entry.mode & 0o777)
    }

    var collected: (notices: [RestoreNotice], total: Int) {
        lock.lock(); defer { lock.unlock() }
        return (notices, noticeCount)
    }

    func notice(_ kind: RestoreNotice.Kind, _ path: String, _ detail: String) {
        lock.lock(); defer { lock.unlock() }
        noticeCount += 1
        if notices.count < Self.maxNotices { notices.append(RestoreNotice(kind: kind, path: path, detail: detail)) }
    }

    /// The uid and gid to give `entry` here, or nil when owners are not set.
    func owner(for entry: ManifestEntry) -> (uid: UInt32, gid: UInt32)? {
        guard setsOwners else { return nil }
        guard policy == .automatic else { return (entry.uid, entry.gid) }
        return (entry.userName.flatMap { localUID($0) } ?? entry.uid, entry.groupName.flatMap { localGID($0) } ?? entry.gid)
    }

    /// The local id of a user or group name, looked up once per name (owners and ACL entries alike;
    /// ACLs are applied on the writer lanes, hence the lock).
    private func localUID(_ name: String) -> UInt32? {
        lock.lock(); defer { lock.unlock() }
        if let known = userIDs[name] { return known }
        let id = OwnerNames.uid(named: name)
        userIDs[name] = .some(id)
        return id
    }

    private func localGID(_ name: String) -> UInt32? {
        lock.lock(); defer { lock.unlock() }
        if let known = groupIDs[name] { return known }
        let id = OwnerNames.gid(named: name)
        groupIDs[name] = .some(id)
        return id
    }

    /// Sets owner, mode, attributes, ACLs, the shrink cut and times on the open restored file or
    /// directory `fd`. Throws only for what every restore must manage (mode, times, the cut);
    /// the rest is reported. `created`: a regular file just created with `creationMode(for:)` below
    /// the root of `learnCreation`; owner and mode calls that would change nothing are skipped then
    /// (two of the five system calls a small file costs; issue 17's profile).
    func apply(fd: Int32, entry: ManifestEntry, owner: (uid: UInt32, gid: UInt32)?, path: String, created: Bool = false) throws {
        if entry.flags.contains(.shrank), let readSize = entry.readSize {
            guard ftruncate(fd, off_t(readSize)) == 0 else { throw SystemError(operation: "truncate", path: path, errno: errno) }
        }
        let known = created ? creation : nil
        if let owner, known.map({ $0.uid != owner.uid || $0.gid != owner.gid }) ?? true, fchown(fd, uid_t(owner.uid), gid_t(owner.gid)) != 0 {
            notice(.owner, entry.path, "owner \(owner.uid):\(owner.gid) not set: \(String(cString: strerror(errno)))")
        }
        let modeIsSet = known.map { entry.mode & 0o7000 == 0 && Self.creationMode(for: entry) & $0.umask == 0 } ?? false
        if !modeIsSet {
            guard fchmod(fd, mode_t(entry.mode)) == 0 else { throw SystemError(operation: "chmod", path: path, errno: errno) }
        }
        if entry.mode & 0o7000 != 0 {
            var st = stat()
            if fstat(fd, &st) == 0, UInt16(st.st_mode) & 0o7000 != entry.mode & 0o7000 {
                notice(.specialBits, entry.path, "mode \(String(entry.mode, radix: 8)) became \(String(UInt16(st.st_mode) & 0o7777, radix: 8)): the system keeps setuid/setgid bits only for a file's owner or a member of its group")
            }
        }
        for x in entry.xattrs {
            if let code = ExtendedAttributes.set(fd: fd, name: x.displayName, value: x.value) {
                notice(.extendedAttribute, entry.path, "extended attribute \(x.displayName) not set: \(String(cString: strerror(code)))")
            }
        }
        for (acl, name) in [(entry.accessACL, ACLXattr.accessName), (entry.defaultACL, ACLXattr.defaultName)] where !acl.isEmpty {
            if let code = ExtendedAttributes.set(fd: fd, name: name, value: ACLXattr.encode(resolved(acl))) {
                notice(.acl, entry.path, "\(name == ACLXattr.accessName ? "access" : "default") ACL not set: \(String(cString: strerror(code)))")
            }
        }
        guard futimens(fd, SafeExtractor.times(entry)) == 0 else { throw SystemError(operation: "set times of", path: path, errno: errno) }
    }

    /// Named ACL entries get local ids by name under the automatic policy, as owners do.
    private func resolved(_ acl: [ACLEntry]) -> [ACLEntry] {
        guard policy == .automatic else { return acl }
        return acl.map { e in
            var e = e
            if e.tag == .user, !e.name.isEmpty, let id = localUID(e.name) { e.id = id }
            if e.tag == .group, !e.name.isEmpty, let id = localGID(e.name) { e.id = id }
            return e
        }
    }

    /// A restored symlink: its owner (the mode of a link means nothing on Linux), and a notice for
    /// attributes, which Linux does not let users set on links.
    func applySymlink(parent: Int32, name: String, entry: ManifestEntry, owner: (uid: UInt32, gid: UInt32)?) {
        if let owner, NameCodec.withCString(name, { fchownat(parent, $0, uid_t(owner.uid), gid_t(owner.gid), AT_SYMLINK_NOFOLLOW) }) != 0 {
            notice(.owner, entry.path, "owner \(owner.uid):\(owner.gid) not set: \(String(cString: strerror(errno)))")
        }
        if !entry.xattrs.isEmpty {
            notice(.extendedAttribute, entry.path, "\(entry.xattrs.count) extended attribute(s) of a symlink not set: this version does not set attributes on links")
        }
    }
}
