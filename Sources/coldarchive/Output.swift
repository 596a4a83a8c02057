import ColdArchive
import Foundation

/// Exit statuses besides the error kinds (`FailureKind`: 1 integrity, 2 usage, 3 other).
enum ExitStatus {
    /// The archive is complete and valid, but some sources could not be archived exactly.
    static let inexact: Int32 = 4
}

/// Printing for the commands: results on stdout, messages on stderr, JSON on request.
enum Output {
    static func error(_ message: String) {
        // Escaped (DisplayName): a name in the message cannot forge a line, and a byte that is not
        // UTF-8 shows as \xHH.
        let lines = message.split(separator: "\n", omittingEmptySubsequences: false).map { DisplayName.escaped(String($0)) }
        FileHandle.standardError.write(Data("coldarchive: error: \(lines.joined(separator: "\n"))\n".utf8))
    }

    /// A warning whose names are already escaped (a `SourceWarning`'s description).
    static func warning(escaped message: String) {
        FileHandle.standardError.write(Data("coldarchive: warning: \(message)\n".utf8))
    }

    /// A warning is one line: whatever names it quotes are escaped (DisplayName).
    static func warning(_ message: String) {
        FileHandle.standardError.write(Data("coldarchive: warning: \(DisplayName.escaped(message))\n".utf8))
    }

    /// What a custodian does after changing the keys: archiving hosts and the offline backup do not
    /// follow by themselves.
    static func nextStepsAtTheCustodian(_ ring: Keyring) {
        print("""
            next steps:
              1. update the offline key backup: copy \(ring.directory) to it (the new secret key exists only here)
              2. refresh every archiving host's export: coldarchive keys export-public --keyring \(ring.directory) --include-signing-key --update HOST_KEYRING
            """)
    }

    /// A passphrase being chosen that is shorter than recommended: a warning, not a refusal.
    static func warnIfShort(_ passphrase: Passphrase?) {
        guard let passphrase, passphrase.length < Passphrase.recommendedMinimumBytes else { return }
        warning("the passphrase has only \(passphrase.length) bytes; it protects every archive for years — prefer a phrase of several words (\(Passphrase.recommendedMinimumBytes) characters or more)")
    }

    static func json<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    /// One compact JSON object on its own line (JSON Lines), for commands that report several items.
    static func jsonLine<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    static func bytes(_ n: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@ (%llu bytes)", value, units[unit], n)
    }

    static func summary(_ s: ArchiveSummary) {
        let rows: [(String, String)] = [
            ("format", "coldarchive v\(s.formatVersion), suite \(s.suite) (X25519 sealed box, XChaCha20-Poly1305, BLAKE2b, zstd, Ed25519, pax tar)"),
            ("archive id", s.archiveID),
            ("created", s.created),
            ("label", s.label ?? "-"),
            ("sources", s.sources.isEmpty ? "-" : s.sources.joined(separator: ", ")),
            ("creator", s.creator ?? "-"),
            ("signed by", s.signerFingerprint),
            ("recipients", s.recipientKeyIDs.joined(separator: ", ")),
            ("entries", "\(s.entryCount) (\(bytes(s.contentBytes)) of file content)"),
            ("chunks", "\(s.chunkCount) (\(s.manifestFirstChunk) data, \(s.chunkCount - s.manifestFirstChunk) manifest), up to \(bytes(UInt64(s.chunkRawSize))) each"),
            ("tar stream", bytes(s.tarBytes)),
            ("payload", bytes(s.payloadBytes)),
            ("file size", bytes(s.fileSize)),
            ("header digest", s.headerDigest),
            ("archive digest", s.archiveDigest),
        ] + (s.series.map { series in
            [("series", "\(series), sequence \(s.sequence ?? 0), period \(s.period ?? "-")"),
             ("previous", s.previousArchiveDigest ?? "none (the first of its series)")]
        } ?? [])
        // The label and source names come from the plaintext header, which anyone can write into.
        for (name, value) in rows { print("\(name.padding(toLength: 15, withPad: " ", startingAt: 0)) \(DisplayName.escaped(value))") }
    }
}
