import ArgumentParser
import ColdArchive
import Foundation

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show an archive's plaintext header and totals; needs no key.",
        discussion: "This checks the archive's structure only. Use 'verify --trust' to check its integrity and signer.")

    @Argument(help: "The archive files.")
    var files: [String] = []

    @Flag(name: .long, help: "Print as JSON (one object per archive and line when several are given).")
    var json = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("name at least one archive FILE") }
    }

    func run() throws {
        guard files.count > 1 else {
            let summary = try ArchiveFile(path: files[0]).summary
            if json { try Output.json(summary) } else { Output.summary(summary) }
            return
        }
        // Several: each is shown, whatever the others gave; the first failure sets the exit status.
        var worst: Int32 = 0
        for file in files {
            do {
                let summary = try ArchiveFile(path: file).summary
                if json {
                    try Output.jsonLine(summary)
                } else {
                    print("== \(file)")
                    Output.summary(summary)
                }
            } catch let error as ColdArchiveError {
                Output.error("\(file): \(error.description)")
                if worst == 0 { worst = error.kind.rawValue }
            }
        }
        if worst != 0 { throw ExitCode(worst) }
    }
}
