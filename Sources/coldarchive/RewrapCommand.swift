import ArgumentParser
import ColdArchive

struct RewrapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewrap",
        abstract: "Re-wrap archives' file keys to the keyring's current keys (active key and standing recipients).",
        discussion: """
        The payload, trailer and signature are copied byte for byte: the archive keeps its identity and auditors' \
        checks still hold. Each new file is verified before it atomically replaces the old one.
        """)

    @Argument(help: "Archive files.")
    var files: [String]

    @OptionGroup var keyring: KeyringOption

    @Flag(name: .long, help: "Print one JSON object per archive (JSON Lines).")
    var json = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("name at least one archive FILE") }
    }

    func run() throws {
        let ring = try keyring.open()
        for file in files {
            let report = try Rewrapper.rewrap(path: file, keyring: ring)
            if json {
                try Output.jsonLine(report)
                continue
            }
            guard report.rewritten else {
                print("unchanged \(file): already wrapped to the current keys (\(report.recipients.joined(separator: ", ")))")
                continue
            }
            print("rewrapped \(file): \(report.previousRecipients.joined(separator: ", ")) -> \(report.recipients.joined(separator: ", ")) (archive digest \(report.archiveDigest) unchanged)\(report.sidecar.map { "; \(file).minisig \($0)" } ?? "")")
        }
    }
}
