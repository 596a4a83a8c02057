import ArgumentParser
import ColdArchive
import ColdArchiveS3
import Foundation

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Verify the whole archive, then restore it into a directory.",
        discussion: """
        Nothing is written until the signature, every chunk hash and the manifest have been checked. \
        Entries are extracted into a staging directory inside the target and moved into place at the end; \
        if anything fails the target is left as it was. Existing entries are never replaced. \
        The archive must be signed by one of the keyring's signing keys, or by --trust (e.g. when an escrow holder restores).

        What is kept (format 2 archives): file content, names exactly as bytes, directories, symlinks (any target; \
        restore never follows one), hardlinks, modification times to the nanosecond, permission bits including setuid, \
        setgid and sticky, the holes of sparse files, owner and group (set when run as root: by name where the name exists here, else by number; \
        see --numeric-owner and --no-owner), extended attributes and POSIX ACLs where the target file system takes them. \
        Whatever could not be applied is reported per entry (text on stderr, 'notices' in --json), and so is every file \
        that changed while it was archived (a file that shrank is cut at the bytes that were read). Not kept: access and \
        change times, devices, FIFOs and sockets (create skips them with a warning).

        Selective restore (--include GLOB, repeatable): only the matching entries, everything below a matching \
        directory, the directories above them (with their archived metadata) and the file each restored hardlink \
        names. A pattern without '/' matches any name (--include '*.pdf', --include acme), one with '/' the whole \
        path from the top-level name (--include 'crm/customers/acme'); '*' does not cross '/'. Of the data, only the \
        chunks holding those entries are read; the report says how many bytes were read. What it verifies: the \
        signature; the whole manifest (every manifest chunk authenticated, every entry's order, offset and size, and \
        the entries it restores in full); and every data chunk it reads (its hash against the signed chunk table, and \
        its AEAD tag). The chunks it does not read are not checked — run 'coldarchive verify FILE' (keyless) for those.

        From a vault (--vault DIR --series NAME [--period PERIOD | --archive ID]): the tree as it was at the period, \
        through the chain the period needs — its full and the incrementals since, or one differential. Every \
        archive of the chain is verified whole first; a missing or damaged one is named and nothing is written. \
        'coldarchive plan' says beforehand which archives, how many bytes and how long (docs/OPERATIONS.md).

        Salvage (--salvage FILE, never the default): out of a damaged archive with no intact copy to repair it \
        from ('coldarchive repair'), every entry whose bytes lie in intact chunks, each checked against the \
        manifest as always; a file touching a damaged chunk is not restored at all. Every entry left out is \
        named, with the damaged chunk that holds it, on stderr and in coldarchive-salvage-ID.txt in the target. \
        The archive's header, trailer, signature and manifest must be intact. Exit status 1 when anything was \
        left out (what could be restored is in place), 0 when the archive turned out intact.

        From an object store (FILE is s3://BUCKET/KEY, with --endpoint for a store other than AWS, --version-id \
        for an older version): the object is fetched with parallel ranged GETs into a spool file (--spool DIR, \
        default the target's parent directory), then verified whole and restored as any archive; the spool file \
        is removed afterwards. An object in an archive tier (Glacier) is named with how to bring it back.

        From several copies (--copy PATH, repeatable): when FILE does not verify, its damaged chunks (or its \
        header and trailer, or the whole file when it is gone) are taken from the copies that hold them intact, \
        as 'repair' does, but into a spool file (--spool DIR, default the target's parent directory): FILE and \
        the copies are not changed; the spool file is verified whole, restored and removed.
        """)

    @Argument(help: "The archive file, or s3://BUCKET/KEY (or --vault DIR --series NAME).")
    var file: String?

    @OptionGroup var s3: S3Options

    @Option(name: .customLong("version-id"), help: ArgumentHelp("With s3://: the object version to restore (default: the newest).", valueName: "ID"))
    var versionID: String?

    @Option(name: .long, help: ArgumentHelp("With s3:// or --copy: where the fetched or mended archive is kept while it is verified and restored.", valueName: "DIR"))
    var spool: String?

    @Option(name: .long, help: ArgumentHelp("Other copies of FILE (repeatable): when FILE is damaged, each damaged chunk is taken from a copy that holds it intact, into a spool file that is then verified whole and restored; FILE and the copies are left as they are.", valueName: "PATH"))
    var copy: [String] = []

    @Option(name: .long, help: ArgumentHelp("Restore from this vault's series, through the chain of archives the period needs: its full, then the incrementals after it (or one differential).", valueName: "DIR"))
    var vault: String?

    @Option(name: .long, help: "The series to restore from (with --vault).")
    var series: String?

    @Option(name: .long, help: ArgumentHelp("With --vault: the tree as it was at the end of this period (default: the series' last archive).", valueName: "PERIOD"))
    var period: String?

    @Option(name: .long, help: ArgumentHelp("With --vault: the tree as this archive left it (its file name, or its archive id as 'inspect' shows).", valueName: "ID"))
    var archive: String?

    @Option(name: .long, help: "Directory to restore into (created if missing; must be empty unless --force).")
    var to: String

    @OptionGroup var keyring: KeyringOption

    @OptionGroup var trust: TrustOption

    @Option(name: .long, help: ArgumentHelp("Restore only the entries this glob matches, and what they need (repeatable; see above).", valueName: "GLOB"))
    var include: [String] = []

    @Flag(name: .long, help: "Restore what is intact of a damaged archive and list what is not (see above).")
    var salvage = false

    @Flag(name: .long, help: "Restore into a non-empty directory (existing entries are still never replaced).")
    var force = false

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    @Flag(name: .long, help: "Also recompute each file's BLAKE2b-256 and compare it with the manifest, as 'verify --deep' does (every byte is authenticated by its chunk's AEAD tag and the signed chunk table either way).")
    var checkContent = false

    @Flag(name: .long, help: "Do not set owners: everything belongs to the user who restores (tar's --no-same-owner).")
    var noOwner = false

    @Flag(name: .long, help: "Set owners by the archived uid and gid, ignoring the user and group names (tar's --numeric-owner).")
    var numericOwner = false

    func validate() throws {
        if noOwner && numericOwner { throw ValidationError("--no-owner and --numeric-owner exclude each other") }
        if salvage && (vault != nil || !include.isEmpty) { throw ValidationError("--salvage restores one archive FILE whole: not with --vault or --include") }
        if !copy.isEmpty && (vault != nil || salvage || file.map { S3Location(url: $0) != nil } == true) {
            throw ValidationError("--copy mends one archive FILE from its copies: not with --vault, --salvage or s3://")
        }
        if vault == nil {
            if file == nil { throw ValidationError("name the archive FILE, or --vault DIR --series NAME [--period PERIOD]") }
            if series != nil || period != nil || archive != nil { throw ValidationError("--series, --period and --archive go with --vault DIR") }
        } else {
            if file != nil { throw ValidationError("give the archive FILE or --vault, not both") }
            if series == nil { throw ValidationError("--vault needs --series NAME") }
            if period != nil && archive != nil { throw ValidationError("--period and --archive exclude each other") }
        }
    }

    func run() throws {
        let policy: OwnerPolicy = noOwner ? .none : numericOwner ? .numeric : .automatic
        let opened = try vault.map { try Vault.open($0) }
        let ring = try keyring.open()
        let report: RestoreReport
        let started = Date()
        if let opened, let series {
            let trusted = try trust.keys() ?? ring.trustedSigningKeys()
            let chain = try PointInTime.chain(vault: opened, series: series, period: period, archive: archive, trusting: trusted)
            report = try PointInTime.restore(chain: chain, to: to, keyring: ring, trusting: trusted, force: force, checkContent: checkContent,
                                             owners: policy, include: include)
            // The speed is recorded once, with the last archive (what plan divides by).
            for path in chain {
                VaultRecords.restored(file: path, target: to, keyring: ring, bytes: path == chain.last ? report.contentBytes : nil,
                                      seconds: path == chain.last ? Date().timeIntervalSince(started) : nil)
            }
        } else if let file, salvage {
            report = try Salvage.restore(archivePath: file, to: to, keyring: ring, trusting: try trust.keys(), force: force,
                                         checkContent: checkContent, owners: policy)
        } else if let file, !copy.isEmpty, (try? Verifier.verify(path: file, trusting: try trust.keys() ?? ring.trustedSigningKeys())) == nil {
            // FILE does not verify: mend a spool copy of it from the copies, chunk by chunk; restore that.
            let directory = spool ?? (URL(fileURLWithPath: to).deletingLastPathComponent().path)
            let local = "\(directory)/.coldarchive-spool-\(getpid())-\(URL(fileURLWithPath: file).lastPathComponent)"
            if FileManager.default.fileExists(atPath: file) { try FileManager.default.copyItem(atPath: file, toPath: local) }
            defer { try? FileManager.default.removeItem(atPath: local) }
            let trusted = try trust.keys() ?? ring.trustedSigningKeys()
            let mended = try Repair.repair(local, from: copy, trusting: trusted)
            if !json && !mended.wasIntact {
                print("\(mended.repaired.count) damaged chunk\(mended.repaired.count == 1 ? "" : "s") taken from the copies\(mended.structureFrom != nil ? " (and the header and trailer)" : ""); \(file) itself was not changed")
            }
            report = try Restorer.restore(archivePath: local, to: to, keyring: ring, trusting: try trust.keys(), force: force,
                                          checkContent: checkContent, owners: policy, include: include)
        } else if let file, let location = S3Location(url: file) {
            // The object, spooled to local disk, then verified whole and restored like any archive file.
            let directory = spool ?? (URL(fileURLWithPath: to).deletingLastPathComponent().path)
            let local = "\(directory)/.coldarchive-spool-\(getpid())-\(URL(fileURLWithPath: location.prefix).lastPathComponent)"
            let pulled = try S3Pull.download(bucket: location.bucket, key: location.prefix, versionID: versionID, to: local, client: try s3.client())
            defer { try? FileManager.default.removeItem(atPath: local) }
            if !json { print("fetched \(pulled.url) (version \(pulled.versionID ?? "-"), \(Output.bytes(pulled.bytes))) to \(local)") }
            report = try Restorer.restore(archivePath: local, to: to, keyring: ring, trusting: try trust.keys(), force: force,
                                          checkContent: checkContent, owners: policy, include: include)
        } else if let file {
            report = try Restorer.restore(archivePath: file, to: to, keyring: ring,
                                          trusting: try trust.keys(), force: force, checkContent: checkContent, owners: policy,
                                          include: include)
            // A vault's archive: who restored what, where and when goes into its signed journal.
            VaultRecords.restored(file: file, target: to, keyring: ring, bytes: include.isEmpty ? report.contentBytes : nil,
                                  seconds: include.isEmpty ? Date().timeIntervalSince(started) : nil)
        } else {
            return
        }
        if let salvage = report.salvage, salvage.lostCount > 0 || !salvage.damagedChunks.isEmpty {
            if json {
                try Output.json(report)
            } else {
                print("SALVAGE: restored \(report.entries) entries (\(Output.bytes(report.contentBytes)) of content) into \(report.target)")
            }
            Output.error("SALVAGE of a damaged archive: \(salvage.damagedChunks.count) damaged chunk\(salvage.damagedChunks.count == 1 ? "" : "s") (\(salvage.damagedChunks.map { "\($0.index)" }.joined(separator: ", "))); \(salvage.lostCount) entr\(salvage.lostCount == 1 ? "y was" : "ies were") NOT restored, listed in \(salvage.listFile ?? "-")")
            for lost in salvage.lost { Output.error("not restored: '\(DisplayName.escaped(lost.path))': \(lost.reason)") }
            if salvage.lostCount > salvage.lost.count { Output.error("… and \(salvage.lostCount - salvage.lost.count) more (see the list file)") }
            throw ExitCode(1)
        }
        if json { return try Output.json(report) }
        print("restored \(report.entries) entries (\(Output.bytes(report.contentBytes)) of content) into \(report.target): \(report.topLevel.map(DisplayName.escaped).joined(separator: ", "))")
        print("owners: \(report.owners)")
        if let chain = report.chain {
            print("through \(chain.count) archive\(chain.count == 1 ? "" : "s"), each verified whole first: \(chain.joined(separator: ", "))")
        }
        if let chunks = report.dataChunksRead, let all = report.dataChunks {
            print("read \(Output.bytes(report.bytesRead)) of the archive: \(chunks) of its \(all) data chunks, and the manifest")
        }
        for path in report.hardlinkTargets ?? [] {
            print("also restored '\(DisplayName.escaped(path))': a restored hardlink names it")
        }
        for notice in report.notices { Output.warning("\(notice.kind.rawValue): '\(notice.path)': \(notice.detail)") }
        if report.noticeCount > report.notices.count {
            Output.warning("\(report.noticeCount - report.notices.count) more entries could not be restored exactly (not listed)")
        }
        if report.noticeCount > 0 {
            Output.warning("\(report.noticeCount) entr\(report.noticeCount == 1 ? "y was" : "ies were") not restored exactly; see above")
        }
    }
}
