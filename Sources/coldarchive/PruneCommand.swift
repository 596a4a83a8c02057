import ArgumentParser
import ColdArchive
import Foundation

struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove the archives of a series that the retention rules no longer keep, journaling each removal.",
        discussion: """
        Decides from the archives' signed periods and sequence numbers only, never from file names or times. \
        Always kept: the series' latest archive; every archive whose retention (its signed retain-until, or a \
        later date the journal extended it to) has not ended; and every archive a kept incremental or \
        differential rests on. Each removal is first recorded in the signed vault journal (the audit then shows \
        the period as explained, docs/OPERATIONS.md), then the archive and its sidecars are removed. \
        --dry-run prints the plan with the reason for each archive kept.
        """)

    @Option(name: .long, help: "The vault directory.")
    var vault: String

    @Option(name: .long, help: "The series to prune.")
    var series: String

    @Option(name: .long, help: ArgumentHelp("Keep the last archive of each of the N most recent months.", valueName: "N"))
    var keepMonthly = 0

    @Option(name: .long, help: ArgumentHelp("Keep the last archive of each of the N most recent years.", valueName: "N"))
    var keepYearly = 0

    @Option(name: .long, help: ArgumentHelp("Keep every archive whose period begins within SPAN of the latest one: 1y, 18m, 90d.", valueName: "SPAN"))
    var keepWithin: String?

    @Flag(name: .long, help: "Print the plan; remove nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Print the plan as JSON.")
    var json = false

    @OptionGroup var keyring: KeyringOption

    func validate() throws {
        if let keepWithin, RetentionPolicy.span(keepWithin) == nil { throw ValidationError("--keep-within '\(keepWithin)' is not a span: 1y, 18m, 90d") }
        if keepMonthly < 0 || keepYearly < 0 { throw ValidationError("--keep-monthly and --keep-yearly count archives: 0 or more") }
        if keepMonthly == 0 && keepYearly == 0 && keepWithin == nil {
            throw ValidationError("give at least one rule (--keep-monthly N, --keep-yearly N, --keep-within SPAN): without one, prune would remove everything")
        }
    }

    func run() throws {
        let opened = try Vault.open(vault)
        let policy = RetentionPolicy(monthly: keepMonthly, yearly: keepYearly, within: keepWithin.flatMap(RetentionPolicy.span))
        let ring = try keyring.open()
        let trusted = try ring.trustedSigningKeys()
        let plan = dryRun ? try opened.planPrune(series: series, policy: policy, trusting: trusted)
                          : try opened.prune(series: series, policy: policy, signer: try ring.signingKey(), trusting: trusted)
        if json { return try Output.json(plan) }
        for d in plan.decisions {
            let verdict = d.kept ? "keep  " : (dryRun ? "would remove" : "removed")
            print("\(verdict)  \((d.file as NSString).lastPathComponent)  \(d.mode)\(d.kept ? "  — " + d.keptBecause.joined(separator: "; ") : "")")
        }
        for file in plan.finished { print("\(dryRun ? "would finish removing" : "finished removing")  \((file as NSString).lastPathComponent)  (an earlier prune journaled it)") }
        let removed = plan.removed.count
        print("\(dryRun ? "dry run: would remove" : "removed") \(removed) of \(plan.decisions.count) archive\(plan.decisions.count == 1 ? "" : "s") of series '\(series)'\(dryRun || removed == 0 ? "" : "; each removal is in the vault journal")")
    }
}
