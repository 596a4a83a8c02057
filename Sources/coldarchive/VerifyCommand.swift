import ArgumentParser
import ColdArchive

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an archive's integrity and signer.",
        discussion: """
        With --trust (auditors): needs only the signing public key; checks the structure, the signature over \
        header and trailer, and every chunk's hash, and reads no customer data.
        With --deep (key holders): additionally decrypts and decompresses everything and checks every entry \
        against the manifest; writes nothing.
        """)

    @Argument(help: "The archive file.")
    var file: String

    @Option(name: .long, help: "Signing public key file (e.g. KEYRING/signing.pub) that must have signed the archive.")
    var trust: String?

    @Flag(name: .long, help: "Decrypt and check every entry (needs the keyring's secret keys).")
    var deep = false

    @OptionGroup var keyring: KeyringOption

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        if trust == nil && !deep { throw ValidationError("pass --trust SIGNING_PUBLIC_KEY_FILE, or --deep to check with the keyring") }
        if trust != nil && deep { throw ValidationError("--deep checks against the keyring's own signing key; do not combine it with --trust") }
    }

    func run() throws {
        let report: VerificationReport
        if let trust {
            report = try Verifier.verify(path: file, trusting: try SigningPublicKey(contentsOf: trust))
        } else {
            report = try Verifier.verifyDeep(path: file, keyring: try keyring.open())
        }
        if json {
            try Output.json(report)
        } else {
            print("OK \(file): intact, signed by \(report.signer)")
            print("  \(report.chunksChecked) chunks hashed (\(Output.bytes(report.bytesHashed))), archive digest \(report.summary.archiveDigest)")
            if let entries = report.entriesChecked, let bytes = report.contentBytesChecked {
                print("  \(entries) entries decrypted and checked against the manifest (\(Output.bytes(bytes)) of content)")
            }
        }
    }
}
