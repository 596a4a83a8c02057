import ArgumentParser
import ColdArchive
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
        'keys retire' checks) and catalog. Exit status: 0 every copy verified, 1 an archive or copy is damaged, \
        2 usage (another archive in the way), 3 any other error. Destinations are directories (or file:// URLs) \
        for now; object stores come later (docs/OFFSITE.md).
        """)

    @Argument(help: "The archives to copy.")
    var archives: [String] = []

    @Option(name: .long, parsing: .upToNextOption, help: "Destination directories (repeatable).")
    var to: [String] = []

    @OptionGroup var trust: TrustOption
    @OptionGroup var keyring: KeyringOption

    @Flag(name: .long, help: "Print one JSON object per copy (JSON Lines).")
    var json = false

    func validate() throws {
        if archives.isEmpty { throw ValidationError("name at least one ARCHIVE") }
        if to.isEmpty { throw ValidationError("name at least one destination with --to DIR") }
        if let bad = to.first(where: { $0.contains("://") && !$0.hasPrefix("file://") }) {
            throw ValidationError("'\(bad)': only directories and file:// destinations are supported by this version")
        }
    }

    func run() throws {
        let trusted = try trust.keys(orFrom: keyring)
        var ring: Keyring?
        var noRing = "no keyring (pass --keyring)"
        if FileManager.default.fileExists(atPath: "\(keyring.directory)/keyring.json") {
            do { ring = try keyring.open() } catch { noRing = "the keyring could not be opened (\(error))" }
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
