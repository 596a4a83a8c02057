import ArgumentParser
import ColdArchive
import ColdArchiveCatalog
import Foundation

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Say what a restore of a series at a period needs: which archives, how many bytes, and how long.",
        discussion: """
        Needs no secret key (the chain is followed through the signed headers). The time is estimated from the \
        restore speed this vault's catalog has measured (the median of its last restores); a restore also \
        verifies every archive of the chain whole before it writes, which the estimate includes as reading \
        every byte of each.
        """)

    @Option(name: .long, help: "The vault directory.")
    var vault: String

    @Option(name: .long, help: "The series.")
    var series: String

    @Option(name: .long, help: ArgumentHelp("The period to restore (default: the series' last archive).", valueName: "PERIOD"))
    var period: String?

    @Option(name: .long, help: ArgumentHelp("Or the archive (file name or archive id).", valueName: "ID"))
    var archive: String?

    @OptionGroup var trust: TrustOption

    @OptionGroup var keyring: KeyringOption

    @Flag(name: .long, help: "Print the plan as JSON.")
    var json = false

    struct Plan: Encodable {
        struct Step: Encodable {
            var file: String
            var mode: String
            var period: String
            var fileBytes: UInt64
            var contentBytes: UInt64
        }
        var series: String
        var archives: [Step]
        var fileBytes: UInt64
        var contentBytes: UInt64
        /// Content bytes per second the catalog measured; nil when no restore was measured yet.
        var measuredBytesPerSecond: Double?
        var estimatedSeconds: Double?
    }

    func validate() throws {
        if period != nil && archive != nil { throw ValidationError("--period and --archive exclude each other") }
    }

    func run() throws {
        let opened = try Vault.open(vault)
        let trusted = try trust.keys(orFrom: keyring)
        let chain = try PointInTime.chain(vault: opened, series: series, period: period, archive: archive, trusting: trusted)
        var plan = Plan(series: series, archives: [], fileBytes: 0, contentBytes: 0)
        for path in chain {
            let summary = try ArchiveFile(path: path).summary
            plan.archives.append(.init(file: (path as NSString).lastPathComponent, mode: summary.backupMode ?? "full",
                                       period: summary.period ?? "?", fileBytes: summary.fileSize, contentBytes: summary.contentBytes))
            plan.fileBytes += summary.fileSize
            plan.contentBytes += summary.contentBytes
        }
        let catalogPath = "\(opened.root)/\(Catalog.fileName)"
        if FileManager.default.fileExists(atPath: catalogPath), let speed = try? Catalog.open(path: catalogPath).measuredRestoreSpeed() {
            plan.measuredBytesPerSecond = speed
            // What a restore writes is at most every archive's content; it reads every byte once to verify.
            plan.estimatedSeconds = Double(plan.contentBytes) / speed
        }
        if json { return try Output.json(plan) }
        print("restore of series '\(series)'\(period.map { " at \($0)" } ?? archive.map { " to \($0)" } ?? " at its latest archive") needs \(chain.count) archive\(chain.count == 1 ? "" : "s"), each verified whole first:")
        for step in plan.archives {
            print("  \(step.file)  \(step.mode)  \(step.period)  \(Output.bytes(step.fileBytes))")
        }
        print("to read: \(Output.bytes(plan.fileBytes)); content in those archives: \(Output.bytes(plan.contentBytes))")
        if let seconds = plan.estimatedSeconds, let speed = plan.measuredBytesPerSecond {
            print(String(format: "estimated time: %.0f s, at the %.1f MB/s this vault's restores have measured", max(1, seconds), speed / 1e6))
        } else {
            print("estimated time: unknown — no restore from this vault has been measured yet (restore once, or run a drill)")
        }
    }
}
