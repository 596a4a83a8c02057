import ArgumentParser
import ColdArchive
import Foundation

struct VaultCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vault",
        abstract: "Make a vault of signed monthly (or weekly, daily) series, and read its journal.",
        discussion: """
        A vault is a directory — an offline disk, a NAS share — holding vault.json, a signed, hash-chained journal \
        (journal.log) and one folder per series: series/NAME/NAME.PERIOD.SEQUENCE.car. Archives go in with \
        'coldarchive create --vault DIR --series NAME'; 'coldarchive audit' checks the whole vault with the signing \
        public key alone. docs/FORMAT.md §19 specifies the layout and the journal; docs/AUDIT.md is the auditor's guide.
        """,
        subcommands: [Init.self, Log.self, Explain.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a vault (if DIR is not one yet) and add a series to it.",
            discussion: "Journal records are signed with the keyring's signing key (the custodian's keyring or an archiving host's export both hold it).")

        @Argument(help: "The vault directory (created if missing).")
        var directory: String

        @Option(name: .long, help: "A series to add: 1–64 of A–Z a–z 0–9 . _ -, the first a letter or digit.")
        var series: String?

        @Option(name: .long, help: "How often the series is cut: monthly, weekly (ISO 8601 weeks), daily or yearly.")
        var schedule: Schedule = .monthly

        @Option(name: .long, help: "The time zone its periods are calendar periods in (an IANA name).")
        var timeZone = "UTC"

        @Option(name: .long, help: "Which period a create without --period covers: previous (the last that ended: a monthly series cut in early December covers November), current, or none (--period required).")
        var periodFromDate: SeriesSettings.PeriodFromDate = .previous

        @OptionGroup var keyring: KeyringOption

        func run() throws {
            let ring = try keyring.open()
            let signer = try ring.signingKey()
            let vault: Vault
            if FileManager.default.fileExists(atPath: "\(directory)/\(Vault.settingsName)") {
                vault = try Vault.open(directory)
                guard series != nil else { throw VaultError("'\(directory)' is a vault already; pass --series NAME to add a series to it", kind: .usage) }
            } else {
                vault = try Vault.initialize(at: directory, signer: signer)
                print("made vault \(directory) (id \(vault.settings.id))")
            }
            if let series {
                let settings = try vault.addSeries(SeriesSettings(series: series, schedule: schedule, timeZone: timeZone, periodFromDate: periodFromDate),
                                                   signer: signer, trusting: try ring.trustedSigningKeys())
                print("added series \(series): \(settings.schedule.rawValue), periods in \(settings.timeZone), period from date: \(settings.periodFromDate.rawValue)")
            }
        }
    }

    struct Log: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the vault's journal, checking each record's signature and link.",
            discussion: "Exit status 1 when a line does not verify (each such line is shown with the reason).")

        @Option(name: .long, help: "The vault directory.")
        var vault: String

        @OptionGroup var trust: TrustOption

        @OptionGroup var keyring: KeyringOption

        @Flag(name: .long, help: "One JSON object per record (JSON Lines), with \"verified\" and \"problem\".")
        var json = false

        func run() throws {
            let opened = try Vault.open(vault)
            let trusted = try trust.keys(orFrom: keyring)
            var bad = 0
            try Journal.read(opened.journalPath, trusting: trusted) { line in
                if line.problem != nil { bad += 1 }
                if json {
                    try Output.jsonLine(LogLine(line: line.number, verified: line.problem == nil, problem: line.problem, record: line.record))
                } else if let r = line.record {
                    var what = [r.key, r.series, r.sequence.map { "sequence \($0)" }, r.period, r.file, r.archiveDigest.map { "digest \($0)" },
                                r.target.map { "to \($0)" }, r.purpose.map { "for \($0)" }, r.reason].compactMap { $0 }
                    if r.event == .seriesCreated { what += [r.schedule, r.timeZone].compactMap { $0 } }
                    print("\(r.n)  \(r.time)  \(r.host)  \(r.event.rawValue)  \(DisplayName.escaped(what.joined(separator: "  ")))")
                } else {
                    // What the line claims, for the auditor to see — escaped, and marked unverified.
                    let text = String(decoding: line.bytes.prefix(400), as: UTF8.self)
                    print("line \(line.number): NOT VERIFIED: \(line.problem ?? "")\n    it reads: \(DisplayName.escaped(text))")
                }
            }
            if bad > 0 { throw ExitCode(FailureKind.integrity.rawValue) }
        }

        struct LogLine: Encodable {
            var line: Int
            var verified: Bool
            var problem: String?
            var record: JournalRecord?
        }
    }

    struct Explain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record, signed in the journal, why a period of a series has no archive.",
            discussion: "The audit then shows the period as explained instead of missing. The record cannot be removed later without the audit seeing it.")

        @Option(name: .long, help: "The vault directory.")
        var vault: String

        @Option(name: .long, help: "The series.")
        var series: String

        @Option(name: .long, help: "The period without an archive.")
        var period: String

        @Option(name: .long, help: "Why (e.g. 'system migration: no data changed; ticket CHG-1234').")
        var reason: String

        @OptionGroup var keyring: KeyringOption

        func run() throws {
            let opened = try Vault.open(vault)
            let settings = try opened.series(series)
            guard let parsed = Period(period), parsed.schedule == settings.schedule else {
                throw VaultError("'\(period)' is not a \(settings.schedule.rawValue) period", kind: .usage)
            }
            guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw VaultError("give the reason: it is what the auditor reads", kind: .usage)
            }
            guard parsed <= settings.currentPeriod(at: Date()) else {
                throw VaultError("period \(parsed) has not begun yet: explain a period once it lacks an archive", kind: .usage)
            }
            if let covered = try opened.archiveNames(in: series).first(where: { $0.period == parsed.description }) {
                throw VaultError("period \(parsed) has an archive ('\(covered.fileName)'): nothing to explain", kind: .usage)
            }
            let ring = try keyring.open()
            let (trusted, signer) = (try ring.trustedSigningKeys(), try ring.signingKey())
            try opened.checkJournal(trusting: trusted)
            try opened.checkNotRevoked(signer.publicKey, trusting: trusted, making: "a journal record")
            var record = JournalRecord(event: .periodExplained)
            record.series = series
            record.period = parsed.description
            record.reason = reason
            let written = try Journal.append(record, to: opened.journalPath, signer: signer)
            print("journal record \(written.n): \(series) \(parsed) explained")
        }
    }
}

extension Schedule: ExpressibleByArgument {}
extension SeriesSettings.PeriodFromDate: ExpressibleByArgument {}
