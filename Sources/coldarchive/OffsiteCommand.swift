import ArgumentParser
import ColdArchive
import ColdArchiveS3
import Foundation

struct OffsiteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "offsite",
        abstract: "Object-store destinations: is Object Lock really enforced there?",
        subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a locked canary object and try to delete it: the store must refuse.",
            discussion: """
            Stores exist that accept Object Lock settings and do not enforce them, so nothing is taken on trust: \\
            a small object is written under PREFIX/.coldarchive-canary/ with COMPLIANCE retention for one day \\
            (--lock-for), its retention is read back per version, and a delete of that very version must be \\
            refused and the version still be there. A plain DELETE on a versioned bucket only adds a delete \\
            marker, so versions are checked, not listings. The canary stays (it is locked): a few hundred bytes \\
            a check. What it proves and what it does not: docs/OFFSITE.md "What the canary proves". \\
            Exit status: 0 enforced, 1 not enforced, 2 usage, 3 the store could not be reached.
            """)

        @Argument(help: "s3://BUCKET/PREFIX")
        var destination: String

        @OptionGroup var s3: S3Options

        @Option(name: .customLong("lock-for"), help: ArgumentHelp("How long the canary stays locked, in seconds.", valueName: "SECONDS"))
        var lockFor: Int = 86_400

        @Flag(name: .long, help: "Print the report as JSON.")
        var json = false

        func validate() throws {
            if S3Location(url: destination) == nil { throw ValidationError("'\(destination)' is not s3://BUCKET/PREFIX") }
            if lockFor < 1 { throw ValidationError("--lock-for takes a number of seconds, at least 1") }
        }

        func run() throws {
            let location = S3Location(url: destination)!
            let report = try OffsiteCheck.check(location, client: try s3.client(), lockFor: TimeInterval(lockFor))
            if json {
                try Output.jsonLine(report)
            } else if report.enforced {
                print("ENFORCED \(location): the canary \(report.canary) (version \(report.versionID ?? "-")) is locked \(report.retention ?? ""), and a delete of that version was refused")
            } else {
                print("NOT ENFORCED \(location): \(report.problem ?? "unknown")")
                print("  copies here are not immutable: enable Object Lock on the bucket (it needs versioning), or use a store that enforces it")
            }
            if !report.enforced { throw ExitCode(FailureKind.integrity.rawValue) }
        }
    }
}
