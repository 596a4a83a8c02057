import ArgumentParser
import ColdArchive

struct ColdArchiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coldarchive",
        abstract: "Encrypted, signed, verifiable cold archives of CRM data.",
        discussion: """
        Exit codes: 0 ok; 1 integrity failure (damaged, truncated, forged, or signed by an untrusted key); \
        2 usage; 3 any other error (I/O, missing key, target not empty).
        The archive format is specified in docs/FORMAT.md.
        """,
        subcommands: [KeysCommand.self, CreateCommand.self, InspectCommand.self, VerifyCommand.self,
                      ListCommand.self, RestoreCommand.self])
}

/// `--keyring DIR`, shared by every command that needs keys.
struct KeyringOption: ParsableArguments {
    @Option(name: .long, help: "Keyring directory (default: $COLDARCHIVE_KEYRING, else ./keys).")
    var keyring: String?

    var directory: String { keyring ?? Keyring.defaultDirectory }

    func open() throws -> Keyring { try Keyring(directory: directory) }
}
