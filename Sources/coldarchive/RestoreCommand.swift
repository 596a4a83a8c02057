import ArgumentParser
import ColdArchive

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Verify the whole archive, then restore it into a directory.",
        discussion: """
        Nothing is written until the signature, every chunk hash and the manifest have been checked. \
        Entries are extracted into a staging directory inside the target and moved into place at the end; \
        if anything fails the target is left as it was. Existing entries are never replaced. \
        The archive must be signed by one of the keyring's signing keys, or by --trust (e.g. when an escrow holder restores).
        """)

    @Argument(help: "The archive file.")
    var file: String

    @Option(name: .long, help: "Directory to restore into (created if missing; must be empty unless --force).")
    var to: String

    @OptionGroup var keyring: KeyringOption

    @OptionGroup var trust: TrustOption

    @Flag(name: .long, help: "Restore into a non-empty directory (existing entries are still never replaced).")
    var force = false

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    @Flag(name: .long, help: "Also recompute each file's BLAKE2b-256 and compare it with the manifest, as 'verify --deep' does (every byte is authenticated by its chunk's AEAD tag and the signed chunk table either way).")
    var checkContent = false

    func run() throws {
        let report = try Restorer.restore(archivePath: file, to: to, keyring: try keyring.open(),
                                          trusting: try trust.keys(), force: force, checkContent: checkContent)
        if json { return try Output.json(report) }
        print("restored \(report.entries) entries (\(Output.bytes(report.contentBytes)) of content) into \(report.target): \(report.topLevel.joined(separator: ", "))")
    }
}
