import ArgumentParser
import ColdArchive
import ColdArchiveParity
import ColdArchiveS3
import Foundation

struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Archive source directories into one encrypted, signed archive file.",
        discussion: """
        The file is written under a temporary name and appears under --out only when it is complete. If --out lies \
        inside a source, the archive being written is left out of it, with a warning.

        Exit status 4: the archive is complete and valid, but some sources could not be archived exactly (a special \
        file skipped, a file that changed while it was read, …); every such case is a warning on stderr and, with \
        --json, an entry of "warnings" with its kind and path.

        What is kept (archive format 2): regular files, directories, symlinks (any target, absolute or leaving the \
        tree: a target is data), hardlinks, names exactly as the file system's bytes, modification times to the \
        nanosecond, permission bits with setuid, setgid and sticky, owner and group (numbers and names), extended \
        attributes, POSIX ACLs and the holes of sparse files. A file that changes while it is read is archived, flagged in the manifest and \
        reported. Not kept: access and change times; devices, FIFOs and sockets are skipped with a warning. Names \
        are kept as bytes, valid UTF-8 or not (shown escaped: \\xfe). The host, the \
        source paths and the exclude rules are recorded in the encrypted manifest, never in the plaintext header.
        """)

    @Option(name: .long, help: "The archive file to write; it must not exist. (Or --vault and --series.)")
    var out: String?

    @Option(name: .long, help: ArgumentHelp("Create the next archive of a series in this vault (see 'coldarchive vault init'): numbered, chained to the one before, journaled.", valueName: "DIR"))
    var vault: String?

    @Option(name: .long, help: "The vault series to add the archive to (with --vault).")
    var series: String?

    @Option(name: .long, help: ArgumentHelp("The period the archive covers: YYYY-MM (monthly), YYYY-Www (weekly), YYYY-MM-DD (daily), YYYY (yearly). Default: derived by the series' settings (a monthly series covers the last full month).", valueName: "PERIOD"))
    var period: String?

    @Flag(name: .long, help: "If another create into the same series is running, wait for it instead of stopping.")
    var wait = false

    @Option(name: .long, help: ArgumentHelp("With --vault: full (everything), incremental (what changed since the series' last archive) or differential (since its last full). Files whose size, times, mode, owner and inode did not change are not read. Without the base's change index on this host, a full is made and the reason said.", valueName: "MODE"))
    var mode: BackupModeArgument = .full

    @Flag(name: .long, help: "With --mode incremental or differential: also read every unchanged file and compare its content hash with the base's (finds an edit that kept size and times).")
    var rehash = false

    @Option(name: .long, help: ArgumentHelp("With --vault: keep the archive at least SPAN (10y, 18m, 90d) from now: a signed retain-until date in its header, which prune honours; the bases an incremental rests on are kept as long.", valueName: "SPAN"))
    var retain: String?

    @Flag(name: .customLong("ignore-ctime"), help: "With --mode incremental or differential: compare without change times, for file systems whose change times are unreliable (some network and FUSE ones). An edit that keeps size and modification time is then found only with --rehash.")
    var ignoreChangeTime = false

    @Option(name: .long, help: ArgumentHelp("Where this host keeps the change indexes of the series it archives (default: $COLDARCHIVE_STATE, else $XDG_STATE_HOME/coldarchive, else ~/.local/state/coldarchive). They hold path names: keep them on the archiving host.", valueName: "DIR"))
    var state: String?

    @OptionGroup var keyring: KeyringOption

    @Option(name: .long, help: "A label stored in the plaintext header (visible without a key).")
    var label: String?

    @Option(name: .long, help: "zstd compression level.")
    var level: Int32 = 3

    @Flag(name: .long, help: "Print the summary as JSON.")
    var json = false

    @Option(name: .customLong("import"), help: "A vendor export (.zip, .tar, .tar.gz, …) to archive as a directory named after it; repeatable. Unsafe entries are refused with a list.")
    var imports: [String] = []

    @Option(name: .long, help: ArgumentHelp("Leave out what matches GLOB (repeatable): a pattern without '/' matches any name below a source ('*.tmp', 'cache'), one with '/' the archive path from the top-level name ('crm/tmp/*'). Recorded, encrypted, in the archive.", valueName: "GLOB"))
    var exclude: [String] = []

    @Option(name: .long, help: ArgumentHelp("Read exclude patterns from FILE, one per line ('#' comments and blank lines ignored).", valueName: "FILE"))
    var excludeFrom: [String] = []

    @Flag(name: .long, help: "Stay on each source's file system: a mount point below it is archived as an empty directory.")
    var oneFileSystem = false

    @Option(name: .long, help: ArgumentHelp("An RFC 3161 time-stamping authority to stamp the archive's digest: the token is kept in ARCHIVE.tsr, for audit. If it fails the archive stays, with exit status 4.", valueName: "URL"))
    var tsa: String?

    @Option(name: .long, help: ArgumentHelp("With --vault: after the archive is made, copy it to this directory or s3://BUCKET/PREFIX (repeatable) as 'push' does (read back, verified, journaled, with the vault's metadata; for S3 the lock options below). A failed copy leaves the archive in the vault, with exit status 4.", valueName: "DEST"))
    var copies: [String] = []

    @OptionGroup var s3: S3Options

    @Option(name: .long, help: ArgumentHelp("Also write Reed–Solomon parity of SHARE of the archive (1% to 100%, e.g. 5%) in a signed sidecar, ARCHIVE.parity, from which 'repair --parity' rebuilds a damaged archive alone (see 'coldarchive parity').", valueName: "SHARE"))
    var parity: String?

    @Argument(help: "Directories or files to archive.")
    var sources: [String] = []

    func validate() throws {
        if sources.isEmpty && imports.isEmpty { throw ValidationError("name at least one SOURCE to archive, or --import FILE") }
        if let tsa { _ = try TimestampClient.authority(tsa) }
        if let parity { try ParityCommand.validateShare(parity) }
        if vault == nil {
            if out == nil { throw ValidationError("pass --out FILE, or --vault DIR --series NAME") }
            if series != nil || period != nil || wait || mode != .full || rehash || ignoreChangeTime || state != nil || retain != nil || !copies.isEmpty {
                throw ValidationError("--series, --period, --wait, --mode, --rehash, --ignore-ctime, --state, --retain and --copies go with --vault DIR")
            }
        } else {
            if out != nil { throw ValidationError("--out and --vault exclude each other: a vault names its archives itself") }
            if series == nil { throw ValidationError("--vault needs --series NAME") }
            if let retain, RetentionPolicy.span(retain) == nil { throw ValidationError("--retain '\(retain)' is not a span: 10y, 18m, 90d") }
            if (rehash || ignoreChangeTime) && mode == .full {
                throw ValidationError("--rehash and --ignore-ctime compare with a base: they go with --mode incremental or differential")
            }
        }
    }

    func run() throws {
        // The vault first: a wrong --vault is said before anything asks for a passphrase.
        let opened = try vault.map { try Vault.open($0) }
        let ring = try keyring.open()
        for warning in ring.overdueWarnings() { Output.warning(warning) }
        var options = CreateOptions(sources: sources, output: out ?? "", label: label)
        options.compressionLevel = level
        options.imports = imports
        options.exclude = exclude
        for file in excludeFrom {
            options.exclude += try ExcludePatterns.read(file: file)
        }
        options.oneFileSystem = oneFileSystem
        if let span = retain.flatMap(RetentionPolicy.span) {
            var c = DateComponents()
            (c.year, c.month, c.day) = (span.years, span.months, span.days)
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            options.retainUntil = calendar.date(byAdding: c, to: Date()).map { Int64($0.timeIntervalSince1970) }
        }
        let report: CreateReport
        let path: String
        if let opened, let series {
            let changes = ChangeOptions(mode: mode.value, rehash: rehash, ignoreChangeTime: ignoreChangeTime,
                                        state: state ?? ChangeIndex.defaultStateDirectory)
            let made = try opened.create(options, series: series, period: period, wait: wait, signer: try ring.signingKey(),
                                         recipients: try ring.recipientPublicKeys(), trusting: try ring.trustedSigningKeys(), changes: changes)
            (report, path) = (made.report, made.path)
            if let why = made.fullBecause {
                Output.warning("a full archive was made instead of the \(mode.rawValue) asked for: \(why)")
            }
            if let problem = made.indexProblem {
                Output.warning("the change index for the next incremental could not be written (\(problem)); the next incremental of '\(series)' will be a full")
            }
            if !json, let base = made.base {
                print("\(mode.rawValue) on sequence \(base.sequence) (\(base.digest.prefix(16))…): \(made.unchanged) files and links unchanged (not stored), \(made.deleted) paths deleted since")
            }
            if !made.skipped.isEmpty {
                Output.warning("series '\(series)' has no archive for \(made.skipped.joined(separator: ", ")): the audit reports \(made.skipped.count == 1 ? "it" : "each") as missing until you record why, e.g. coldarchive vault explain --vault \(opened.root) --series \(series) --period \(made.skipped[0]) --reason TEXT")
            }
            VaultRecords.created(made, in: opened)
        } else {
            path = options.output
            report = try ArchiveCreator.create(options, signer: try ring.signingKey(), recipients: try ring.recipientPublicKeys())
        }
        for warning in report.warnings { Output.warning(escaped: warning.description) }
        // Parity before the copies, so that they carry it. A failure leaves the archive, with exit status 4.
        var protected = true
        if let parity {
            do {
                let made = try Parity.create(for: path, basisPoints: try Parity.basisPoints(parity), signingKey: try ring.signingKey(),
                                             trusting: try ring.trustedSigningKeys(), verifyFirst: false)
                if !json { ParityCommand.describe(made) }
            } catch {
                protected = false
                Output.warning("the archive is complete and valid, but its parity was not written: \(error). Make it later: coldarchive parity create \(path) --parity \(parity)")
            }
        }
        var stamped = true
        if let tsa, let authority = try? TimestampClient.authority(tsa) {
            do {
                let time = try TimestampClient.stamp(archive: path, digestHex: report.summary.archiveDigest, authority: authority)
                if !json { print(TimestampClient.stampedLine(authority: tsa, time: time, archive: path)) }
            } catch {
                stamped = false
                Output.warning("the archive is complete and valid, but it was not time-stamped: \(error). Stamp it later: coldarchive stamp --tsa \(tsa) \(path)")
            }
        }
        if json {
            try Output.json(CreatedArchive(archive: path, summary: report.summary, warnings: report.warnings))
        } else {
            print("created \(path)")
            Output.summary(report.summary)
        }
        // Copies to other media, each read back before it counts.
        var copied = true
        if let opened {
            for destination in copies {
                do {
                    if let location = S3Location(url: destination) {
                        let client = try s3.client()
                        let (pushed, _) = try s3.push(path, to: location, client: client, vault: opened, keyring: ring, trusting: try ring.trustedSigningKeys())
                        _ = try S3Push.copyMetadata(of: opened, to: location, client: client)
                        if !json { print("copied to \(pushed.url) (version \(pushed.versionID ?? "-")), read back and compared\(S3Options.describeLock(pushed))") }
                        continue
                    }
                    let pushed = try Push.push(path, to: destination, trusting: try ring.trustedSigningKeys())
                    VaultRecords.copied(pushed, keyring: ring)
                    try Push.copyMetadata(of: opened, to: destination)
                    if !json { print("copied to \(pushed.copy), read back and verified") }
                } catch {
                    copied = false
                    Output.warning("the archive is complete in the vault, but its copy to '\(destination)' failed: \(error). Copy it later: coldarchive push \(path) --to \(destination)")
                }
            }
        }
        if report.isInexact || !stamped || !copied || !protected { throw ExitCode(ExitStatus.inexact) }
    }

    /// `create --json`: the summary's fields, the archive's path and the warnings, in one object.
    struct CreatedArchive: Encodable {
        var archive: String
        var summary: ArchiveSummary
        var warnings: [SourceWarning]

        enum Keys: String, CodingKey { case archive, warnings }

        func encode(to encoder: Encoder) throws {
            try summary.encode(to: encoder)
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(archive, forKey: .archive)
            try container.encode(warnings, forKey: .warnings)
        }
    }
}

/// `create --mode`.
enum BackupModeArgument: String, ExpressibleByArgument, CaseIterable {
    case full, incremental, differential

    var value: ArchiveHeader.BackupMode {
        switch self {
        case .full: .full
        case .incremental: .incremental
        case .differential: .differential
        }
    }
}
