import ArgumentParser
import ColdArchive
import Foundation

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check a whole vault with the signing public key alone: every archive, every series, the calendar, the journal.",
        discussion: """
        Needs no secret key and writes nothing to the vault. Checks every archive's signature (following the \
        signing key rotation chain from --trust with --chain) and every chunk hash (not with --quick); that each \
        series runs 1, 2, 3 … with each archive chained to the one before by its digest (no break, fork, reorder \
        or replacement); that every period from the series' first to the last one due has an archive or a signed \
        explanation in the journal; the journal's own signatures and chain; and files that belong to nothing.
        Exit status 0 only when there is no finding; 1 when there is one (each names the file, the period and the \
        reason); 3 when the vault cannot be read. docs/AUDIT.md says what each check proves, and what it does not.
        """)

    @Option(name: .long, help: "The vault directory.")
    var vault: String

    @Option(name: .long, help: ArgumentHelp("The site's signing public key (e.g. KEYRING/signing.pub, as exported for auditors): every archive and journal record must be signed by it, or by a key its --chain hands over to. After a rotation, give the site's first key.", valueName: "SIGNING_PUB"))
    var trust: String

    @Option(name: .long, help: ArgumentHelp("Directory of signing key rotation statements (KEYRING/signing-chain) to follow from --trust; a rotation signed by a revoked key after its revocation is not followed.", valueName: "DIR"))
    var chain: String?

    @Option(name: .long, help: "Audit only this series.")
    var series: String?

    @Option(name: .long, help: ArgumentHelp("The first period of the calendar to check (default: the series' first).", valueName: "PERIOD"))
    var from: String?

    @Option(name: .long, help: ArgumentHelp("The last period of the calendar to check (default: the last one due today).", valueName: "PERIOD"))
    var to: String?

    @Flag(name: .long, help: "Skip chunk hashing: signatures, chains, calendar and journal only.")
    var quick = false

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("A signing key revocation statement of your own to apply, besides those in VAULT/revocations/ (repeatable).", valueName: "FILE"))
    var revocation: [String] = []

    @Option(name: .long, help: ArgumentHelp("The time-stamping authority's CA certificate (PEM): each ARCHIVE.tsr is then checked to be signed by the authority (openssl ts -verify), and its time is relied on.", valueName: "FILE"))
    var tsaCa: String?

    @Option(name: .long, help: ArgumentHelp("Also write the report as one self-contained HTML page (for working papers) to FILE.", valueName: "FILE"))
    var html: String?

    func validate() throws {
        for p in [from, to].compactMap({ $0 }) where Period(p) == nil {
            throw ValidationError("'\(p)' is not a period: YYYY-MM, YYYY-Www, YYYY-MM-DD or YYYY")
        }
    }

    func run() throws {
        var options = Auditor.Options()
        options.series = series
        options.from = from
        options.to = to
        options.quick = quick
        options.revocations = revocation
        if let tsaCa {
            guard FileManager.default.isReadableFile(atPath: tsaCa) else {
                throw ValidationError("--tsa-ca '\(tsaCa)' cannot be read: it is the PEM certificate of the authority's CA, from the authority")
            }
            options.timestampSignature = Timestamp.openSSLSignatureCheck(caFile: tsaCa)
        }
        options.chain = chain
        let first = try SigningPublicKey(contentsOf: trust)
        let report = try Auditor.audit(vault: vault, trusting: [first], options: options)
        if let html { try AuditHTML.write(report, commandLine: Self.reproducingCommand(), to: html) }
        if json {
            try Output.json(report)
        } else {
            print(AuditText.render(report))
        }
        if !report.passed { throw ExitCode(FailureKind.integrity.rawValue) }
    }
}

extension AuditCommand {
    /// This command line without `--html FILE`, its paths made absolute (the page outlives the directory it
    /// was made in): what repeats the check.
    static func reproducingCommand(_ arguments: [String] = CommandLine.arguments,
                                   in directory: String = FileManager.default.currentDirectoryPath) -> String {
        let paths: Set<String> = ["--vault", "--trust", "--chain", "--revocation", "--tsa-ca"]
        func absolute(_ path: String) -> String { path.hasPrefix("/") ? path : "\(directory)/\(path)" }
        var words = ["coldarchive"]
        var rest = arguments.dropFirst()
        while let word = rest.popFirst() {
            if word == "--html" { _ = rest.popFirst(); continue }
            if word.hasPrefix("--html=") { continue }
            let option = String(word.prefix { $0 != "=" })
            if paths.contains(option), word.contains("=") {
                words.append(AuditHTML.shellQuoted("\(option)=\(absolute(String(word.dropFirst(option.count + 1))))"))
            } else if paths.contains(word), let value = rest.popFirst() {
                words += [word, AuditHTML.shellQuoted(absolute(value))]
            } else {
                words.append(AuditHTML.shellQuoted(word))
            }
        }
        return words.joined(separator: " ")
    }
}

/// The terminal form of an audit report: a verdict, a table per series, the findings.
enum AuditText {
    static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    static func render(_ r: AuditReport) -> String {
        var out: [String] = []
        out.append("vault        \(r.vault) (id \(r.vaultID ?? "-"))")
        out.append("checked      \(r.checkedAt)\(r.quick ? " (quick: chunk hashes not checked)" : "")")
        out.append("trusted      \(r.trustedSigners.joined(separator: ", "))")
        out.append("signed by    \(r.signers.joined(separator: ", "))")
        if r.timestamped > 0 {
            out.append("time-stamps  \(r.timestamped) of \(count(r.archives, "archive"))\(r.timestampSignaturesChecked ? ", each signed by the authority (--tsa-ca)" : "; the authority's signatures not checked (no --tsa-ca)")")
        }
        for revoked in r.revokedSigners {
            out.append("revoked      \(revoked.fingerprint) since \(revoked.since): \(DisplayName.escaped(revoked.reason)) (\(DisplayName.escaped(revoked.file)))")
        }
        out.append("archives     \(count(r.archives, "archive")) in \(r.series.count) series, \(r.bytesHashed) bytes hashed; journal: \(count(r.journalRecords, "record"))")
        out.append("")
        for s in r.series {
            out.append("series \(s.series) (\(s.schedule)): \(count(s.archives, "archive")), sequences \(s.firstSequence.map(String.init) ?? "-")…\(s.lastSequence.map(String.init) ?? "-")")
            out.append("  period       status     archives")
            for p in s.periods {
                let files = p.files.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")
                out.append("  \(p.period.padding(toLength: 12, withPad: " ", startingAt: 0)) \(p.status.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) \(DisplayName.escaped(p.explanation.map { "explained: \($0)" } ?? files))")
            }
            out.append("")
        }
        if r.findings.isEmpty {
            out.append("PASSED: no finding")
        } else {
            out.append("FAILED: \(r.findings.count) finding\(r.findings.count == 1 ? "" : "s")")
            for f in r.findings {
                let place = [f.series, f.period, f.file].compactMap { $0 }.joined(separator: " ")
                out.append("  \(f.kind.rawValue): \(DisplayName.escaped(place)): \(DisplayName.escaped(f.reason))")
            }
        }
        return out.joined(separator: "\n")
    }
}
