import ArgumentParser
import ColdArchive
import ColdArchiveParity

struct RewrapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewrap",
        abstract: "Re-wrap archives' file keys to the keyring's current keys (active key and standing recipients).",
        discussion: """
        The payload, trailer and signature are copied byte for byte: the archive keeps its identity and auditors' \
        checks still hold. Each new file is verified before it atomically replaces the old one. A parity sidecar \
        (FILE.parity) no longer fits the new bytes: it is made again, at the same share, with the signing key.
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
            var parity: String?
            if report.rewritten {
                do {
                    if let made = try Parity.remake(for: file, signingKey: try ring.signingKey(), trusting: try ring.trustedSigningKeys()) {
                        parity = "made again (\(made.parityColumns) parity columns per stripe)"
                    }
                } catch {
                    Output.warning("\(file) was rewrapped, but its parity could not be made again: \(error). Until 'coldarchive parity create \(file)' succeeds, 'repair --parity' refuses the old parity")
                }
            }
            if json {
                try Output.jsonLine(report)
                continue
            }
            guard report.rewritten else {
                print("unchanged \(file): already wrapped to the current keys (\(report.recipients.joined(separator: ", ")))")
                continue
            }
            print("rewrapped \(file): \(report.previousRecipients.joined(separator: ", ")) -> \(report.recipients.joined(separator: ", ")) (archive digest \(report.archiveDigest) unchanged)\(report.sidecar.map { "; \(file).minisig \($0)" } ?? "")\(parity.map { "; \(file).parity \($0)" } ?? "")")
        }
    }
}
