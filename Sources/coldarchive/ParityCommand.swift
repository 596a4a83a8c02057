import ArgumentParser
import ColdArchive
import ColdArchiveParity
import Foundation

struct ParityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parity",
        abstract: "Reed–Solomon recovery data for archives, in a signed sidecar beside each (NAME.car.parity).",
        discussion: """
        With parity, 'repair ARCHIVE --parity' rebuilds the only copy of an archive, bit for bit, from damage up \
        to the parity's budget: scattered bad sectors, whole chunks, one contiguous bad region as a failing \
        disk or tape gives. The archive itself does not change (an archive under Object Lock can get parity \
        later); the sidecar is bound to the archive digest and signed by the site signing key. \
        docs/OFFSITE.md "Parity" says what a budget recovers; docs/FORMAT.md §21 specifies the sidecar.
        """,
        subcommands: [Create.self, Check.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make (or make again) the parity sidecar of each archive.",
            discussion: """
            Each archive is verified whole first (a damaged one gets no parity: repair it), then read once; the \
            sidecar appears under its name only when complete. Needs the signing secret key (not the decryption \
            keys). Exit status: 0 made, 1 an archive is damaged or untrusted, 2 usage, 3 any other error.
            """)

        @Argument(help: "The archives to protect.")
        var archives: [String]

        @Option(name: .long, help: ArgumentHelp("Parity as a share of each archive, 1% to 100%.", valueName: "SHARE"))
        var parity: String = "5%"

        @OptionGroup var keyring: KeyringOption

        @Flag(name: .long, help: "Print one JSON report per archive.")
        var json = false

        func validate() throws {
            if archives.isEmpty { throw ValidationError("name at least one ARCHIVE") }
            try ParityCommand.validateShare(parity)
        }

        func run() throws {
            let ring = try keyring.open()
            let signer = try ring.signingKey()
            let trusted = try ring.trustedSigningKeys()
            let share = try Parity.basisPoints(parity)
            for archive in archives {
                let report = try Parity.create(for: archive, basisPoints: share, signingKey: signer, trusting: trusted)
                if json { try Output.jsonLine(report) } else { ParityCommand.describe(report) }
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an archive against its parity sidecar, keyless: what is damaged and whether it can be rebuilt.",
            discussion: """
            Reads the archive and the sidecar's signed index, hashes every slice of the archive, and for each \
            damaged one checks the parity of its group. Changes nothing. Exit status: 0 intact, 1 damaged \
            (the report says whether 'repair --parity' can rebuild it), 2 usage, 3 any other error.
            """)

        @Argument(help: "The archive to check.")
        var archive: String

        @Option(name: .customLong("parity-file"), help: ArgumentHelp("The sidecar (default: ARCHIVE.parity).", valueName: "FILE"))
        var parityFile: String?

        @OptionGroup var trust: TrustOption
        @OptionGroup var keyring: KeyringOption

        @Flag(name: .long, help: "Print the report as JSON.")
        var json = false

        func run() throws {
            let report = try Parity.check(archive, sidecar: parityFile, trusting: try trust.keys(orFrom: keyring))
            if json {
                try Output.jsonLine(report)
            } else if report.damagedSlices == 0 {
                print("OK \(archive): every one of \(report.slices) slices matches its parity index (\(report.sidecar))")
            } else {
                print("DAMAGED \(archive): \(report.damagedSlices) of \(report.slices) slices (\(Parity.describe(report.damagedRanges))); \(report.damagedParitySlices) parity slices damaged")
                print(report.recoverable
                      ? "  recoverable: coldarchive repair \(archive) --parity"
                      : "  NOT recoverable from the parity alone: \(report.unrecoverableSlices) slices lie in groups that lost more than \(report.parityColumns) slices; repair from another copy (--from)")
            }
            if report.damagedSlices > 0 { throw ExitCode(FailureKind.integrity.rawValue) }
        }
    }

    /// A share the argument parser reports as a usage error.
    static func validateShare(_ share: String) throws {
        do { _ = try Parity.basisPoints(share) } catch { throw ValidationError("\(error)") }
    }

    static func describe(_ report: Parity.Report) {
        let mib = { (bytes: UInt64) in
            bytes < 1 << 20 ? String(format: "%.1f KiB", Double(bytes) / 1024) : String(format: "%.1f MiB", Double(bytes) / 1_048_576)
        }
        print("parity \(report.sidecar): \(mib(report.parityBytes)) (\(String(format: "%.1f", report.overheadPercent)) % of \(mib(report.archiveBytes))), \(report.parityColumns) parity columns per stripe of \(report.columns / report.stripes)\(report.stripes > 1 ? " (\(report.stripes) stripes)" : "")")
        print("  recovers any \(report.chunksRecoverable) damaged chunks, or one damaged region of up to \(mib(report.contiguousBytesRecoverable)), or scattered damage of up to \(report.parityColumns) slices of \(report.sliceSize / 1024) KiB per group")
    }
}
