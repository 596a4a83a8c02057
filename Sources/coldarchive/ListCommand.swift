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
        var path: String
        var mode: String
        var size: UInt64
        var mtime: String
        var blake2b: String?
        var link: String?
    }

    func run() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let formatter = ISO8601DateFormatter()
        try Lister.list(path: file, keyring: try keyring.open(), trusting: try trust.keys()) { entry in
            // Full precision: seconds from the formatter, then all nine digits of nanoseconds.
            let seconds = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(entry.mtime)))
            let time = seconds.dropLast() + "." + String(format: "%09u", entry.mtimeNanoseconds) + "Z"
            let hash = entry.kind == .file ? entry.contentHashHex : nil
            let link = entry.linkTarget.isEmpty ? nil : entry.linkTarget
            let mode = String(entry.mode, radix: 8)
            if json {
                let row = Row(type: entry.kind.name, path: entry.path, mode: mode, size: entry.size, mtime: time, blake2b: hash, link: link)
                print(String(decoding: try encoder.encode(row), as: UTF8.self))
            } else {
                let type = ["file": "-", "directory": "d", "symlink": "l", "hardlink": "h"][entry.kind.name] ?? "?"
                // Names escaped as GNU tar and `ls -b` do: a name cannot forge a line or move the cursor.
                let suffix = link.map { entry.kind == .symlink ? " -> \(DisplayName.escaped($0))" : " => \(DisplayName.escaped($0))" } ?? ""
                let digest = hash ?? String(repeating: "-", count: 64)
                print("\(type) \(mode.leftPad(4)) \(String(entry.size).leftPad(12)) \(time) \(digest) \(DisplayName.escaped(entry.path))\(suffix)")
            }
        }
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
