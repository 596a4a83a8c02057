import ArgumentParser
import ColdArchive
import ColdArchiveParity
import Foundation

struct RepairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair",
        abstract: "Rebuild a damaged archive chunk by chunk from other copies of it.",
        discussion: """
        Checks every chunk of ARCHIVE against its signed chunk table (no secret key is needed), and takes \
        each damaged one from a copy given with --from that holds it intact; a copy of another archive is \
        refused, a rewrapped copy serves. When ARCHIVE's own header or trailer is damaged, or the file is \
        gone, they are taken from a copy too. The result is verified whole — signature and every chunk, \
        the same archive digest — before it replaces ARCHIVE; until then ARCHIVE is left as it was. \
        Repair works even when every copy is damaged, as long as each chunk is intact in one of them; a \
        chunk damaged everywhere is named and nothing is changed.

        With --parity, the damaged bytes are rebuilt from the archive's parity sidecar (ARCHIVE.parity, \
        made by 'create --parity' or 'parity create'): no other copy is needed, up to the parity's budget. \
        With --from as well, the copies are tried first and the parity after.

        Exit status: 0 repaired or already intact, 1 a chunk intact nowhere (or no usable copy; or damage \
        beyond the parity's budget), 2 usage (a copy of another archive, parity of another archive or of \
        the archive before a rewrap), 3 any other error.
        """)

    @Argument(help: "The archive to repair (it may be missing: it is then rebuilt from the copies).")
    var archive: String

    @Option(name: .long, parsing: .upToNextOption, help: "Other copies of the same archive (files on other disks, downloaded objects).")
    var from: [String] = []

    @Flag(name: .long, help: "Rebuild from the archive's parity sidecar (see 'coldarchive parity').")
    var parity = false

    @Option(name: .customLong("parity-file"), help: ArgumentHelp("The parity sidecar, when it is not ARCHIVE.parity (implies --parity).", valueName: "FILE"))
    var parityFile: String?

    @OptionGroup var trust: TrustOption
    @OptionGroup var keyring: KeyringOption

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func run() throws {
        let trusted = try trust.keys(orFrom: keyring)
        if parity || parityFile != nil {
            if !from.isEmpty {
                do {
                    try report(try Repair.repair(archive, from: from, trusting: trusted))
                    return
                } catch let error as IntegrityError {
                    Output.warning("the copies could not mend it (\(error)); trying the parity")
                }
            }
            let repaired = try Parity.repair(archive, sidecar: parityFile, trusting: trusted)
            if json {
                try Output.jsonLine(repaired)
            } else if repaired.wasIntact {
                print("OK \(archive): intact (every slice matches its parity index); nothing to repair")
            } else {
                print("  damaged: \(Parity.describe(repaired.damagedRanges))\(repaired.damagedParitySlices > 0 ? "; \(repaired.damagedParitySlices) parity slices damaged too (not needed)" : "")")
                print("REPAIRED \(archive): \(repaired.damagedSlices) slices (\(repaired.rebuiltBytes) bytes) rebuilt from the parity '\(repaired.sidecar)'; verified whole, archive digest \(repaired.archiveDigest)")
            }
            return
        }
        try report(try Repair.repair(archive, from: from, trusting: trusted))
    }

    private func report(_ report: Repair.Report) throws {
        if json {
            try Output.jsonLine(report)
            return
        }
        for (copy, why) in report.unusable.sorted(by: { $0.key < $1.key }) {
            Output.warning("copy '\(copy)' was not used: \(why)")
        }
        if report.wasIntact {
            print("OK \(archive): intact (\(report.chunks) chunks checked); nothing to repair")
            return
        }
        if let from = report.structureFrom {
            print("\(archive): header, recipient block and trailer taken from '\(from)' (\(report.structureProblem ?? "its own did not verify")); it is now wrapped to \(report.recipients.joined(separator: ", ")) as that copy is — rewrap it if that is not the current key")
        }
        for chunk in report.repaired {
            print("  chunk \(chunk.index) at byte \(chunk.offset): taken from '\(chunk.from)'")
        }
        print("REPAIRED \(archive): \(report.repaired.count) of \(report.chunks) chunks replaced; verified whole, archive digest \(report.archiveDigest)")
    }
}
