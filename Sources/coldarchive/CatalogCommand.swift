import ArgumentParser
import ColdArchive
import ColdArchiveCatalog
import Foundation

struct CatalogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "The vault's catalog (VAULT/catalog.sqlite): an index of its archives and of every check run on them.",
        discussion: """
        The catalog is only an index: 'catalog rebuild' makes it again from the archives (their plaintext headers, no \
        key) and the journal, and every other command works without it — on a vault mounted read-only, say. \
        create --vault adds each archive to it; verify adds each check of a vault's archive; restore adds each restore.
        """,
        subcommands: [Rebuild.self, List.self])

    struct Rebuild: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make the catalog again from the archives and the journal.")

        @Option(name: .long, help: "The vault directory.")
        var vault: String

        @OptionGroup var trust: TrustOption

        @OptionGroup var keyring: KeyringOption

        func run() throws {
            let opened = try Vault.open(vault)
            let trusted = try trust.keys(orFrom: keyring)
            let report: Catalog.RebuildReport
            do { report = try Catalog.rebuild(vault: opened, trusting: trusted) } catch let error as ColdArchiveError { throw error } catch {
                throw VaultError("the catalog could not be written in \(vault) (\(error)); a vault on read-only media keeps the catalog it has, and every command works without one")
            }
            print("rebuilt \(vault)/\(Catalog.fileName): \(report.archives) archives, \(report.checks) restores from the journal")
            for file in report.unreadable { Output.warning("\(file) could not be read and is not in the catalog; run 'coldarchive audit'") }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the catalog's archives and the checks run on them.")

        @Option(name: .long, help: "The vault directory.")
        var vault: String

        @Option(name: .long, help: "Only this series.")
        var series: String?

        @Flag(name: .long, help: "Print JSON: {\"archives\": [...], \"checks\": [...]}.")
        var json = false

        struct Listing: Encodable {
            var archives: [CatalogArchive]
            var checks: [CatalogCheck]
        }

        func run() throws {
            let opened = try Vault.open(vault)
            let path = "\(opened.root)/\(Catalog.fileName)"
            guard FileManager.default.fileExists(atPath: path) else {
                throw VaultError("the vault has no catalog; make it with 'coldarchive catalog rebuild --vault \(vault)'")
            }
            let archives: [CatalogArchive], checks: [CatalogCheck]
            do {
                let catalog = try Catalog.open(path: path)
                archives = try catalog.archives(series: series)
                let files = Set(archives.map(\.file))
                checks = try catalog.checks().filter { files.contains($0.file) }
            } catch {
                throw VaultError("the catalog '\(path)' cannot be read (\(error)); it is only an index: make it again with 'coldarchive catalog rebuild --vault \(vault) --trust SIGNING_PUB'")
            }
            if json { return try Output.json(Listing(archives: archives, checks: checks)) }
            for a in archives {
                let last = checks.last { $0.file == a.file }
                print("\(a.file)  \(a.period ?? "-")  sequence \(a.sequence.map(String.init) ?? "-")  \(Output.bytes(UInt64(a.fileBytes)))  created \(a.created)  signer \(a.signer)"
                      + (last.map { "  last check: \($0.kind) \($0.result) \($0.time)" } ?? ""))
            }
        }
    }
}
