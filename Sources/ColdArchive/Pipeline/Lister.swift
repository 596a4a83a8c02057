/// Reads an archive's manifest: every entry with its size, mode, time and content hash.
public enum Lister {
    /// Checks the signature against the keyring's signing key, opens the manifest with the keyring's
    /// encryption keys (each manifest chunk is authenticated as it is decrypted), and hands every
    /// entry to `each`, in archive order, without holding the manifest in memory.
    public static func list(path: String, keyring: Keyring, trusting trusted: [SigningPublicKey]? = nil, _ each: (ManifestEntry) throws -> Void) throws {
        let archive = try ArchiveFile(path: path)
        try archive.checkSignature(trusting: try trusted ?? keyring.trustedSigningKeys())
        let cipher = try archive.unlock(with: keyring)
        let reader = try ManifestReader(archive: archive, cipher: cipher)
        while let entry = try reader.next() { try each(entry) }
    }
}
