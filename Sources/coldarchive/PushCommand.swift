import ArgumentParser
import ColdArchive
import ColdArchiveS3
import Foundation

struct PushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Copy archives to other media, verified by reading them back.",
        discussion: """
        Each ARCHIVE is checked whole first (a damaged one is not copied: repair it), written under DEST in a \
        hidden partial file, synced, and read back from the medium — signature and every chunk, the same \
        archive digest — before it takes its name; a killed push leaves only the partial file, which the next \
        one removes. An archive of a vault keeps its place in the vault's layout (DEST/series/SERIES/NAME.car), \
        so DEST becomes a copy of the vault that 'scrub --copy' and 'audit' read: the vault's settings, journal, \
        series settings and revocations go along (not its catalog, an index 'catalog rebuild' makes again). A DEST that already holds a \
        verified copy of the same archive is left as it is; another file under that name is refused. The \
        minisign sidecar goes along. For an archive of a vault, the copy is recorded in the vault's journal \
        ('copy-made', signed with the keyring's signing key, with the key ids the copy is wrapped to: what \
        'keys retire' checks) and catalog.

        A DEST of the form s3://BUCKET/PREFIX is an S3-compatible object store (credentials from \
        AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or ~/.aws/credentials; --endpoint for a store other than \
        AWS). The archive goes up in parts of at least 8 MiB in parallel, each with its SHA-256 checksum; a push \
        that was interrupted resumes without sending its finished parts again. The object version is then read \
        back in full and compared with the verified archive, and its Object Lock retention (--lock-mode, \
        --retain-until; default: the archive's own signed retain-until) is read back: a store that does not \
        report the lock asked for fails the push (exit 1). See docs/OFFSITE.md "Object stores".

        Exit status: 0 every copy verified, 1 an archive or copy is damaged (or a lock not enforced), \
        2 usage (another archive in the way), 3 any other error (a store that could not be reached).
        """)

    @Argument(help: "The archives to copy.")
    var archives: [String] = []

    @Option(name: .long, parsing: .upToNextOption, help: "Destinations (repeatable): directories, file:// URLs, s3://BUCKET/PREFIX.")
    var to: [String] = []

    @OptionGroup var s3: S3Options

    @OptionGroup var trust: TrustOption
    @OptionGroup var keyring: KeyringOption

    @Flag(name: .long, help: "Print one JSON object per copy (JSON Lines).")
    var json = false

    func validate() throws {
        if archives.isEmpty { throw ValidationError("name at least one ARCHIVE") }
        if to.isEmpty { throw ValidationError("name at least one destination with --to DIR") }
        if let bad = to.first(where: { $0.contains("://") && !$0.hasPrefix("file://") && S3Location(url: $0) == nil }) {
            throw ValidationError("'\(bad)': a destination is a directory, a file:// URL or s3://BUCKET/PREFIX")
        }
        try s3.validate()
    }

    func run() throws {
        let trusted = try trust.keys(orFrom: keyring)
        var ring: Keyring?
        var noRing = "no keyring (pass --keyring)"
        if FileManager.default.fileExists(atPath: "\(keyring.directory)/keyring.json") {
            do { ring = try keyring.open() } catch { noRing = "the keyring could not be opened (\(error))" }
        }
        // One S3 client (one connection pool) for every S3 destination, made when the first is reached.
        var s3Client: S3Client?
        func client() throws -> S3Client {
            if let s3Client { return s3Client }
            let made = try s3.client()
            s3Client = made
            return made
        }
        // The vaults whose archives reached each destination: their metadata goes along.
        var reached: [String: (vault: Vault, destinations: Set<String>)] = [:]
        // The exit status: 1 when any archive or copy failed a check, else the highest other failure's.
        var worst: Int32 = 0
        func failed(_ what: String, _ error: ColdArchiveError) {
            Output.error("\(what): \(error.description)")
            worst = error.kind == .integrity ? 1 : (worst == 1 ? 1 : max(worst, error.kind.rawValue))
        }
        for archive in archives {
            let vault = Vault.containing(file: archive)?.vault
            for destination in to {
                // Each copy on its own: one that fails does not stop the others; the worst status is the exit's.
                let report: PushReport
                do {
                    if let location = S3Location(url: destination) {
                        let (pushed, extended) = try s3.push(archive, to: location, client: try client(), vault: vault, keyring: ring, trusting: trusted)
                        if json {
                            try Output.jsonLine(pushed)
                        } else if pushed.alreadyThere {
                            print("OK \(pushed.url): already a copy of \(archive) (version \(pushed.versionID ?? "-"), read back)\(S3Options.describeLock(pushed))")
                        } else {
                            print("COPIED \(archive) -> \(pushed.url) (\(Output.bytes(pushed.bytes)), \(pushed.parts == 0 ? "one PUT" : "\(pushed.parts) parts\(pushed.resumedParts > 0 ? ", \(pushed.resumedParts) resumed" : "")"), version \(pushed.versionID ?? "-")), read back and compared\(S3Options.describeLock(pushed))")
                        }
                        if let vault { reached[vault.root, default: (vault, [])].destinations.insert(destination) }
                        for key in extended where !json {
                            print("  the base \(key) is now locked until \(pushed.retainUntil.map { ISO8601DateFormatter().string(from: $0) } ?? "-"), as long as what rests on it")
                        }
                        continue
                    }
                    report = try Push.push(archive, to: destination, trusting: trusted)
                } catch let error as ColdArchiveError {
                    failed("\(archive) -> \(destination)", error)
                    continue
                }
                if let vault { reached[vault.root, default: (vault, [])].destinations.insert(destination) }
                if let ring { VaultRecords.copied(report, keyring: ring) } else if Vault.containing(file: archive) != nil {
                    Output.warning("the copy of '\(archive)' was not recorded in its vault's journal: \(noRing); 'keys retire' will not know of it")
                }
                if json {
                    try Output.jsonLine(report)
                } else if report.alreadyThere {
                    print("OK \(report.copy): already a verified copy of \(archive)")
                } else {
                    print("COPIED \(archive) -> \(report.copy) (\(Output.bytes(report.bytes))), read back and verified; wrapped to \(report.recipients.joined(separator: ", "))\(report.parityCopied ? "; its parity too" : "")")
                }
            }
        }
        // What the vault holds besides archives (settings, journal with the copies just recorded,
        // revocations): a destination can then be audited and restored from on its own.
        for (vault, destinations) in reached.values.sorted(by: { $0.vault.root < $1.vault.root }) {
            for destination in to where destinations.contains(destination) {
                do {
                    if let location = S3Location(url: destination) {
                        _ = try S3Push.copyMetadata(of: vault, to: location, client: try client())
                        if !json { print("vault metadata of \(vault.root) (settings, journal, series, revocations) -> \(destination)") }
                        continue
                    }
                    try Push.copyMetadata(of: vault, to: destination)
                    if !json { print("vault metadata of \(vault.root) (settings, journal, series, revocations) -> \(destination)") }
                } catch let error as ColdArchiveError {
                    failed("vault metadata of \(vault.root) -> \(destination)", error)
                }
            }
        }
        if worst != 0 { throw ExitCode(worst) }
    }
}

/// The options of an S3 destination, shared by push and offsite.
struct S3Options: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The S3 endpoint (default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS's for the region).", valueName: "URL"))
    var endpoint: String?

    @Option(name: .long, help: "The S3 region (default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1).")
    var region: String?

    @Option(name: .customLong("lock-mode"), help: ArgumentHelp("Object Lock for new S3 copies: compliance (no one can delete or shorten it, not even the account root) or governance (users with s3:BypassGovernanceRetention can).", valueName: "MODE"))
    var lockMode: String?

    @Option(name: .customLong("retain-until"), help: ArgumentHelp("With --lock-mode: a date (YYYY-MM-DD) or a span from now (10y, 18m, 90d). Default: the archive's signed retain-until.", valueName: "WHEN"))
    var retainUntil: String?

    @Flag(name: .customLong("legal-hold"), help: "Put a legal hold on new S3 copies (no deletion until it is lifted, whatever the retention).")
    var legalHold = false

    @Option(name: .customLong("parts-in-flight"), help: ArgumentHelp("S3 parts uploaded (and ranges read back) at once; fewer on a slow uplink.", valueName: "N"))
    var partsInFlight: Int = 8

    @Option(name: .customLong("storage-class"), help: ArgumentHelp("The S3 storage class of new copies (STANDARD, STANDARD_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE, …).", valueName: "CLASS"))
    var storageClass: String?

    func validate() throws {
        if let lockMode, !["compliance", "governance"].contains(lockMode.lowercased()) {
            throw ValidationError("--lock-mode is compliance or governance, not '\(lockMode)'")
        }
        if retainUntil != nil && lockMode == nil { throw ValidationError("--retain-until goes with --lock-mode") }
        if partsInFlight < 1 || partsInFlight > 64 { throw ValidationError("--parts-in-flight takes 1 to 64") }
        if let retainUntil, Self.date(retainUntil) == nil { throw ValidationError("--retain-until '\(retainUntil)' is not a date (YYYY-MM-DD) or a span (10y, 18m, 90d)") }
    }

    static func date(_ text: String, from now: Date = Date()) -> Date? {
        if let span = RetentionPolicy.span(text) {
            var c = DateComponents()
            (c.year, c.month, c.day) = (span.years, span.months, span.days)
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            return calendar.date(byAdding: c, to: now)
        }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd"
        return f.date(from: text)
    }

    func client() throws -> S3Client { try S3Client(endpoint: endpoint, region: region) }

    func pushOptions(for archive: String) throws -> S3Push.Options {
        var options = S3Push.Options()
        options.lockMode = lockMode?.uppercased()
        options.legalHold = legalHold
        options.storageClass = storageClass
        options.concurrency = partsInFlight
        if lockMode != nil {
            if let retainUntil { options.retainUntil = Self.date(retainUntil) } else {
                guard let signed = try ArchiveFile(path: archive).header.retainUntil else {
                    throw OperationError("'\(archive)' has no retain-until of its own: give --retain-until with --lock-mode", kind: .usage)
                }
                options.retainUntil = Date(timeIntervalSince1970: TimeInterval(signed))
            }
        }
        return options
    }

    /// The vault files of the archives `archive` rests on (its base, the base's base, … to the full), by
    /// the signed base links of their headers and the journal's record of each archive digest.
    static func bases(of archive: String, in vault: Vault, trusting trusted: [SigningPublicKey]) throws -> [String] {
        let recorded = try vault.recordedArchives(trusting: trusted)
        var out: [String] = []
        var header = try ArchiveFile(path: archive).header
        while let base = header.baseArchiveDigest?.hex, out.count < 10_000,
              let file = recorded.last(where: { $0.archiveDigest == base })?.file {
            out.append(file)
            guard let next = try? ArchiveFile(path: "\(vault.root)/\(file)") else { break }
            header = next.header
        }
        return out
    }

    /// Pushes to S3 as `push` does: the copy, its journal record (by URL and version id, when `keyring`
    /// is given and the archive is a vault's), and for a locked incremental its bases' locks extended.
    /// Returns the report and the base copies whose lock was extended.
    func push(_ archive: String, to location: S3Location, client: S3Client, vault: Vault?, keyring: Keyring?,
              trusting trusted: [SigningPublicKey]) throws -> (S3Push.Report, [String]) {
        let pushed = try S3Push.push(archive, to: location, client: client, options: try pushOptions(for: archive), trusting: trusted)
        if let keyring {
            VaultRecords.copied(PushReport(archive: archive, archiveDigest: pushed.archiveDigest, destination: location.description,
                                           copy: pushed.url + (pushed.versionID.map { "?versionId=\($0)" } ?? ""), bytes: pushed.bytes,
                                           alreadyThere: pushed.alreadyThere, recipients: pushed.recipients), keyring: keyring)
        }
        var extended: [String] = []
        if let vault, let until = pushed.retainUntil, pushed.lockMode != nil {
            let bases = try Self.bases(of: archive, in: vault, trusting: trusted).map { location.key($0) }
            extended = try S3Push.extendBaseLocks(keys: bases, in: location.bucket, until: until, client: client)
        }
        return (pushed, extended)
    }

    static func describeLock(_ report: S3Push.Report) -> String {
        var parts: [String] = []
        if let mode = report.lockMode { parts.append("locked \(mode)\(report.retainUntil.map { " until \(ISO8601DateFormatter().string(from: $0))" } ?? "")") }
        if report.legalHold { parts.append("legal hold on") }
        if let storageClass = report.storageClass { parts.append("storage class \(storageClass)") }
        return parts.isEmpty ? "" : "; " + parts.joined(separator: ", ")
    }
}
