import Foundation

/// Reads an archive's manifest: every entry with its size, mode, time and content hash.
public enum Lister {
    /// Checks the signature against the keyring's signing key, opens the manifest with the keyring's
    /// encryption keys (each manifest chunk is authenticated as it is decrypted), and hands every
    /// entry to `each` with the archive's format version, in archive order, without holding the
    /// manifest in memory.
    public static func list(path: String, keyring: Keyring, trusting trusted: [SigningPublicKey]? = nil,
                            _ each: (ManifestEntry) throws -> Void) throws {
        try list(path: path, keyring: keyring, trusting: trusted, withVersion: { entry, _ in try each(entry) })
    }

    /// The same, with the archive's format version beside each entry.
    public static func list(path: String, keyring: Keyring, trusting trusted: [SigningPublicKey]? = nil,
                            withVersion each: (ManifestEntry, Int) throws -> Void) throws {
        let archive = try ArchiveFile(path: path)
        try archive.checkSignature(trusting: try trusted ?? keyring.trustedSigningKeys())
        let cipher = try archive.unlock(with: keyring)
        let reader = try ManifestReader(archive: archive, cipher: cipher)
        while let entry = try reader.next() { try each(entry, Int(archive.header.formatVersion)) }
    }

    /// The archive's source description (FORMAT.md §8, v2): what was archived, from where, with which
    /// exclude rules; nil for a version 1 archive, which has none.
    public static func sourceDescription(path: String, keyring: Keyring, trusting trusted: [SigningPublicKey]? = nil) throws -> SourceDescription? {
        let archive = try ArchiveFile(path: path)
        try archive.checkSignature(trusting: try trusted ?? keyring.trustedSigningKeys())
        guard archive.header.formatVersion >= FormatV1.version2 else { return nil }
        let cipher = try archive.unlock(with: keyring)
        let reader = try ManifestReader(archive: archive, cipher: cipher)
        // The description precedes the first entry: reading one entry (or the end) reads it.
        _ = try reader.next()
        guard let bytes = reader.description else { return nil }
        return try JSONDecoder().decode(SourceDescription.self, from: Data(bytes))
    }
}
