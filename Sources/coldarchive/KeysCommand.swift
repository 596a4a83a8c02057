import ArgumentParser
import ColdArchive

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Manage the keyring.", subcommands: [Init.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a keyring: the site signing key (Ed25519) and a first encryption key (X25519).",
            discussion: "Secret key files are written with mode 0600, atomically. Give auditors KEYRING/signing.pub only.")

        @OptionGroup var keyring: KeyringOption

        func run() throws {
            let ring = try Keyring.initialize(at: keyring.directory)
            let signing = try ring.signingPublicKey()
            print("created keyring in \(ring.directory)")
            print("  signing key      \(signing.fingerprint)  (\(ring.signingPublicKeyPath): give this file to auditors)")
            print("  encryption key   \(ring.activeEncryptionKeyID)  (active)")
            print("back up \(ring.directory) to offline media: without its .key files no archive can be restored.")
        }
    }
}
