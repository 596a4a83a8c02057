import ArgumentParser
import Foundation
import ColdArchive

struct ColdArchiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coldarchive",
        abstract: "Encrypted, signed, verifiable cold archives of CRM data.",
        discussion: """
        Exit codes: 0 ok; 1 integrity failure (damaged, truncated, forged, or signed by an untrusted key); \
        2 usage; 3 any other error (I/O, missing key, wrong passphrase, target not empty); 4 (create) the archive \
        is complete and valid, but some sources could not be archived exactly, it could not be time-stamped, or a copy (--copies) failed.
        The archive format is specified in docs/FORMAT.md; keys and custody in docs/KEYS.md.
        """,
        version: "\(ArchiveCreator.creatorName) (writes archive format version \(ArchiveCreator.formatVersion))",
        subcommands: [KeysCommand.self, CreateCommand.self, StampCommand.self, InspectCommand.self, VerifyCommand.self, PushCommand.self, ScrubCommand.self, RepairCommand.self, ParityCommand.self, OffsiteCommand.self,
                      ListCommand.self, RestoreCommand.self, PlanCommand.self, PruneCommand.self, RewrapCommand.self, VaultCommand.self, AuditCommand.self,
                      CatalogCommand.self])
}

/// `--keyring DIR` and `--passphrase-file FILE`, shared by every command that needs keys.
struct KeyringOption: ParsableArguments {
    @Option(name: .long, help: "Keyring directory (default: $COLDARCHIVE_KEYRING, else ./keys).")
    var keyring: String?

    @Option(name: .long, help: "File whose first line is the keyring's passphrase (else $COLDARCHIVE_PASSPHRASE, else a prompt on the terminal).")
    var passphraseFile: String?

    var directory: String { keyring ?? Keyring.defaultDirectory }

    /// The passphrase, from the file, the environment or the terminal, in that order; asked only
    /// when a protected secret key is actually needed.
    var passphraseSource: PassphraseSource {
        let file = passphraseFile
        let directory = self.directory
        return PassphraseSource {
            if let file { return try Passphrase.fromFile(file) }
            if let passphrase = try Passphrase.fromEnvironment() { return passphrase }
            return try Terminal.askPassphrase("Passphrase for keyring \(directory): ")
        }
    }

    func open() throws -> Keyring { try Keyring(directory: directory, passphrase: passphraseSource) }
}

/// `--trust FILE [--chain DIR]`: which signing keys an archive must be signed by.
struct TrustOption: ParsableArguments {
    @Option(name: .long, help: "Signing public key file to trust (e.g. KEYRING/signing.pub, as exported for auditors): what is checked must be signed by it, or by a key its --chain hands over to.")
    var trust: String?

    @Option(name: .long, help: "Directory of signing key rotation statements (KEYRING/signing-chain) to follow from --trust.")
    var chain: String?

    /// The trusted keys: --trust's (and its chain's), else the keyring's signing keys; an auditor without
    /// a keyring is told to pass --trust.
    func keys(orFrom keyring: KeyringOption) throws -> [SigningPublicKey] {
        if let keys = try keys() { return keys }
        guard FileManager.default.fileExists(atPath: "\(keyring.directory)/keyring.json") else {
            throw OperationError("pass --trust SIGNING_PUB (the site's signing public key, as an auditor holds it), or --keyring DIR", kind: .usage)
        }
        return try keyring.open().trustedSigningKeys()
    }

    /// The trusted keys, or nil when --trust was not given.
    func keys() throws -> [SigningPublicKey]? {
        guard let trust else { return nil }
        let first = try SigningPublicKey(contentsOf: trust)
        guard let chain else { return [first] }
        return try SigningKeyStatement.follow(from: first, statementsIn: chain)
    }
}
