import ArgumentParser
import ColdArchive
import Foundation

struct StampCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stamp",
        abstract: "Time-stamp existing archives with an RFC 3161 authority: the token goes to ARCHIVE.tsr (as create --tsa does).",
        discussion: """
        Stamps each archive's digest (FORMAT.md §5, "Time-stamp sidecar"); needs no key. An archive that already \
        has a .tsr is left as it is: the earlier time is the stronger proof. Exit status 0 when every archive was \
        stamped, 3 when one could not be.
        """)

    @Option(name: .long, help: ArgumentHelp("The time-stamping authority's URL (http:// or https://).", valueName: "URL"))
    var tsa: String

    @Argument(help: "Archive files.")
    var archives: [String]

    func validate() throws {
        _ = try TimestampClient.authority(tsa)
    }

    func run() throws {
        let authority = try TimestampClient.authority(tsa)
        var failed = 0
        for archive in archives {
            do {
                guard !FileManager.default.fileExists(atPath: archive + Timestamp.suffix) else {
                    throw TimestampClient.Failure(description: "it is already time-stamped (\(archive)\(Timestamp.suffix)); a stamp is never replaced: the earlier time is the stronger proof")
                }
                let digest = try ArchiveFile(path: archive).summary.archiveDigest
                let time = try TimestampClient.stamp(archive: archive, digestHex: digest, authority: authority)
                print(TimestampClient.stampedLine(authority: tsa, time: time, archive: archive))
            } catch {
                failed += 1
                Output.error("\(archive): \(error)")
            }
        }
        if failed > 0 { throw ExitCode(FailureKind.other.rawValue) }
    }
}
