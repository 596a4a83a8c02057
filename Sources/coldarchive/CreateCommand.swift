import ArgumentParser
import ColdArchive

struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Archive source directories into one encrypted, signed archive file.",
        discussion: """
        The file is written under a temporary name and appears under --out only when it is complete. If --out lies \
        inside a source, the archive being written is left out of it, with a warning.
        """)

    @Option(name: .long, help: "The archive file to write; it must not exist.")
    var out: String

    @OptionGroup var keyring: KeyringOption

    @Option(name: .long, help: "A label stored in the plaintext header (visible without a key).")
    var label: String?

    @Option(name: .long, help: "zstd compression level.")
    var level: Int32 = 3

    @Flag(name: .long, help: "Print the summary as JSON.")
    var json = false

    @Option(name: .customLong("import"), help: "A vendor export (.zip, .tar, .tar.gz, …) to archive as a directory named after it; repeatable. Unsafe entries are refused with a list.")
    var imports: [String] = []

    @Argument(help: "Directories or files to archive.")
    var sources: [String] = []

    func validate() throws {
        if sources.isEmpty && imports.isEmpty { throw ValidationError("name at least one SOURCE to archive, or --import FILE") }
    }

    func run() throws {
        let ring = try keyring.open()
        for warning in ring.overdueWarnings() { Output.warning(warning) }
        var options = CreateOptions(sources: sources, output: out, label: label)
        options.compressionLevel = level
        options.imports = imports
        let report = try ArchiveCreator.create(options, signer: try ring.signingKey(), recipients: try ring.recipientPublicKeys())
        for warning in report.warnings { Output.warning(warning) }
        if json {
            try Output.json(report.summary)
        } else {
            print("created \(out)")
            Output.summary(report.summary)
        }
    }
}
