import ArgumentParser
import ColdArchive
import Foundation

struct ScrubCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scrub",
        abstract: "Hash every chunk of every archive of a vault, and of its copies, without a key.",
        discussion: """
        Reads every archive of every series of the vault and, with --copy, the same file under each copy of \
        the vault (a USB disk, a second server: any directory laid out as the vault is), checks its structure \
        and signature, and hashes each chunk against the signed chunk table. Every damaged chunk is named by \
        copy, archive, index and byte range; 'coldarchive repair ARCHIVE --from COPY' takes it from a copy \
        that holds it intact. A copy that lacks an archive is reported too. \
        --subset n/t reads a deterministic slice of each archive's chunks (as restic's check \
        --read-data-subset does): slices 1/t to t/t together cover every chunk once, so a monthly \
        --subset 1/12, 2/12 … reads every byte once a year. Each archive's scrub is recorded in the vault's \
        catalog (kind "scrub" or "scrub n/t", with its result). \
        Exit status: 0 everything checked is intact, 1 a damaged or missing archive or chunk, 2 usage, \
        3 the vault could not be read.
        """)

    @Option(name: .long, help: "The vault directory.")
    var vault: String

    @Option(name: .customLong("copy"), help: "The root of a copy of the vault (repeatable).")
    var copies: [String] = []

    @Option(name: .long, help: "Read only slice n of t of each archive's chunks (n/t, 1 ≤ n ≤ t).")
    var subset: String?

    @OptionGroup var trust: TrustOption
    @OptionGroup var keyring: KeyringOption

    @Flag(name: .long, help: "Print one JSON object per archive and place (JSON Lines).")
    var json = false

    func validate() throws {
        if let subset, ScrubSubset(subset) == nil { throw ValidationError("--subset takes n/t with 1 ≤ n ≤ t ≤ 10000, e.g. 3/12") }
    }

    func run() throws {
        let trusted = try trust.keys(orFrom: keyring)
        let opened = try Vault.open(vault)
        let slice = subset.flatMap(ScrubSubset.init)
        var damaged = 0, checked = 0
        var bytes: UInt64 = 0
        _ = try Scrub.scrub(vault: opened, copies: copies, subset: slice, trusting: trusted) { result in
            checked += 1
            bytes += result.bytesHashed
            if !result.ok { damaged += 1 }
            if result.copy == opened.root {
                VaultRecords.checked(file: "\(result.copy)/\(result.archive)", kind: slice.map { "scrub \($0)" } ?? "scrub", ok: result.ok,
                                     digest: result.archiveDigest, detail: result.error ?? (result.damaged.isEmpty ? nil : "\(result.damaged.count) damaged chunks"))
            }
            if json {
                try? Output.jsonLine(result)
                return
            }
            let place = "\(result.copy)/\(result.archive)"
            if let error = result.error {
                print("FAILED \(place): \(error)")
            } else if !result.damaged.isEmpty {
                print("DAMAGED \(place): \(result.damaged.count) damaged of the \(result.chunksChecked) chunks checked")
                for chunk in result.damaged {
                    print("  chunk \(chunk.index): bytes \(chunk.offset)–\(chunk.offset + chunk.length - 1)")
                }
            } else {
                print("OK \(place): \(result.chunksChecked) of \(result.chunks) chunks")
            }
        }
        if !json {
            print("\(checked) archive files scrubbed\(slice.map { " (slice \($0))" } ?? ""), \(Output.bytes(bytes)) hashed; \(damaged == 0 ? "all intact" : "\(damaged) damaged or missing")")
        }
        if damaged > 0 { throw ExitCode(1) }
    }
}
