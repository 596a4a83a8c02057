import Foundation

/// What `push` did with one archive and one destination.
public struct PushReport: Sendable, Codable, Equatable {
    public var archive: String
    public var archiveDigest: String
    public var destination: String
    /// Where the copy is: the destination, then the archive's path in its vault (`series/SERIES/NAME.car`)
    /// or its file name.
    public var copy: String
    public var bytes: UInt64
    /// True when the destination already held a verified copy of the same archive: nothing was written.
    public var alreadyThere: Bool
    /// The key ids (hex) the copy's file key is wrapped to.
    public var recipients: [String]
    /// True when the archive's parity sidecar (`NAME.car.parity`) went along, read back byte for byte.
    public var parityCopied: Bool = false

    /// `copy` as an absolute path: what the journal records as the copy's place.
    public var absoluteCopy: String {
        copy.hasPrefix("/") || copy.contains("://") ? copy : FileManager.default.currentDirectoryPath + "/" + copy
    }

    public init(archive: String, archiveDigest: String, destination: String, copy: String, bytes: UInt64, alreadyThere: Bool,
                recipients: [String]) {
        (self.archive, self.archiveDigest, self.destination, self.copy) = (archive, archiveDigest, destination, copy)
        (self.bytes, self.alreadyThere, self.recipients) = (bytes, alreadyThere, recipients)
    }
}

/// Verified copies of archives on paths (issue 20; docs/OFFSITE.md): a USB disk, a second server's
/// mount, a tape staging area. The archive is checked whole first (a damaged archive is not copied:
/// `repair` it), written under a partial name, synced, dropped from the page cache, and read back from
/// the medium — signature and every chunk, the same archive digest — before it takes its name. An
/// existing copy of the same archive is verified and kept; a different file under that name is refused.
public enum Push {
    /// Copies the archive at `path` under `destination` (a directory, created if missing; a `file://` URL
    /// names one too). An archive in a vault keeps its place in the vault's layout, so a destination is a
    /// copy of the vault (`scrub --copy`, `audit` read it as one); another archive goes in as its file name.
    /// Its minisign sidecar (`NAME.minisig`) and parity sidecar (`NAME.parity`) go along with a new copy.
    public static func push(_ path: String, to destination: String, trusting trusted: [SigningPublicKey],
                            workers: Int = Verifier.defaultWorkers) throws -> PushReport {
        let source = try ArchiveFile(path: path)
        _ = try source.checkSignature(trusting: trusted)
        do {
            _ = try source.checkChunkHashes(workers: workers)
        } catch let error as IntegrityError {
            throw IntegrityError.inconsistent(what: "'\(path)' is damaged (\(error)); it was not copied. Repair it from another copy first ('coldarchive repair')")
        }
        let root = directory(of: destination)
        let inVault = Vault.containing(file: path)
        if let vault = inVault?.vault { try checkDestination(root, for: vault) }
        let relative = inVault?.file ?? FileSystem.baseName(of: path)
        let copy = "\(root)/\(relative)"
        if let here = realpath(path, nil), let there = realpath(copy, nil) {
            defer { free(here); free(there) }
            guard strcmp(here, there) != 0 else {
                throw OperationError("'\(destination)' is where '\(path)' already is: a copy must be on other media", kind: .usage)
            }
        }
        _ = try FileSystem.makeDirectories(FileSystem.parent(of: copy))
        var report = PushReport(archive: path, archiveDigest: source.archiveDigest.hex, destination: destination, copy: copy,
                                bytes: source.fileSize, alreadyThere: false, recipients: source.recipientKeyIDs)
        if FileSystem.exists(copy) {
            let existing: ArchiveFile
            do { existing = try ArchiveFile(path: copy) } catch {
                throw OperationError("'\(copy)' exists and is not a readable archive (\(error)); move it away, or 'coldarchive repair \(copy) --from \(path)'", kind: .usage)
            }
            guard existing.archiveDigest == source.archiveDigest else {
                throw OperationError("'\(copy)' exists and is another archive (archive digest \(existing.archiveDigest.hex.prefix(16))…); nothing was copied", kind: .usage)
            }
            _ = try existing.checkSignature(trusting: trusted)
            do {
                _ = try existing.checkChunkHashes(workers: workers)
            } catch let error as IntegrityError {
                throw IntegrityError.inconsistent(what: "the copy '\(copy)' is damaged (\(error)); 'coldarchive repair \(copy) --from \(path)' mends it")
            }
            report.alreadyThere = true
            report.recipients = existing.recipientKeyIDs
            return report
        }
        PartialFiles.removeStale(for: copy)
        let partial = PartialFiles.name(for: copy)
        do {
            let out = try OpenFile.createNew(partial, mode: 0o644)
            try source.copyBytes(0..<source.fileSize, to: out, buffer: ByteBuffer(capacity: 4 << 20))
            try out.sync()
            // Read back from the medium, not from the page cache the write left behind.
            _ = posix_fadvise(out.fd, 0, 0, POSIX_FADV_DONTNEED)
            try source.checkWrittenCopy(at: partial, trusting: trusted, workers: workers)
            try source.checkUnchanged()
            _ = try PartialFiles.publish(partial, as: copy)
        } catch {
            FileSystem.remove(partial)
            throw error
        }
        let sidecar = "\(path).minisig"
        if FileSystem.exists(sidecar), !FileSystem.exists("\(copy).minisig") {
            try FileSystem.writeAtomically(try FileSystem.readSmallFile(sidecar, limit: 1 << 16), to: "\(copy).minisig", mode: 0o644)
        }
        // The parity fits these bytes, which the new copy has: it goes along (its index is signed, so a
        // byte-for-byte read-back is all the check it needs here; `parity check` reads it whole).
        if FileSystem.exists("\(path).parity") {
            try copyFile("\(path).parity", to: "\(copy).parity")
            report.parityCopied = true
        }
        return report
    }

    /// Copies a file under a partial name, syncs it, reads it back from the medium and compares its
    /// BLAKE2b-256 with the source's, then renames it into place.
    static func copyFile(_ from: String, to: String) throws {
        PartialFiles.removeStale(for: to)
        let partial = PartialFiles.name(for: to)
        do {
            let source = try OpenFile.forReading(from)
            let out = try OpenFile.createNew(partial, mode: 0o644, readWrite: true)
            let buffer = ByteBuffer(capacity: 4 << 20)
            let size = try source.size()
            let written = Sodium.Blake2bState(outputBytes: 32)
            var at: UInt64 = 0
            while at < size {
                let n = try source.read(into: buffer.storage, at: at)
                guard n > 0 else { throw IntegrityError.truncated(what: "'\(from)'") }
                let bytes = UnsafeRawBufferPointer(rebasing: buffer.storage[0..<n])
                written.update(bytes)
                try out.write(bytes)
                at += UInt64(n)
            }
            try out.sync()
            _ = posix_fadvise(out.fd, 0, 0, POSIX_FADV_DONTNEED)
            let readBack = Sodium.Blake2bState(outputBytes: 32)
            at = 0
            while at < size {
                let n = try out.read(into: buffer.storage, at: at)
                guard n > 0 else { break }
                readBack.update(UnsafeRawBufferPointer(rebasing: buffer.storage[0..<n]))
                at += UInt64(n)
            }
            guard at == size, readBack.finalize() == written.finalize() else {
                throw IntegrityError.inconsistent(what: "the copy '\(to)' does not read back as it was written")
            }
            try FileSystem.rename(partial, to)
            try FileSystem.syncDirectory(FileSystem.parent(of: to))
        } catch {
            FileSystem.remove(partial)
            throw error
        }
    }

    /// Copies what a vault holds besides its archives to `destination`, so that a copy of the vault can
    /// be audited and restored from alone: `vault.json`, the journal, each series' `series.json` and the
    /// signing-key revocations (FORMAT.md §19). Each is written atomically; a destination that is a copy
    /// of another vault (another vault id) is refused; a journal there is replaced only by one it is the
    /// beginning of (the journal only grows). The catalog is an index, rebuilt from the files
    /// (`catalog rebuild`), and is not copied.
    public static func copyMetadata(of vault: Vault, to destination: String) throws {
        let root = directory(of: destination)
        try checkDestination(root, for: vault)
        for file in try metadataFiles(of: vault) {
            let bytes = try FileSystem.readSmallFile("\(vault.root)/\(file)", limit: 1 << 30)
            let target = "\(root)/\(file)"
            if file == Journal.fileName, FileSystem.exists(target) {
                let there = try FileSystem.readSmallFile(target, limit: 1 << 30)
                guard bytes.starts(with: there) else {
                    throw OperationError("the journal at '\(target)' is not the beginning of the vault's: it was not replaced (another history?); compare them with 'coldarchive vault log'", kind: .integrity)
                }
                if there.count == bytes.count { continue }
            }
            _ = try FileSystem.makeDirectories(FileSystem.parent(of: target))
            try FileSystem.writeAtomically(bytes, to: target, mode: 0o644)
        }
    }

    /// What a vault holds besides its archives and catalog, as paths relative to its root (those that
    /// exist): `vault.json`, the journal, each series' `series.json`, the signing-key revocations.
    public static func metadataFiles(of vault: Vault) throws -> [String] {
        var files = [Vault.settingsName, Journal.fileName]
        for series in try vault.seriesNames() { files.append("\(Vault.seriesFolder)/\(series)/\(Vault.seriesSettingsName)") }
        let revocations = "\(vault.root)/\(Vault.revocationsFolder)"
        if FileSystem.isDirectory(revocations) {
            for name in try FileSystem.directoryEntries(revocations) where !name.hasPrefix(".") { files.append("\(Vault.revocationsFolder)/\(name)") }
        }
        return files.filter { FileSystem.exists("\(vault.root)/\($0)") }
    }

    /// The directory a destination names: a path, or a `file://` URL.
    static func directory(of destination: String) -> String {
        destination.hasPrefix("file://") ? String(destination.dropFirst("file://".count)) : destination
    }

    /// Refuses a destination that is a copy of another vault (another vault id in its `vault.json`),
    /// before anything is written there.
    static func checkDestination(_ root: String, for vault: Vault) throws {
        guard FileSystem.exists("\(root)/\(Vault.settingsName)") else { return }
        guard let there = try? Vault.open(root) else {
            throw OperationError("'\(root)' holds a vault.json that cannot be read; nothing was copied there", kind: .usage)
        }
        guard there.settings.id == vault.settings.id else {
            throw OperationError("'\(root)' is a copy of another vault (id \(there.settings.id), this one is \(vault.settings.id)); nothing was copied there", kind: .usage)
        }
    }

    /// Journals a verified copy of an archive of `vault` (`copy-made`, FORMAT.md §19).
    public static func journal(_ report: PushReport, in vault: Vault, file: String, signer: SigningKey) throws {
        var record = JournalRecord(event: .copyMade)
        record.file = file
        record.archiveDigest = report.archiveDigest
        record.target = report.absoluteCopy
        record.recipients = report.recipients
        _ = try Journal.append(record, to: vault.journalPath, signer: signer)
    }
}
