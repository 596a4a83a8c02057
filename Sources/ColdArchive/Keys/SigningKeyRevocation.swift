import Foundation

/// "Signing key K is compromised since DATE": a signed statement after which `audit` reports every
/// archive signed by K and created at or after DATE (FORMAT.md §14). Written by `keys revoke-signing`,
/// kept in `VAULT/revocations/` or handed to the auditor (`audit --revocation FILE`).
///
///     coldarchive signing key revocation v1
///     revoked: coldarchive-signing-ed25519 BASE64
///     since: 2026-10-01T00:00:00Z
///     reason: laptop of the archiving host stolen; ticket SEC-77
///     signer: coldarchive-signing-ed25519 BASE64
///     signature: BASE64
///
/// The signature is Ed25519 by `signer` over `"coldarchive/v1/signing-key-revocation" || revoked ||
/// i64le(since as Unix seconds) || u32le(length of reason) || reason (UTF-8) || signer`. A statement counts
/// when its signer is the revoked key itself (made while the key was still in hand, like an OpenPGP
/// revocation certificate: a thief who holds the key can only revoke it, which is no gain to them) or a
/// key the auditor trusts (the successor after a rotation, when the old key was lost).
public struct SigningKeyRevocation: Sendable, Equatable {
    public let revoked: SigningPublicKey
    /// From when on the key is to be treated as compromised (whole seconds).
    public let since: Date
    /// One line, said by whoever revoked it: what happened, a ticket.
    public let reason: String
    public let signer: SigningPublicKey
    let signature: [UInt8]

    static let context = Array("coldarchive/v1/signing-key-revocation".utf8)
    static let firstLine = "coldarchive signing key revocation v1"
    static let maxReasonBytes = 1000
    /// The extension of statement files in `VAULT/revocations/`.
    public static let fileExtension = "revocation"

    static func message(revoked: SigningPublicKey, seconds: Int64, reason: String, signer: SigningPublicKey) -> [UInt8] {
        var w = ByteWriter()
        w.raw(context)
        w.raw(revoked.bytes)
        w.i64(seconds)
        w.u32(UInt32(reason.utf8.count))
        w.raw(Array(reason.utf8))
        w.raw(signer.bytes)
        return w.bytes
    }

    /// Signs a statement with `signer` revoking `revoked` (the signer's own public key when nil) from
    /// `since` on. Throws `OperationError` for a reason that is empty, longer than 1 000 bytes or not one line.
    public static func make(revoking revoked: SigningPublicKey? = nil, since: Date, reason: String, signer: SigningKey) throws -> SigningKeyRevocation {
        try checkReason(reason).map { throw OperationError($0, kind: .usage) }
        let seconds = Int64(since.timeIntervalSince1970.rounded(.down))
        let target = revoked ?? signer.publicKey
        let signature = signer.sign(message(revoked: target, seconds: seconds, reason: reason, signer: signer.publicKey))
        return SigningKeyRevocation(revoked: target, since: Date(timeIntervalSince1970: TimeInterval(seconds)), reason: reason,
                                    signer: signer.publicKey, signature: signature)
    }

    private static func checkReason(_ reason: String) -> String? {
        if reason.trimmingCharacters(in: .whitespaces).isEmpty { return "give the reason for the revocation: it is what the auditor reads" }
        if reason.utf8.count > maxReasonBytes { return "the reason is longer than \(maxReasonBytes) bytes" }
        if reason.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) { return "the reason must be one line without control characters" }
        return nil
    }

    private init(revoked: SigningPublicKey, since: Date, reason: String, signer: SigningPublicKey, signature: [UInt8]) {
        self.revoked = revoked
        self.since = since
        self.reason = reason
        self.signer = signer
        self.signature = signature
    }

    /// The statement as its file holds it (six lines, each ending in LF).
    public func encoded() -> String {
        let tag = KeyFiles.Kind.signing.publicKeyTag
        return """
        \(Self.firstLine)
        revoked: \(tag) \(Data(revoked.bytes).base64EncodedString())
        since: \(Journal.rfc3339(since))
        reason: \(reason)
        signer: \(tag) \(Data(signer.bytes).base64EncodedString())
        signature: \(Data(signature).base64EncodedString())

        """
    }

    /// Writes the statement to `path` (mode 0644, atomically), refusing to replace a file there.
    public func save(to path: String) throws {
        guard !FileSystem.exists(path) else {
            throw OperationError("'\(path)' exists: a revocation statement never replaces a file; choose another name")
        }
        try FileSystem.writeAtomically(Array(encoded().utf8), to: path, mode: 0o644)
    }

    /// Writes the statement into `VAULT/revocations/` (made if missing) as `FINGERPRINT-SINCE.revocation`,
    /// where `audit` reads it, and records it in the vault journal signed by `journalSigner`
    /// (`signing-key-revoked`, FORMAT.md §19), so that deleting the file later is an audit finding;
    /// returns the path. Auditors should keep their own copy too (`audit --revocation FILE`): a cut-off
    /// journal tail cannot be told from one never written.
    public func save(inVault root: String, journalSigner: SigningKey, now: Date = Date()) throws -> String {
        let vault = try Vault.open(root)
        let folder = "\(root)/\(Vault.revocationsFolder)"
        if !FileSystem.exists(folder) { try FileSystem.makeDirectory(folder, mode: 0o755) }
        let stamp = Journal.rfc3339(since).filter { $0.isNumber }
        let name = "\(revoked.fingerprint)-\(stamp).\(Self.fileExtension)"
        try save(to: "\(folder)/\(name)")
        var record = JournalRecord(event: .signingKeyRevoked)
        record.key = revoked.fingerprint
        record.file = "\(Vault.revocationsFolder)/\(name)"
        record.reason = reason
        try Journal.append(record, to: vault.journalPath, signer: journalSigner, now: now)
        return "\(folder)/\(name)"
    }

    /// Parses a statement and checks its signature by `signer`. Throws `RevocationError` for text that
    /// is not a statement, or whose signature does not verify. Whether the signer counts is the caller's
    /// question (`isAuthorized(trusting:)`).
    public init(text: String) throws {
        func bad(_ reason: String) -> RevocationError { RevocationError(reason: reason) }
        guard text.hasSuffix("\n") else { throw bad("it does not end with a line end") }
        let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count == 6, lines[0] == Self.firstLine else { throw bad("expected 6 lines starting '\(Self.firstLine)'") }
        func value(_ line: String, _ name: String) throws -> String {
            guard line.hasPrefix("\(name): ") else { throw bad("expected '\(name):'") }
            return String(line.dropFirst(name.count + 2))
        }
        func key(_ line: String, _ name: String) throws -> SigningPublicKey {
            let parts = try value(line, name).split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == KeyFiles.Kind.signing.publicKeyTag,
                  let data = Data(base64Encoded: String(parts[1])) else { throw bad("bad \(name) key") }
            return try SigningPublicKey(bytes: Array(data))
        }
        revoked = try key(lines[1], "revoked")
        guard let since = Journal.parseRFC3339(try value(lines[2], "since")) else { throw bad("bad date: expected YYYY-MM-DDThh:mm:ssZ") }
        self.since = since
        reason = try value(lines[3], "reason")
        if let problem = Self.checkReason(reason) { throw bad(problem) }
        signer = try key(lines[4], "signer")
        guard let signature = Data(base64Encoded: try value(lines[5], "signature")), signature.count == 64 else { throw bad("bad signature") }
        self.signature = Array(signature)
        let message = Self.message(revoked: revoked, seconds: Int64(since.timeIntervalSince1970), reason: reason, signer: signer)
        guard Sodium.verify(signature: self.signature, message: message, publicKey: signer.bytes) else {
            throw bad("its signature does not verify: it was changed after it was signed, or forged")
        }
    }

    /// Whether the statement counts for an auditor trusting `trusted`: signed by the revoked key itself,
    /// or by a trusted key.
    public func isAuthorized(trusting trusted: [SigningPublicKey]) -> Bool {
        signer == revoked || trusted.contains(signer)
    }
}

/// A revocation statement that cannot be taken: not in the format of FORMAT.md §14, or not signed.
public struct RevocationError: ColdArchiveError, Equatable {
    public let reason: String
    public var kind: FailureKind { .integrity }
    public var description: String { "not a valid signing key revocation statement: \(reason)" }
}
