import ArgumentParser
import ColdArchive

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show an archive's plaintext header and totals; needs no key.",
        discussion: "This checks the archive's structure only. Use 'verify --trust' to check its integrity and signer.")

    @Argument(help: "The archive file.")
    var file: String

    @Flag(name: .long, help: "Print as JSON.")
    var json = false

    func run() throws {
        let summary = try ArchiveFile(path: file).summary
        if json { try Output.json(summary) } else { Output.summary(summary) }
    }
}
