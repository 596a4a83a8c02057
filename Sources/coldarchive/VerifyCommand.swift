import ArgumentParser
import ColdArchive

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an archive's integrity and signer.",
        discussion: """
        With --trust (auditors): needs only the signing public key; checks the structure, the signature over \
        header and trailer, and every chunk's hash, and reads no customer data.
        With --chain DIR, signing key rotation statements are followed from the --trust key. \
        With --deep (key holders): additionally decrypts and decompresses everything and checks every entry \
        against the manifest; writes nothing.
        """)

    @Argument(help: "The archive file.")
    var file: String

    @OptionGroup var trust: TrustOption

    @Flag(name: .long, help: "Decrypt and check every entry (needs the keyring's secret keys).")
    var deep = false

    @OptionGroup var keyring: KeyringOption

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        if trust.trust == nil && !deep { throw ValidationError("pass --trust SIGNING_PUBLIC_KEY_FILE, or --deep to check with the keyring") }
        if trust.chain != nil && trust.trust == nil { throw ValidationError("--chain follows statements from the key given with --trust") }
    }

    func run() throws {
        let report: VerificationReport
        if deep {
            report = try Verifier.verifyDeep(path: file, keyring: try keyring.open(), trusting: try trust.keys())
        } else {
            report = try Verifier.verify(path: file, trusting: try trust.keys() ?? [])
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
