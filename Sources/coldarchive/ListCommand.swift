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

    /// An ACL in the short text form getfacl and star use: `user::rw-,user:alice:r--,…`.
    static func aclText(_ acl: [ACLEntry]) -> String? {
        guard !acl.isEmpty else { return nil }
        return acl.map { e in
            let tag: String
            switch e.tag {
            case .userObj, .user: tag = "user"
            case .groupObj, .group: tag = "group"
            case .mask: tag = "mask"
            case .other: tag = "other"
            }
            let qualifier = e.tag == .user || e.tag == .group ? (e.name.isEmpty ? String(e.id) : e.name) : ""
            return "\(tag):\(qualifier):\(e.permissionText)"
        }.joined(separator: ",")
    }

    func run() throws {
        var printer = ListPrinter()
        defer { printer.flush() }
        let ring = try keyring.open()
        try Lister.list(path: file, keyring: ring, trusting: try trust.keys(), withVersion: { entry, version in
            if json { printer.json(entry, version: version) } else { printer.text(entry) }
        })
        printer.flush()
        // An archive in a vault: its decryption goes into the signed journal.
        VaultRecords.decrypted(file: file, purpose: "list", keyring: ring)
    }
}

