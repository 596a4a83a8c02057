import Foundation

/// A deterministic slice of every archive's chunks, as restic's `check --read-data-subset n/t` reads
/// one of its packs: `n/t` takes chunk `i` of an archive whose archive digest starts with the
/// little-endian u64 `r` when `(i + r) mod t = n − 1`. The `t` slices `1/t` … `t/t` together cover every
/// chunk once, so a monthly `--subset 1/12`, `2/12` … reads every byte of a vault once a year; the
/// rotation by the digest spreads each slice over the archives instead of taking the same indexes of all.
public struct ScrubSubset: Sendable, Equatable, CustomStringConvertible {
    public let part: UInt64
    public let of: UInt64

    /// Parses `n/t`, 1 ≤ n ≤ t ≤ 10 000; nil otherwise.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let n = UInt64(parts[0]), let t = UInt64(parts[1]), n >= 1, n <= t, t <= 10_000 else { return nil }
        (part, of) = (n, t)
    }

    public var description: String { "\(part)/\(of)" }

    func contains(chunk index: UInt64, archiveDigest: [UInt8]) -> Bool {
        let rotation = archiveDigest.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        return (index % of + rotation % of) % of == part - 1
    }
}

/// What `scrub` found of one archive in one place (the vault or one of its copies).
public struct ScrubResult: Sendable, Codable, Equatable {
    /// The vault's root or the copy's.
    public var copy: String
    /// The archive's path under it (`series/SERIES/NAME.car`).
    public var archive: String
    public var archiveDigest: String?
    public var chunksChecked: UInt64 = 0
    public var chunks: UInt64 = 0
    /// Bytes hashed, when no chunk was damaged.
    public var bytesHashed: UInt64 = 0
    /// Every damaged chunk among those checked: index, byte offset, length.
    public var damaged: [DamagedChunk] = []
    /// What kept the archive from being checked: missing, its structure or signature.
    public var error: String?
    public var ok: Bool { error == nil && damaged.isEmpty }
}

/// The keyless check of a vault and its copies (issue 20): every chunk (or a `ScrubSubset` of them)
/// of every archive, in the vault and in each copy of it, hashed and compared with the signed chunk
/// table (FORMAT.md §11); damaged chunks are named by copy, archive, index and byte offset, so
/// `repair` can take them from a copy that holds them intact.
public enum Scrub {
    /// Scrubs every archive of every series of `vault`, and the file of the same relative path under
    /// each of `copies` (roots of copies of the vault, e.g. `/mnt/usb/vault`). Archives must be signed
    /// by one of `trusted`. `each` sees every result as it comes. Returns them all, vault first.
    public static func scrub(vault: Vault, copies: [String] = [], subset: ScrubSubset? = nil, trusting trusted: [SigningPublicKey],
                             workers: Int = Verifier.defaultWorkers, each: (ScrubResult) -> Void = { _ in }) throws -> [ScrubResult] {
        var relatives: [String] = []
        for series in try vault.seriesNames() {
            for name in try vault.archiveNames(in: series) {
                relatives.append("\(Vault.seriesFolder)/\(series)/\(name.fileName)")
            }
        }
        // What the journal says the vault holds (added, not pruned) counts too: an archive lost from the
        // vault is reported missing there, and its copies are still checked.
        var recorded: [String] = []
        var pruned = Set<String>()
        if FileSystem.exists(vault.journalPath) {
            try Journal.read(vault.journalPath, trusting: trusted) { line in
                guard let record = line.record ?? line.signed, let file = record.file else { return }
                if record.event == .archiveAdded { recorded.append(file) }
                if record.event == .archivePruned { pruned.insert(file) }
            }
        }
        let listed = Set(relatives)
        relatives += recorded.filter { !listed.contains($0) && !pruned.contains($0) }
        var results: [ScrubResult] = []
        for root in [vault.root] + copies {
            for relative in relatives {
                let result = check("\(root)/\(relative)", copy: root, archive: relative, subset: subset, trusting: trusted, workers: workers)
                each(result)
                results.append(result)
            }
        }
        return results
    }

    /// One archive file, keylessly; never throws (what went wrong is the result's `error`).
    public static func check(_ path: String, copy: String, archive: String, subset: ScrubSubset?, trusting trusted: [SigningPublicKey],
                             workers: Int) -> ScrubResult {
        var result = ScrubResult(copy: copy, archive: archive)
        guard FileSystem.exists(path) else {
            result.error = FileSystem.exists(copy) ? "missing: this copy has no '\(archive)'" : "missing: '\(copy)' does not exist (not mounted?)"
            return result
        }
        do {
            let file = try ArchiveFile(path: path)
            result.archiveDigest = file.archiveDigest.hex
            result.chunks = file.totals.chunkCount
            _ = try file.checkSignature(trusting: trusted)
            let digest = file.archiveDigest
            var checked: UInt64 = 0
            let selected: ((UInt64) -> Bool)? = subset.map { subset in
                { index in
                    let take = subset.contains(chunk: index, archiveDigest: digest)
                    if take { checked += 1 }
                    return take
                }
            }
            do {
                result.bytesHashed = try file.checkChunkHashes(workers: workers, selected: selected, damaged: { result.damaged.append($0) })
            } catch IntegrityError.chunkHashMismatch {
                // Each damaged chunk was reported above.
            }
            result.chunksChecked = selected == nil ? result.chunks : checked
        } catch {
            result.error = "\(error)"
        }
        return result
    }
}
