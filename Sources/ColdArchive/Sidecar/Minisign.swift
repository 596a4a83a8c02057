import Foundation

/// minisign-compatible files for the site signing key (FORMAT.md §5, "Sidecar files"): the public key in
/// minisign's format, and `FILE.minisig` signatures in minisign's prehashed "ED" form — an Ed25519
/// signature of the file's BLAKE2b-512, then a "global" signature binding a trusted comment to it — so
/// that anyone can check an archive with the stock `minisign -V`. Format: minisign's documentation
/// (https://jedisct1.github.io/minisign/), "Signature format" and "Public key format".
public enum Minisign {
    /// The sidecar's name is the archive's with this appended.
    public static let suffix = ".minisig"

    /// The key id minisign shows and checks: here the first 8 bytes of the key's fingerprint (§14).
    public static func keyID(_ key: SigningPublicKey) -> [UInt8] {
        Array(Sodium.blake2b(key.bytes, outputBytes: 16).prefix(8))
    }

    /// How minisign prints a key id: the 8 bytes as a little-endian integer, upper-case hex.
    static func displayID(_ id: [UInt8]) -> String { Array(id.reversed()).hex.uppercased() }

    /// `minisign.pub`: an untrusted comment line, then base64("Ed" || key id || public key).
    public static func publicKeyFile(_ key: SigningPublicKey) -> String {
        let body = Array("Ed".utf8) + keyID(key) + key.bytes
        return "untrusted comment: minisign public key \(displayID(keyID(key))) (coldarchive signing key \(key.fingerprint))\n"
            + Data(body).base64EncodedString() + "\n"
    }

    /// The trusted comment of an archive's signature: what the archive is, in one line a person reads
    /// (`minisign -V` prints it) and `audit` checks against the archive.
    public static func trustedComment(for summary: ArchiveSummary, fileName: String) -> String {
        var parts = ["coldarchive archive_digest:\(summary.archiveDigest)"]
        if let series = summary.series {
            parts += ["series:\(series)", "sequence:\(summary.sequence ?? 0)", "period:\(summary.period ?? "-")"]
        }
        parts.append("file:\(fileName)")
        return parts.joined(separator: "\t")
    }

    /// The `.minisig` text for a file whose BLAKE2b-512 is `prehash`.
    static func signature(prehash: [UInt8], signer: SigningKey, trustedComment: String) -> String {
        precondition(prehash.count == 64)
        let id = keyID(signer.publicKey)
        let signature = signer.sign(prehash)
        let global = signer.sign(signature + Array(trustedComment.utf8))
        return "untrusted comment: coldarchive signature, key \(signer.publicKey.fingerprint) (minisign key id \(displayID(id)))\n"
            + Data(Array("ED".utf8) + id + signature).base64EncodedString() + "\n"
            + "trusted comment: \(trustedComment)\n"
            + Data(global).base64EncodedString() + "\n"
    }

    /// Writes `path.minisig` for the file at `path` (read once, streaming), atomically.
    public static func sign(file path: String, trustedComment: String, signer: SigningKey) throws {
        let text = signature(prehash: try prehash(of: path), signer: signer, trustedComment: trustedComment)
        try FileSystem.writeAtomically(Array(text.utf8), to: path + suffix, mode: 0o644)
    }

    /// BLAKE2b-512 of a file, read in 1 MiB blocks.
    static func prehash(of path: String) throws -> [UInt8] {
        let file = try OpenFile.forReading(path)
        let size = try file.size()
        let state = Sodium.Blake2bState(outputBytes: 64)
        var offset: UInt64 = 0
        while offset < size {
            let block = try file.readExactly(Int(min(1 << 20, size - offset)), at: offset, what: path)
            state.update(block)
            offset += UInt64(block.count)
        }
        return state.finalize()
    }

    /// A parsed `.minisig` file.
    public struct Signature: Sendable, Equatable {
        public let keyID: [UInt8]
        public let signature: [UInt8]
        public let trustedComment: String
        public let globalSignature: [UInt8]

        public init(text: String) throws {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0.hasSuffix("\r") ? $0.dropLast() : $0) }
            guard lines.count >= 4, lines[0].hasPrefix("untrusted comment:"), lines[2].hasPrefix("trusted comment: "),
                  let body = Data(base64Encoded: lines[1]), body.count == 74, Array(body.prefix(2)) == Array("ED".utf8),
                  let global = Data(base64Encoded: lines[3]), global.count == 64 else {
                throw IntegrityError.malformed(what: "minisign signature (not minisign's prehashed ED form)")
            }
            keyID = Array(body[2..<10])
            signature = Array(body[10..<74])
            trustedComment = String(lines[2].dropFirst("trusted comment: ".count))
            globalSignature = Array(global)
        }

        /// Checks the key id and the global signature (the trusted comment is the signer's), without
        /// reading the file; `prehash` given, the file signature too.
        public func check(signer: SigningPublicKey, prehash: [UInt8]? = nil) -> String? {
            guard keyID == Minisign.keyID(signer) else { return "it names key id \(Minisign.displayID(keyID)), not the signer's \(Minisign.displayID(Minisign.keyID(signer)))" }
            guard Sodium.verify(signature: globalSignature, message: signature + Array(trustedComment.utf8), publicKey: signer.bytes) else {
                return "its trusted comment is not signed by the archive's signer"
            }
            if let prehash, !Sodium.verify(signature: signature, message: prehash, publicKey: signer.bytes) {
                return "its signature does not match the file's bytes"
            }
            return nil
        }
    }
}
