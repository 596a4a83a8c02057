import Foundation

/// A directory of keys (docs/KEYS.md, keys/README.md):
///
///     keyring.json                      settings and the history of every key (no secrets)
///     signing.key / signing.pub         the site's current Ed25519 signing key pair
///     signing-history/FPR.pub           earlier signing public keys (archives they signed stay trusted)
///     signing-chain/NNNN-FPR.statement  each signing key rotation, signed by the key it replaced
///     encryption/KEYID.key / .pub       X25519 encryption key pairs, by key id; a retired key keeps only .pub
///     recipients/KEYID.pub              standing recipients (escrow, break-glass): public keys only
///
/// A host that only archives holds the public files and `signing.key` (`keys export-public
/// --include-signing-key`); an auditor needs only `signing.pub` and `signing-chain/`.
public final class Keyring {
    public let directory: String
    private(set) var metadata: Metadata
    private let passphrase: PassphraseSource

    struct Metadata: Codable {
        struct EncryptionKeyInfo: Codable {
            var id: String
            var created: String
            /// "active", "decrypt-only" (superseded by a rotation) or "retired" (secret destroyed).
            var status: String
            var retired: String?
        }
        struct RecipientInfo: Codable {
            var id: String
            var label: String
            var added: String
        }
        struct SigningKeyInfo: Codable {
            var fingerprint: String
            var created: String
            /// "active" or "superseded".
            var status: String
        }
        var format: String = "coldarchive-keyring"
        var version: Int = 1
        var created: String
        var signingFingerprint: String
        var activeEncryptionKey: String
        var encryptionKeys: [EncryptionKeyInfo]
        var cryptoperiodDays: Int?
        var signingCryptoperiodDays: Int?
        var recipients: [RecipientInfo]?
        var signingKeys: [SigningKeyInfo]?
    }

    /// `$COLDARCHIVE_KEYRING`, else `./keys`.
    public static var defaultDirectory: String {
        ProcessInfo.processInfo.environment["COLDARCHIVE_KEYRING"].flatMap { $0.isEmpty ? nil : $0 } ?? "keys"
    }

    public static let defaultCryptoperiodDays = 90
    public static let defaultSigningCryptoperiodDays = 730

    var metadataPath: String { "\(directory)/keyring.json" }
    public var signingPublicKeyPath: String { "\(directory)/signing.pub" }
    var signingSecretKeyPath: String { "\(directory)/signing.key" }
    var encryptionDirectory: String { "\(directory)/encryption" }
    var recipientsDirectory: String { "\(directory)/recipients" }
    var signingHistoryDirectory: String { "\(directory)/signing-history" }
    public var signingChainDirectory: String { "\(directory)/signing-chain" }
    func encryptionSecretKeyPath(_ id: String) -> String { "\(encryptionDirectory)/\(id).key" }
    func encryptionPublicKeyPath(_ id: String) -> String { "\(encryptionDirectory)/\(id).pub" }

    /// Opens an existing keyring. `passphrase` is asked only when a protected secret key is needed.
    public init(directory: String, passphrase: PassphraseSource = .none) throws {
        self.directory = directory
        self.passphrase = passphrase
        let path = "\(directory)/keyring.json"
        guard FileSystem.exists(path) else { throw KeyError.noKeyring(path: path) }
        let bytes = try FileSystem.readSmallFile(path, limit: 1 << 20)
        do {
            metadata = try JSONDecoder().decode(Metadata.self, from: Data(bytes))
        } catch {
            throw KeyError.malformedKey(what: "keyring '\(path)'", reason: "it is not a keyring file this coldarchive reads (\(error))")
        }
        guard metadata.format == "coldarchive-keyring", metadata.version == 1 else {
            throw KeyError.malformedKey(what: "keyring '\(path)'", reason: "unknown format or version \(metadata.version)")
        }
    }

    private init(directory: String, metadata: Metadata, passphrase: PassphraseSource) {
        self.directory = directory
        self.metadata = metadata
        self.passphrase = passphrase
    }

    /// Makes a new keyring: a signing key pair and a first, active encryption key pair, their secret
    /// halves protected by `passphrase` (nil: unprotected, for unattended hosts). Refuses to touch a
    /// directory that already holds a keyring.
    @discardableResult
    /// Fails, before anyone is asked for a passphrase, when `initialize(at:)` could not succeed: a
    /// keyring is already there, or the nearest existing ancestor is not a writable directory.
    public static func checkCanInitialize(at directory: String) throws {
        for existing in ["keyring.json", "signing.key", "signing.pub"] where FileSystem.exists("\(directory)/\(existing)") {
            throw KeyError.keyringExists(path: directory)
        }
        var ancestor = directory
        while !FileSystem.exists(ancestor) && ancestor != "/" && ancestor != "." { ancestor = FileSystem.parent(of: ancestor) }
        guard FileSystem.isDirectory(ancestor), access(ancestor, W_OK | X_OK) == 0 else {
            throw OperationError("cannot create a keyring at '\(directory)': '\(ancestor)' is not a directory this user can write to")
        }
    }

    public static func initialize(at directory: String, passphrase: Passphrase?, now: Date = Date(),
                                  cryptoperiodDays: Int = defaultCryptoperiodDays) throws -> Keyring {
        try FileSystem.makeDirectories(directory, mode: 0o700)
        for existing in ["keyring.json", "signing.key", "signing.pub"] where FileSystem.exists("\(directory)/\(existing)") {
            throw KeyError.keyringExists(path: directory)
        }
        let signing = SigningKey.generate()
        let stamp = Self.timestamp(now)
        let keyring = Keyring(directory: directory, metadata: Metadata(
            created: stamp, signingFingerprint: signing.publicKey.fingerprint, activeEncryptionKey: "",
            encryptionKeys: [], cryptoperiodDays: cryptoperiodDays, signingCryptoperiodDays: defaultSigningCryptoperiodDays,
            recipients: [], signingKeys: [.init(fingerprint: signing.publicKey.fingerprint, created: stamp, status: "active")]),
            passphrase: passphrase.map { PassphraseSource.fixed($0) } ?? .none)
        try keyring.writeSigningKey(signing, passphrase: passphrase, now: now)
        try keyring.addEncryptionKey(passphrase: passphrase, now: now)
        return keyring
    }

    // MARK: signing

    /// The site's current signing public key.
    public func signingPublicKey() throws -> SigningPublicKey {
        try SigningPublicKey(bytes: KeyFiles.readPublic(kind: .signing, from: signingPublicKeyPath))
    }

    /// Every signing key this site has used: archives signed by any of them are the site's own.
    public func trustedSigningKeys() throws -> [SigningPublicKey] {
        var keys = [try signingPublicKey()]
        if FileSystem.isDirectory(signingHistoryDirectory) {
            for name in try FileSystem.directoryEntries(signingHistoryDirectory) where name.hasSuffix(".pub") {
                keys.append(try SigningPublicKey(bytes: KeyFiles.readPublic(kind: .signing, from: "\(signingHistoryDirectory)/\(name)")))
            }
        }
        return keys
    }

    /// The site's signing key, checked against `signing.pub`.
    public func signingKey() throws -> SigningKey {
        let (secret, info) = try KeyFiles.readSecret(kind: .signing, from: signingSecretKeyPath, passphrase: passphrase)
        let key = try SigningKey(secret: secret)
        guard key.publicKey.bytes == info.publicKey else { throw KeyError.keyFileTampered(path: signingSecretKeyPath) }
        if FileSystem.exists(signingPublicKeyPath), try signingPublicKey() != key.publicKey {
            throw KeyError.malformedKey(what: "signing key pair", reason: "'\(signingPublicKeyPath)' does not belong to '\(signingSecretKeyPath)'")
        }
        return key
    }

    /// Replaces the signing key with a new one and writes a statement, signed by the old key, that
    /// names the new one — so whoever trusts the old key can follow the chain. The old secret key is
    /// destroyed; its public key moves to `signing-history/`.
    @discardableResult
    public func rotateSigningKey(now: Date = Date()) throws -> SigningKeyStatement {
        try refuseOnArchivingHost("keys rotate --signing")
        let old = try signingKey()
        let new = SigningKey.generate()
        let statement = SigningKeyStatement.make(from: old, to: new.publicKey, date: now)
        try FileSystem.makeDirectory(signingChainDirectory, mode: 0o755)
        try FileSystem.makeDirectory(signingHistoryDirectory, mode: 0o755)
        let sequence = (try FileSystem.directoryEntries(signingChainDirectory).filter { $0.hasSuffix(".statement") }.count) + 1
        try FileSystem.writeAtomically(Array(statement.encoded().utf8),
                                       to: "\(signingChainDirectory)/\(String(format: "%04d", sequence))-\(new.publicKey.fingerprint).statement",
                                       mode: 0o644)
        try FileSystem.writeAtomically(Array(KeyFiles.encodePublic(kind: .signing, publicKey: old.publicKey.bytes, created: now).utf8),
                                       to: "\(signingHistoryDirectory)/\(old.publicKey.fingerprint).pub", mode: 0o644)
        // The old secret is overwritten, not only unlinked: kept under a second name while the new
        // key replaces it atomically (a crash in between loses neither), then shredded.
        try removeSupersededSigningKeys()
        let superseded = "\(directory)/\(Self.supersededSigningKeyPrefix)\(getpid())"
        guard link(signingSecretKeyPath, superseded) == 0 else {
            throw SystemError(operation: "link", path: superseded, errno: errno)
        }
        do {
            try writeSigningKey(new, passphrase: try passphrase.passphrase(), now: now)
        } catch {
            FileSystem.remove(superseded)
            throw error
        }
        try FileSystem.shred(superseded)
        var keys = metadata.signingKeys ?? [.init(fingerprint: old.publicKey.fingerprint, created: metadata.created, status: "active")]
        for i in keys.indices where keys[i].status == "active" { keys[i].status = "superseded" }
        keys.append(.init(fingerprint: new.publicKey.fingerprint, created: Self.timestamp(now), status: "active"))
        metadata.signingKeys = keys
        metadata.signingFingerprint = new.publicKey.fingerprint
        try saveMetadata()
        return statement
    }

    static let supersededSigningKeyPrefix = ".signing.key.superseded-"

    /// What a rotation killed before it finished left: a second name of an old secret is shredded; one
    /// of the current signing key (killed before the new key was in place) is only unlinked.
    private func removeSupersededSigningKeys() throws {
        var current = stat()
        let hasCurrent = stat(signingSecretKeyPath, &current) == 0
        for name in try FileSystem.directoryEntries(directory) where name.hasPrefix(Self.supersededSigningKeyPrefix) {
            let path = "\(directory)/\(name)"
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            if hasCurrent && st.st_dev == current.st_dev && st.st_ino == current.st_ino {
                FileSystem.remove(path)
            } else {
                try FileSystem.shred(path)
            }
        }
    }

    private func writeSigningKey(_ key: SigningKey, passphrase: Passphrase?, now: Date) throws {
        try KeyFiles.writeSecret(kind: .signing, secret: key.secret, publicKey: key.publicKey.bytes, created: now,
                                 to: signingSecretKeyPath, passphrase: passphrase)
        try FileSystem.writeAtomically(Array(KeyFiles.encodePublic(kind: .signing, publicKey: key.publicKey.bytes, created: now).utf8),
                                       to: signingPublicKeyPath, mode: 0o644)
    }

    // MARK: encryption

    /// The keys new archives are sealed to: the active encryption key and every standing recipient.
    public func recipientPublicKeys() throws -> [EncryptionPublicKey] {
        let id = metadata.activeEncryptionKey
        var keys = [try readEncryptionPublicKey(encryptionPublicKeyPath(id), id: id)]
        for recipient in metadata.recipients ?? [] {
            keys.append(try readEncryptionPublicKey("\(recipientsDirectory)/\(recipient.id).pub", id: recipient.id))
        }
        return keys
    }

    private func readEncryptionPublicKey(_ path: String, id: String) throws -> EncryptionPublicKey {
        let key = try EncryptionPublicKey(bytes: KeyFiles.readPublic(kind: .encryption, from: path))
        guard key.keyIDHex == id else {
            throw KeyError.malformedKey(what: "encryption public key '\(path)'", reason: "its key id is \(key.keyIDHex), not \(id)")
        }
        return key
    }

    /// The encryption key pair with this key id, if this keyring holds its secret half.
    public func encryptionKey(id: [UInt8]) throws -> EncryptionKey? {
        let path = encryptionSecretKeyPath(id.hex)
        guard FileSystem.exists(path) else { return nil }
        let (secret, info) = try KeyFiles.readSecret(kind: .encryption, from: path, passphrase: passphrase)
        let key = try EncryptionKey(secret: secret)
        guard key.publicKey.bytes == info.publicKey, key.publicKey.keyID == id else { throw KeyError.keyFileTampered(path: path) }
        return key
    }

    /// Makes a new encryption key the active one; the previous active key stays, decrypt-only, so
    /// older archives still open. Returns the new key id.
    @discardableResult
    public func rotateEncryptionKey(now: Date = Date()) throws -> String {
        try refuseOnArchivingHost("keys rotate")
        return try addEncryptionKey(passphrase: try passphrase.passphrase(), now: now)
    }

    @discardableResult
    private func addEncryptionKey(passphrase: Passphrase?, now: Date) throws -> String {
        try FileSystem.makeDirectory(encryptionDirectory, mode: 0o700)
        let key = EncryptionKey.generate()
        let id = key.publicKey.keyIDHex
        try KeyFiles.writeSecret(kind: .encryption, secret: key.secret, publicKey: key.publicKey.bytes, created: now,
                                 to: encryptionSecretKeyPath(id), passphrase: passphrase)
        try FileSystem.writeAtomically(Array(KeyFiles.encodePublic(kind: .encryption, publicKey: key.publicKey.bytes, created: now).utf8),
                                       to: encryptionPublicKeyPath(id), mode: 0o644)
        for i in metadata.encryptionKeys.indices where metadata.encryptionKeys[i].status == "active" {
            metadata.encryptionKeys[i].status = "decrypt-only"
        }
        metadata.encryptionKeys.append(.init(id: id, created: Self.timestamp(now), status: "active"))
        metadata.activeEncryptionKey = id
        try saveMetadata()
        return id
    }

    /// Adds a standing recipient (an escrow or break-glass public key): every new archive, and every
    /// re-wrapped one, is sealed to it as well. Returns its key id.
    @discardableResult
    public func addRecipient(publicKeyFile: String, label: String, now: Date = Date()) throws -> String {
        let key = try EncryptionPublicKey(bytes: KeyFiles.readPublic(kind: .encryption, from: publicKeyFile))
        let id = key.keyIDHex
        guard !(metadata.recipients ?? []).contains(where: { $0.id == id }), !metadata.encryptionKeys.contains(where: { $0.id == id }) else {
            throw KeyError.refused(reason: "key \(id) is already in this keyring")
        }
        try FileSystem.makeDirectory(recipientsDirectory, mode: 0o755)
        try FileSystem.writeAtomically(Array(KeyFiles.encodePublic(kind: .encryption, publicKey: key.bytes, created: now).utf8),
                                       to: "\(recipientsDirectory)/\(id).pub", mode: 0o644)
        metadata.recipients = (metadata.recipients ?? []) + [.init(id: id, label: label, added: Self.timestamp(now))]
        try saveMetadata()
        return id
    }

    /// Destroys the secret half of an encryption key (crypto-shredding): every archive sealed only to
    /// it can no longer be opened by anyone. The active key cannot be retired; rotate first.
    public func retire(keyID: String, now: Date = Date()) throws {
        guard let index = metadata.encryptionKeys.firstIndex(where: { $0.id == keyID }) else { throw KeyError.unknownKey(id: keyID) }
        guard metadata.encryptionKeys[index].status != "active" else {
            throw KeyError.refused(reason: "key \(keyID) is the active encryption key; run 'coldarchive keys rotate' first")
        }
        guard metadata.encryptionKeys[index].status != "retired" else {
            throw KeyError.refused(reason: "key \(keyID) is already retired")
        }
        let path = encryptionSecretKeyPath(keyID)
        if FileSystem.exists(path) { try FileSystem.shred(path) }
        try FileSystem.syncDirectory(encryptionDirectory)
        metadata.encryptionKeys[index].status = "retired"
        metadata.encryptionKeys[index].retired = Self.timestamp(now)
        try saveMetadata()
    }

    /// Re-encrypts every secret key file under a new passphrase (nil: unprotected).
    public func changePassphrase(to newPassphrase: Passphrase?) throws {
        var rewrites: [(path: String, kind: KeyFiles.Kind)] = []
        if FileSystem.exists(signingSecretKeyPath) { rewrites.append((signingSecretKeyPath, .signing)) }
        for key in metadata.encryptionKeys where FileSystem.exists(encryptionSecretKeyPath(key.id)) {
            rewrites.append((encryptionSecretKeyPath(key.id), .encryption))
        }
        // Open everything first, so a wrong passphrase changes nothing.
        let opened = try rewrites.map { ($0, try KeyFiles.readSecret(kind: $0.kind, from: $0.path, passphrase: passphrase)) }
        for (file, (secret, info)) in opened {
            try KeyFiles.writeSecret(kind: file.kind, secret: secret, publicKey: info.publicKey, created: info.created,
                                     to: file.path, passphrase: newPassphrase)
        }
    }

    /// Writes the public half of this keyring (and, if asked, the signing key) to a new directory:
    /// what an archiving host needs (it can create archives, never open them) or an auditor needs.
    /// Writes the public keys (and with `includeSigningKey`, the signing key) to `target`, a new directory —
    /// or, with `update`, an existing archiving host's export, refreshed file by file in place (each file
    /// replaced atomically, `keyring.json` last), so a host picks up a rotation or a new escrow recipient.
    public func exportPublic(to target: String, includeSigningKey: Bool, update: Bool = false) throws {
        if update {
            let existing = try Keyring(directory: target)
            guard existing.isArchivingHost else {
                throw KeyError.refused(reason: "'\(target)' holds encryption secret keys: --update refreshes only an archiving host's export")
            }
            guard existing.metadata.created == metadata.created else {
                throw KeyError.refused(reason: "'\(target)' is the export of another keyring (created \(existing.metadata.created), this one \(metadata.created)); not updated")
            }
        } else if FileSystem.exists("\(target)/keyring.json") {
            throw KeyError.keyringExists(path: target)
        }
        try FileSystem.makeDirectories(target, mode: 0o700)
        func copy(_ from: String, _ to: String, mode: mode_t) throws {
            try FileSystem.writeAtomically(try FileSystem.readSmallFile(from, limit: 1 << 20), to: to, mode: mode)
        }
        try copy(signingPublicKeyPath, "\(target)/signing.pub", mode: 0o644)
        // The same key in minisign's format: `minisign -Vm ARCHIVE -p minisign.pub` (FORMAT.md §5).
        try FileSystem.writeAtomically(Array(Minisign.publicKeyFile(try signingPublicKey()).utf8), to: "\(target)/minisign.pub", mode: 0o644)
        if includeSigningKey {
            let (secret, info) = try KeyFiles.readSecret(kind: .signing, from: signingSecretKeyPath, passphrase: passphrase)
            let hostKey = "\(target)/signing.key"
            // On a host being updated the old signing secret (a rotated key, say) is overwritten, not only
            // unlinked, as a rotation does: kept under a second name while the new file replaces it
            // atomically, then shredded; what a killed update left is shredded first.
            var superseded: String?
            if update {
                try Keyring(directory: target).removeSupersededSigningKeys()
                if FileSystem.exists(hostKey) {
                    let second = "\(target)/\(Self.supersededSigningKeyPrefix)\(getpid())"
                    guard link(hostKey, second) == 0 else { throw SystemError(operation: "link", path: second, errno: errno) }
                    superseded = second
                }
            }
            do {
                try KeyFiles.writeSecret(kind: .signing, secret: secret, publicKey: info.publicKey, created: info.created,
                                         to: hostKey, passphrase: try passphrase.passphrase())
            } catch {
                if let superseded { FileSystem.remove(superseded) }
                throw error
            }
            if let superseded { try FileSystem.shred(superseded) }
        }
        for (from, to) in [(encryptionDirectory, "\(target)/encryption"), (recipientsDirectory, "\(target)/recipients"),
                           (signingHistoryDirectory, "\(target)/signing-history"), (signingChainDirectory, "\(target)/signing-chain")]
            where FileSystem.isDirectory(from) {
            try FileSystem.makeDirectory(to, mode: 0o755)
            for name in try FileSystem.directoryEntries(from) where name.hasSuffix(".pub") || name.hasSuffix(".statement") {
                try copy("\(from)/\(name)", "\(to)/\(name)", mode: 0o644)
            }
        }
        try FileSystem.writeAtomically(try encodedMetadata(), to: "\(target)/keyring.json", mode: 0o644)
    }

    // MARK: facts

    /// One key of this keyring, as `keys list` shows it.
    public struct KeyInfo: Sendable, Codable, Equatable {
        public var id: String
        public var role: String
        public var status: String
        public var created: String
        public var due: String?
        public var holdsSecret: Bool
        public var label: String?
    }

    public func keys(now: Date = Date()) -> [KeyInfo] {
        let period = metadata.cryptoperiodDays ?? Self.defaultCryptoperiodDays
        let signingPeriod = metadata.signingCryptoperiodDays ?? Self.defaultSigningCryptoperiodDays
        var out: [KeyInfo] = []
        let signing = metadata.signingKeys ?? [.init(fingerprint: metadata.signingFingerprint, created: metadata.created, status: "active")]
        for key in signing {
            out.append(KeyInfo(id: key.fingerprint, role: "signing", status: key.status, created: key.created,
                               due: key.status == "active" ? Self.due(key.created, days: signingPeriod) : nil,
                               holdsSecret: key.status == "active" && FileSystem.exists(signingSecretKeyPath), label: nil))
        }
        for key in metadata.encryptionKeys {
            out.append(KeyInfo(id: key.id, role: "encryption", status: key.status, created: key.created,
                               due: key.status == "active" ? Self.due(key.created, days: period) : nil,
                               holdsSecret: FileSystem.exists(encryptionSecretKeyPath(key.id)), label: nil))
        }
        for recipient in metadata.recipients ?? [] {
            out.append(KeyInfo(id: recipient.id, role: "recipient", status: "standing", created: recipient.added, due: nil,
                               holdsSecret: false, label: recipient.label))
        }
        return out
    }

    /// Keys past their cryptoperiod, each with a sentence saying what to do; empty when all is well.
    public func overdueWarnings(now: Date = Date()) -> [String] {
        let host = isArchivingHost
        return keys(now: now).compactMap { key in
            guard let due = key.due, let dueDate = ISO8601DateFormatter().date(from: due), dueDate < now else { return nil }
            let days = Int(now.timeIntervalSince(dueDate) / 86_400)
            let what = key.role == "signing" ? "signing key" : "active encryption key"
            let command = key.role == "signing" ? "coldarchive keys rotate --signing" : "coldarchive keys rotate"
            if host {
                return "the \(what) \(key.id) is \(days) day(s) past its cryptoperiod (due \(due)); this host holds only public keys: ask the key custodian to run '\(command)' and to send an updated export ('coldarchive keys export-public --include-signing-key --update DIR')"
            }
            return "the \(what) \(key.id) is \(days) day(s) past its cryptoperiod (due \(due)); run '\(command)'"
        }
    }

    /// An archiving host's keyring: an export that holds no encryption secret key (it can create and
    /// sign archives, never open them). Key management happens at the custodian, never here.
    public var isArchivingHost: Bool { !FileSystem.exists(encryptionSecretKeyPath(metadata.activeEncryptionKey)) }

    private func refuseOnArchivingHost(_ command: String) throws {
        guard isArchivingHost else { return }
        throw KeyError.refused(reason: """
            this keyring (\(directory)) holds no encryption secret key: it is an archiving host's export, and a key \
            made here would be one the custodian has never seen. Rotate at the custodian: run 'coldarchive \(command)' \
            there, update the offline key backup, then refresh this host with 'coldarchive keys export-public \
            --include-signing-key --update \(directory)' (run at the custodian, or copy its result here)
            """)
    }

    public var activeEncryptionKeyID: String { metadata.activeEncryptionKey }

    /// The ids of the encryption keys whose secret halves this keyring holds.
    public func secretKeyIDs() -> Set<String> {
        Set(metadata.encryptionKeys.map(\.id).filter { FileSystem.exists(encryptionSecretKeyPath($0)) })
    }

    /// The retirement date of each of `ids` this keyring retired.
    func retirements(among ids: [String]) -> [(id: String, retired: String)] {
        metadata.encryptionKeys.compactMap { key in
            ids.contains(key.id) && key.status == "retired" ? (key.id, key.retired ?? "an unrecorded date") : nil
        }
    }

    /// The ids of the standing recipients (escrow keys).
    public var standingRecipientIDs: [String] { (metadata.recipients ?? []).map(\.id) }

    // MARK: storage

    private func encodedMetadata() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try encoder.encode(metadata)) + [0x0A]
    }

    private func saveMetadata() throws {
        try FileSystem.writeAtomically(try encodedMetadata(), to: metadataPath, mode: 0o644)
    }

    static func timestamp(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    private static func due(_ created: String, days: Int) -> String? {
        ISO8601DateFormatter().date(from: created).map { timestamp($0.addingTimeInterval(TimeInterval(days) * 86_400)) }
    }
}
