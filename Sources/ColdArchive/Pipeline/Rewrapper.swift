import Foundation

/// What a re-wrap changed.
public struct RewrapReport: Sendable, Equatable, Codable {
    public var archive: String
    public var previousRecipients: [String]
    public var recipients: [String]
    /// Unchanged by a re-wrap: the archive's identity and signature still hold.
    public var headerDigest: String
    public var archiveDigest: String
    /// False when the archive was already wrapped to exactly the current recipients: the file was left
    /// as it was (a rewrap of such an archive would only change its bytes and its mtime).
    public var rewritten: Bool
    /// What became of the minisign sidecar (`FILE.minisig`): signed anew, or removed and why; nil when
    /// the file was not rewritten.
    public var sidecar: String? = nil
}

/// Re-wraps an archive's file key to the keyring's current recipients (the active encryption key and
/// every standing recipient) without touching its payload, trailer or signature.
public enum Rewrapper {
    public static func rewrap(path: String, keyring: Keyring, workers: Int = Verifier.defaultWorkers) throws -> RewrapReport {
        let archive = try ArchiveFile(path: path)
        try archive.checkSignature(trusting: try keyring.trustedSigningKeys())
        let fileKey = try archive.unwrapFileKey { try keyring.encryptionKey(id: $0) }

        let recipients = try keyring.recipientPublicKeys()
        if Set(archive.recipientKeyIDs) == Set(recipients.map(\.keyIDHex)) && archive.recipientKeyIDs.count == recipients.count {
            return RewrapReport(archive: path, previousRecipients: archive.recipientKeyIDs, recipients: archive.recipientKeyIDs,
                                headerDigest: archive.headerDigest.hex, archiveDigest: archive.archiveDigest.hex, rewritten: false)
        }
        var block = RecipientBlock(recipients: recipients.map { EncryptionKey.wrap(fileKey, to: $0) }, headerMAC: [])
        block.headerMAC = RecipientBlock.mac(headerDigest: archive.headerDigest, entries: block.entriesEncoded(),
                                             macKey: fileKey.headerMACKey(salt: archive.header.payloadSalt))
        let blockBytes = block.encoded()
        let headerBytes = archive.header.encoded()
        let oldFooter = archive.footer
        let newPayloadOffset = UInt64(headerBytes.count + blockBytes.count)

        // Asked before anything is written: a wrong passphrase must not fail after the file was replaced.
        let signer: SigningKey? = FileSystem.exists(keyring.signingSecretKeyPath) ? try keyring.signingKey() : nil
        var sidecar: String?
        // What a killed rewrap of this archive left behind (its process is gone) goes first.
        PartialFiles.removeStale(for: path)
        let partial = PartialFiles.name(for: path)
        do {
            let out = try OpenFile.createNew(partial, mode: 0o644)
            try out.write(headerBytes)
            try out.write(blockBytes)
            // The payload and the trailer, byte for byte.
            let buffer = ByteBuffer(capacity: 4 << 20)
            var offset = oldFooter.payloadOffset
            let end = oldFooter.trailerOffset + oldFooter.trailerLength
            while offset < end {
                let want = Int(min(UInt64(buffer.capacity), end - offset))
                buffer.count = try archive.file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer.storage[0..<want]), at: offset)
                guard buffer.count == want else { throw IntegrityError.truncated(what: "payload") }
                try out.write(buffer.bytes)
                offset += UInt64(want)
            }
            try archive.checkUnchanged()
            let delta = Int64(newPayloadOffset) - Int64(oldFooter.payloadOffset)
            let footer = Footer(formatVersion: oldFooter.formatVersion, payloadOffset: newPayloadOffset, trailerOffset: UInt64(Int64(oldFooter.trailerOffset) + delta),
                                trailerLength: oldFooter.trailerLength)
            try out.write(footer.encoded())
            try out.sync()

            // Prove the new file before it replaces the old one: structure, signature, every chunk,
            // and that the new recipient block opens to the same file key.
            let rewrapped = try ArchiveFile(path: partial)
            try rewrapped.checkSignature(trusting: try keyring.trustedSigningKeys())
            _ = try rewrapped.checkChunkHashes(workers: workers)
            guard rewrapped.headerDigest == archive.headerDigest, rewrapped.archiveDigest == archive.archiveDigest else {
                throw IntegrityError.inconsistent(what: "the re-wrapped archive's identity differs from the original's")
            }
            let held = keyring.secretKeyIDs()
            if rewrapped.recipientKeyIDs.contains(where: held.contains) {
                _ = try rewrapped.checkManifest(cipher: rewrapped.unlock(with: keyring))
            } else {
                let mac = RecipientBlock.mac(headerDigest: rewrapped.headerDigest, entries: rewrapped.recipientBlock.entriesEncoded(),
                                             macKey: fileKey.headerMACKey(salt: rewrapped.header.payloadSalt))
                guard Sodium.constantTimeEqual(mac, rewrapped.recipientBlock.headerMAC) else { throw IntegrityError.headerMACMismatch }
            }
            try FileSystem.rename(partial, path)
            try FileSystem.syncDirectory(FileSystem.parent(of: path))
            // The file's bytes changed, so its minisign sidecar is signed anew (its trusted comment, with
            // the unchanged archive digest, stays the same) — or, by a keyring without the signing key,
            // removed rather than left to fail `minisign -V`.
            if let signer {
                try Minisign.sign(file: path, trustedComment: Minisign.trustedComment(for: rewrapped.summary, fileName: FileSystem.baseName(of: path)),
                                  signer: signer)
                sidecar = "signed anew"
            } else if FileSystem.exists(path + Minisign.suffix) {
                FileSystem.remove(path + Minisign.suffix)
                sidecar = "removed: this keyring has no signing key to sign the new bytes; sign it where the signing key is"
            }
        } catch {
            FileSystem.remove(partial)
            throw error
        }
        return RewrapReport(archive: path, previousRecipients: archive.recipientKeyIDs, recipients: recipients.map(\.keyIDHex),
                            headerDigest: archive.headerDigest.hex, archiveDigest: archive.archiveDigest.hex, rewritten: true, sidecar: sidecar)
    }
}

/// Which archives depend on an encryption key: for `keys retire`, before it destroys the key.
public enum KeyDependencies {
    public struct Dependency: Sendable, Equatable, Codable {
        public var archive: String
        /// Other recipients of the archive whose secret this keyring still holds.
        public var otherHeldKeys: [String]
        /// Standing recipients (escrow) the archive is also wrapped to.
        public var escrowKeys: [String]
        /// True when, after retiring the key, this keyring can no longer open the archive.
        public var becomesUnreadable: Bool { otherHeldKeys.isEmpty }
    }

    /// What a scan for dependants found.
    public struct Scan: Sendable, Equatable, Codable {
        /// Archives read (files that are not archives are skipped and not counted).
        public var archivesScanned: Int
        /// Those wrapped to the key, in path order.
        public var dependents: [Dependency]
        /// The archive digest (hex) of every archive read: what tells a copy of an archive by its content.
        public var archiveDigests: Set<String> = []
    }

    /// Every archive at `paths` — archive files, or directories searched recursively — whose file key
    /// is wrapped to `keyID`. A path that does not exist is an error, never an empty result: a typo must
    /// not read as "no archive depends on this key" before the key is destroyed.
    public static func scan(_ paths: [String], wrappedTo keyID: String, keyring: Keyring) throws -> Scan {
        let held = keyring.secretKeyIDs().subtracting([keyID])
        let escrow = Set(keyring.standingRecipientIDs)
        var scan = Scan(archivesScanned: 0, dependents: [])
        func consider(_ path: String) {
            guard let archive = try? ArchiveFile(path: path) else { return }
            scan.archivesScanned += 1
            scan.archiveDigests.insert(archive.archiveDigest.hex)
            let ids = archive.recipientKeyIDs
            guard ids.contains(keyID) else { return }
            scan.dependents.append(Dependency(archive: path, otherHeldKeys: ids.filter(held.contains), escrowKeys: ids.filter(escrow.contains)))
        }
        for path in paths {
            guard FileSystem.exists(path) else {
                throw OperationError("'\(path)' does not exist; name the directories or archive files that hold your archives", kind: .usage)
            }
            guard FileSystem.isDirectory(path) else {
                consider(path)
                continue
            }
            guard let walker = FileManager.default.enumerator(atPath: path) else {
                throw OperationError("cannot read the directory '\(path)'")
            }
            while let relative = walker.nextObject() as? String {
                let file = "\(path)/\(relative)"
                if !FileSystem.isDirectory(file) { consider(file) }
            }
        }
        scan.dependents.sort { $0.archive.utf8.lexicographicallyPrecedes($1.archive.utf8) }
        return scan
    }
}
