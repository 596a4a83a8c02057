import ArgumentParser
import ColdArchive
import Foundation

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the archive's manifest: every entry with type, mode, size, time and content hash.",
        discussion: """
        In the text listing, names are escaped as GNU tar and 'ls -b' do (\\\\, \\n, \\t, \\r, octal \\ooo for other \
        control characters), so a name cannot forge a line; --json gives the exact names.
        """)

    @Argument(help: "The archive file.")
    var file: String

    @OptionGroup var keyring: KeyringOption

    @OptionGroup var trust: TrustOption

    @Flag(name: .long, help: "Print one JSON object per line.")
    var json = false

    struct Row: Encodable {
        var type: String
        /// Absent, and `pathHex` given instead, when the name is not valid UTF-8 (FORMAT.md §18).
        var path: String?
        var pathHex: String?
        var mode: String
        var size: UInt64
        var mtime: String
        var blake2b: String?
        var link: String?
        var linkHex: String?
        // Format v2 (absent for v1 archives, which keep no owners or attributes).
        var uid: UInt32?
        var gid: UInt32?
        var user: String?
        var group: String?
        var xattrs: [String: String]?
        var acl: String?
        var defaultACL: String?
        var changedWhileRead: Bool?
        var readSize: UInt64?
    }

    /// An ACL in the short text form getfacl and star use: `user::rw-,user:alice:r--,…`.
    static func aclText(_ acl: [ACLEntry]) -> String? {
        guard !acl.isEmpty else { return nil }
        return acl.map { e in
            let tag = ["userObj": "user", "user": "user", "groupObj": "group", "group": "group", "mask": "mask", "other": "other"]["\(e.tag)"] ?? "?"
            let qualifier = e.tag == .user || e.tag == .group ? (e.name.isEmpty ? String(e.id) : e.name) : ""
            let r = e.permissions & 4 != 0 ? "r" : "-", w = e.permissions & 2 != 0 ? "w" : "-", x = e.permissions & 1 != 0 ? "x" : "-"
            return "\(tag):\(qualifier):\(r)\(w)\(x)"
        }.joined(separator: ",")
    }

    func run() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let formatter = ISO8601DateFormatter()
        try Lister.list(path: file, keyring: try keyring.open(), trusting: try trust.keys(), withVersion: { entry, version in
            // Full precision: seconds from the formatter, then all nine digits of nanoseconds.
            let seconds = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(entry.mtime)))
            let time = seconds.dropLast() + "." + String(format: "%09u", entry.mtimeNanoseconds) + "Z"
            let hash = entry.kind == .file ? entry.contentHashHex : nil
            let link = entry.linkTarget.isEmpty ? nil : entry.linkTarget
            let mode = String(entry.mode, radix: 8)
            if json {
                var row = Row(type: entry.kind.name, path: entry.path, mode: mode, size: entry.size, mtime: time, blake2b: hash, link: link)
                if NameCodec.hasEscapes(entry.path) { row.path = nil; row.pathHex = NameCodec.hex(entry.path) }
                if let l = link, NameCodec.hasEscapes(l) { row.link = nil; row.linkHex = NameCodec.hex(l) }
                if version >= 2 {
                    row.uid = entry.uid
                    row.gid = entry.gid
                    row.user = entry.userName
                    row.group = entry.groupName
                    if !entry.xattrs.isEmpty {
                        row.xattrs = Dictionary(entry.xattrs.map { ($0.displayName, Data($0.value).base64EncodedString()) }) { a, _ in a }
                    }
                    row.acl = Self.aclText(entry.accessACL)
                    row.defaultACL = Self.aclText(entry.defaultACL)
                    if entry.flags.contains(.changedWhileRead) { row.changedWhileRead = true }
                    row.readSize = entry.readSize
                }
                print(String(decoding: try encoder.encode(row), as: UTF8.self))
            } else {
                let type = ["file": "-", "directory": "d", "symlink": "l", "hardlink": "h"][entry.kind.name] ?? "?"
                // Names escaped as GNU tar and `ls -b` do: a name cannot forge a line or move the cursor.
                let suffix = link.map { entry.kind == .symlink ? " -> \(DisplayName.escaped($0))" : " => \(DisplayName.escaped($0))" } ?? ""
                let digest = hash ?? String(repeating: "-", count: 64)
                print("\(type) \(mode.leftPad(4)) \(String(entry.size).leftPad(12)) \(time) \(digest) \(DisplayName.escaped(entry.path))\(suffix)")
            }
        })
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
