import Foundation

/// What to archive and how.
public struct CreateOptions: Sendable {
    /// Directories (or files) to archive; each becomes a top-level entry named after its last component.
    public var sources: [String]
    /// The archive file to write. It must not exist yet: archives are never overwritten.
    public var output: String
    /// Vendor exports (.zip, .tar, .tar.gz, …) to archive, each as a top-level directory named after
    /// the file; they are checked and unpacked into a private directory beside the output first.
    public var imports: [String] = []
    public var label: String?
    /// zstd level (1…19 are sensible; 3 is zstd's own default).
    public var compressionLevel: Int32 = 3
    public var chunkRawSize: UInt32 = FormatV1.defaultChunkRawSize
    /// Worker threads that compress and seal; defaults to the number of cores.
    public var workers: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// What to leave out (FORMAT.md §8 records them): a pattern without `/` is matched against each
    /// name below a source (`*.tmp`, `cache`), one with `/` against the whole archive path from the
    /// top-level name (`crm/tmp/*`), with shell wildcards (`fnmatch(3)` on the names' bytes: `?` is one
    /// byte, `*` does not cross `/`). An
    /// excluded directory is not walked. Sources named on the command line are never excluded.
    public var exclude: [String] = []
    /// Stay on each source's file system: a directory on another one (a mount point) is archived as an
    /// empty directory, as `tar --one-file-system` and `restic --one-file-system` do.
    public var oneFileSystem = false
    /// Where the archive sits in a series (signed header fields, FORMAT.md §5); nil for a lone archive.
    public var position: ArchiveHeader.SeriesPosition?
    /// Seconds since the epoch before which the archive must not be deleted (signed; FORMAT.md §5).
    public var retainUntil: Int64?
    /// For an incremental or differential: its mode and its base's archive digest (signed header
    /// fields `backup_mode` and `base_archive_digest`, FORMAT.md §5). Set by `Vault.create`.
    public var backup: (mode: ArchiveHeader.BackupMode, base: [UInt8])?

    public init(sources: [String], output: String, label: String? = nil) {
        self.sources = sources
        self.output = output
        self.label = label
    }
}

/// What `create` made.
public struct CreateReport: Sendable {
    public var summary: ArchiveSummary
    /// Things the user should know that did not stop the archive: skipped special files,
    /// files that changed while they were read.
    public var warnings: [SourceWarning]
    /// True when some source could not be archived exactly (`create` exits 4).
    public var isInexact: Bool { warnings.contains { $0.archiveIsInexact } }
    /// The most chunks that were ever read but not yet written: the streaming design's memory bound.
    public var peakChunksInFlight: Int
}

/// Makes an archive: tar (libarchive) → zstd frames → XChaCha20-Poly1305 chunks → one file, written
/// under a temporary name, fsynced and linked into place only when complete and signed.
public enum ArchiveCreator {
    public static let version = "0.2.0"
    /// The archive format version `create` writes (FORMAT.md §4).
    public static let formatVersion = Int(FormatV1.version2)
    /// What the header's `creator` field says (FORMAT.md §5).
    public static let creatorName = "coldarchive \(version)"

    public static func create(_ options: CreateOptions, signer: SigningKey, recipients: [EncryptionPublicKey],
                              now: Date = Date()) throws -> CreateReport {
        try create(options, signer: signer, recipients: recipients, now: now, changes: nil)
    }

    /// With `changes`: an incremental or differential (entries unchanged since the base are left out,
    /// and paths gone are recorded as deleted), and in any case the draft of the new change index.
    static func create(_ options: CreateOptions, signer: SigningKey, recipients: [EncryptionPublicKey],
                       now: Date, changes: ChangeTracker?) throws -> CreateReport {
        guard !options.sources.isEmpty || !options.imports.isEmpty else { throw OperationError("no source to archive", kind: .usage) }
        guard options.sources.count + options.imports.count <= FormatV1.maxSources else {
            throw OperationError("\(options.sources.count) sources; an archive holds at most \(FormatV1.maxSources) — archive their parent directory instead", kind: .usage)
        }
        if let label = options.label {
            guard label.utf8.count <= FormatV1.maxLabelBytes, !label.utf8.contains(0) else {
                throw OperationError("the label must be at most \(FormatV1.maxLabelBytes) bytes of text", kind: .usage)
            }
        }
        guard !recipients.isEmpty else { throw OperationError("no encryption key to seal the archive to", kind: .other) }
        guard ZstdFrameEncoder.levelRange.contains(options.compressionLevel) else {
            throw OperationError("compression level \(options.compressionLevel) is outside zstd's range \(ZstdFrameEncoder.levelRange)", kind: .usage)
        }
        guard (FormatV1.minChunkRawSize...FormatV1.maxChunkRawSize).contains(options.chunkRawSize) else {
            throw OperationError("chunk size \(options.chunkRawSize) is outside \(FormatV1.minChunkRawSize)...\(FormatV1.maxChunkRawSize)", kind: .usage)
        }
        var named = try Array(zip(topLevelNames(options.sources), options.sources))
        var warnings: [SourceWarning] = []

        // Vendor exports: checked whole, then unpacked beside the output, archived, and removed.
        var workspace: String?
        var ownFiles: [FileIdentity: String] = [:]
        defer { if let workspace { try? FileSystem.removeTree(workspace) } }
        if !options.imports.isEmpty {
            let directory = FileSystem.parent(of: options.output)
            PartialFiles.removeStale(for: options.output)
            let space = "\(directory)/\(ExportImporter.workspacePrefix)\(getpid())-\(Sodium.randomBytes(4).hex)"
            workspace = space
            try FileSystem.makeDirectory(space, mode: 0o700)
            if let identity = FileIdentity(path: space) { ownFiles[identity] = "the import workspace of this run" }
            for export in options.imports {
                let name = ExportImporter.name(of: export)
                guard !named.contains(where: { PathRules.same($0.0, name) }), !name.isEmpty else { throw SourceError.duplicateName(name: name) }
                warnings += try ExportImporter.unpack(export, into: "\(space)/\(name)")
                named.append((name, "\(space)/\(name)"))
            }
        }

        // Sources are archived in bytewise order of their names: the format's canonical entry order.
        let ordered = named.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
        let names = ordered.map(\.0)
        let imported = Set(options.imports.map { PathRules.key(ExportImporter.name(of: $0)) })
        let description = SourceDescription(sources: ordered.map { name, path in
            let isImport = imported.contains(PathRules.key(name))
            return .init(name: name, origin: isImport ? options.imports.first { PathRules.same(ExportImporter.name(of: $0), name) } ?? path : path,
                         kind: isImport ? "import" : FileSystem.isDirectory(path) ? "directory" : "file")
        }, exclude: options.exclude, oneFileSystem: options.oneFileSystem, host: ProcessInfo.processInfo.hostName)
        for pattern in options.exclude where pattern.isEmpty || pattern.utf8.contains(0) {
            throw OperationError("exclude pattern '\(DisplayName.escaped(pattern))' is empty or holds a NUL byte", kind: .usage)
        }
        let rules = ExcludeRules(patterns: options.exclude)
        let summary = try write(to: options.output, signer: signer, recipients: recipients, label: options.label, sources: names,
                                compressionLevel: options.compressionLevel, chunkRawSize: options.chunkRawSize,
                                workers: options.workers, now: now, description: description, position: options.position,
                                retainUntil: options.retainUntil, backup: options.backup,
                                manifestObserver: changes.map { tracker in { try tracker.stored($0) } }) { content in
            let outcome = try SourceWalker.walkInBackground(ordered.map { (name: $0.0, path: $0.1) }, into: content, ownFiles: ownFiles,
                                                            exclude: rules, oneFileSystem: options.oneFileSystem, changes: changes)
            warnings += outcome.warnings
            return (outcome.entryCount, outcome.contentBytes)
        }
        return CreateReport(summary: summary.summary, warnings: warnings + summary.warnings, peakChunksInFlight: summary.peakChunksInFlight)
    }

    /// Where the archive's content goes: the tar stream, and the manifest entry for each tar entry,
    /// in the same order.
    struct ContentWriter {
        let tar: TarWriter
        /// The manifest entry for the tar entry just written, complete (content hash included).
        let record: (ManifestEntry) throws -> Void
        /// The manifest entry for the regular file whose header was just written, without its
        /// content hash: the next `entry.size` bytes written to `tar` are its content, and the
        /// sealing workers hash them on their way into the chunks.
        let recordFile: (ManifestEntry) throws -> Void
        /// The file begun with `recordFile` is complete; what reading it found (FORMAT.md §8 flags).
        let endFile: (ManifestEntry.Flags, UInt64?, [UInt8]?) throws -> Void
        /// Bytes that go straight into the data section, bypassing libarchive: for an already-formed
        /// tar stream (and for tests that craft hostile ones). Not to be mixed with `tar`.
        let raw: (UnsafeRawBufferPointer) throws -> Void
        /// The archive file being written, by identity: a source that contains it must not archive it.
        let ownFiles: [FileIdentity: String]
    }

    /// Writes one archive whose content `fill` produces, returning its summary. `fill` returns the
    /// entry count and the content bytes it recorded. Everything around the content — keys, header,
    /// chunking, sealing, trailer, signature, atomic publication — happens here and only here.
    static func write(to output: String, signer: SigningKey, recipients: [EncryptionPublicKey], label: String?, sources: [String],
                      compressionLevel: Int32, chunkRawSize: UInt32, workers: Int, now: Date,
                      formatVersion: UInt16 = FormatV1.version2, description: SourceDescription? = nil,
                      position: ArchiveHeader.SeriesPosition? = nil, retainUntil: Int64? = nil,
                      backup: (mode: ArchiveHeader.BackupMode, base: [UInt8])? = nil,
                      manifestObserver: ((ManifestEntry) throws -> Void)? = nil, describeAsGiven: Bool = false,
                      fill: (ContentWriter) throws -> (entries: UInt64, contentBytes: UInt64)) throws
        -> (summary: ArchiveSummary, peakChunksInFlight: Int, warnings: [SourceWarning]) {
        if FileSystem.exists(output) {
            throw OperationError("'\(output)' already exists; archives are never overwritten — choose another name")
        }
        let directory = FileSystem.parent(of: output)
        guard FileSystem.isDirectory(directory) else {
            throw OperationError("the directory '\(directory)' for the archive does not exist")
        }
        PartialFiles.removeStale(for: output)

        // Keys and the header.
        let fileKey = FileKey.generate()
        let v2 = formatVersion >= FormatV1.version2
        var header = ArchiveHeader(
            archiveID: Sodium.randomBytes(16), created: Int64(now.timeIntervalSince1970.rounded(.down)),
            chunkRawSize: chunkRawSize, noncePrefix: Sodium.randomBytes(16), payloadSalt: Sodium.randomBytes(32),
            signerPublicKey: signer.publicKey.bytes, label: label, sources: v2 ? [] : sources, creator: creatorName)
        header.formatVersion = formatVersion
        if v2 {
            header.position = position
            header.retainUntil = retainUntil
            if let backup {
                guard position != nil, backup.base.count == 32 else {
                    throw OperationError("an incremental or differential archive belongs to a series and names its base", kind: .usage)
                }
                header.backupMode = backup.mode
                header.baseArchiveDigest = backup.base
            }
            if let position {
                guard ArchiveHeader.isValidSeriesName(position.series), ArchiveHeader.isValidPeriod(position.period), position.sequence >= 1,
                      (position.previousArchiveDigest != nil) == (position.sequence >= 2) else {
                    throw OperationError("series '\(position.series)', sequence \(position.sequence), period '\(position.period)' do not make a valid series position (FORMAT.md §5)", kind: .usage)
                }
            }
            if let retainUntil, retainUntil < header.created {
                throw OperationError("retain-until lies before the archive's creation time", kind: .usage)
            }
        }
        let headerBytes = header.encoded()
        guard headerBytes.count - FormatV1.preludeSize <= Int(FormatV1.maxHeaderLength) else {
            throw OperationError("the header would exceed \(FormatV1.maxHeaderLength) bytes; use fewer sources or shorter names", kind: .usage)
        }
        let headerDigest = Sodium.blake2b(headerBytes)
        guard recipients.count <= FormatV1.maxRecipientCount else {
            throw OperationError("\(recipients.count) recipients; an archive holds at most \(FormatV1.maxRecipientCount)")
        }
        var block = RecipientBlock(recipients: recipients.map { EncryptionKey.wrap(fileKey, to: $0) }, headerMAC: [])
        block.headerMAC = RecipientBlock.mac(headerDigest: headerDigest, entries: block.entriesEncoded(),
                                             macKey: fileKey.headerMACKey(salt: header.payloadSalt))
        let blockBytes = block.encoded()
        let cipher = ChunkCipher(payloadKey: fileKey.payloadKey(salt: header.payloadSalt), noncePrefix: header.noncePrefix,
                                 headerDigest: headerDigest)

        let partial = PartialFiles.name(for: output)
        let out = try OpenFile.createNew(partial, mode: 0o644)
        // BLAKE2b-512 of every byte as it is written, for the minisign sidecar (no second read).
        let prehash = Sodium.Blake2bState(outputBytes: 64)
        func emit(_ bytes: UnsafeRawBufferPointer) throws {
            try out.write(bytes)
            prehash.update(bytes)
        }
        func emit(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try emit($0) } }
        do {
            try emit(headerBytes)
            try emit(blockBytes)
            let payloadOffset = UInt64(headerBytes.count + blockBytes.count)

            // The payload: the tar stream, then the manifest, through the sealing pipeline.
            var records: [ChunkRecord] = []
            var payloadBytes: UInt64 = 0
            // Written back as it goes (every 32 MiB), so the final fsync waits only for the tail.
            var writtenBack = payloadOffset
            var rawBytes: [FormatV1.Section: UInt64] = [.data: 0, .manifest: 0]
            let spool = try ManifestSpool(directory: directory, version: formatVersion)
            let manifest = PendingManifest {
                try spool.append($0)
                try manifestObserver?($0)
            }
            let stream = ChunkSealingStream(cipher: cipher, chunkRawSize: chunkRawSize, level: compressionLevel,
                                            workers: workers) { chunk in
                try emit(chunk.sealed.bytes)
                records.append(chunk.record)
                payloadBytes += UInt64(chunk.record.sealedLength)
                if payloadOffset + payloadBytes - writtenBack >= 32 << 20 {
                    out.startWriteback(offset: writtenBack, count: payloadOffset + payloadBytes - writtenBack)
                    writtenBack = payloadOffset + payloadBytes
                }
                rawBytes[chunk.section, default: 0] += UInt64(chunk.record.rawLength)
                // This chunk's files are hashed now: their entries can go to the spool.
                try manifest.flush()
            }
            let tar = try TarWriter(version: formatVersion) { try stream.write($0) }
            let recordFile: (ManifestEntry) throws -> Void = { entry in
                // A sparse file's content hash comes from the walk (its tar data is the map and the regions).
                guard entry.size > 0, entry.sparseMap == nil else {
                    var empty = entry
                    empty.contentHash = Sodium.blake2b([])
                    manifest.appendFile(empty, hash: nil)
                    return
                }
                let hash = ContentHash()
                try stream.expectContent(hash, length: entry.size)
                manifest.appendFile(entry, hash: hash)
            }
            var ownFiles: [FileIdentity: String] = [:]
            var st = stat()
            if fstat(out.fd, &st) == 0 { ownFiles[FileIdentity(st)] = "the archive being written ('\(output)')" }
            let (entryCount, contentBytes) = try fill(ContentWriter(tar: tar, record: { try manifest.append($0) }, recordFile: recordFile,
                                                                    endFile: { try manifest.endFile(flags: $0, readSize: $1, contentHash: $2) },
                                                                    raw: { try stream.write($0) }, ownFiles: ownFiles))
            try tar.finish()
            let manifestFirstChunk = try stream.startManifestSection()
            try manifest.flush()
            guard manifest.isEmpty else {
                throw OperationError("internal error: a file's content hash was never computed; nothing was published")
            }
            // The source description names the top-level entries that were archived (a source that
            // was skipped, a FIFO say, has none), in their order.
            var described = description ?? SourceDescription(sources: [], host: nil)
            // (`describeAsGiven`: tests seal a description that does not match, to show readers refuse it.)
            if !describeAsGiven { described.sources = spool.topLevel.map { name in
                described.sources.first { PathRules.same($0.name, name) } ?? .init(name: name, origin: "", kind: "directory")
            } }
            let descriptionBytes = described.encoded()
            guard descriptionBytes.count <= FormatV1.maxDescriptionBytes else {
                throw OperationError("the source description would exceed \(FormatV1.maxDescriptionBytes) bytes; use fewer sources", kind: .usage)
            }
            try spool.replay(description: descriptionBytes) { try stream.write($0) }
            try stream.finish()

            // The trailer, signed, and the footer.
            let totals = TrailerTotals(headerDigest: headerDigest, chunkCount: UInt64(records.count),
                                       manifestFirstChunk: manifestFirstChunk, tarBytes: rawBytes[.data] ?? 0,
                                       manifestBytes: rawBytes[.manifest] ?? 0, entryCount: entryCount,
                                       contentBytes: contentBytes, payloadBytes: payloadBytes)
            var table = ByteWriter(capacity: records.count * FormatV1.chunkRecordSize)
            for record in records { record.encode(into: &table) }
            let digest = Sodium.Blake2bState(outputBytes: 32)
            let totalsBytes = totals.encoded()
            digest.update(totalsBytes)
            digest.update(table.bytes)
            let archiveDigest = digest.finalize()
            let signature = signer.sign(FormatV1.signatureContext + archiveDigest)
            try emit(totalsBytes)
            try emit(table.bytes)
            try emit(signature)
            let footer = Footer(formatVersion: formatVersion, payloadOffset: payloadOffset, trailerOffset: payloadOffset + payloadBytes,
                                trailerLength: totals.trailerLength)
            try emit(footer.encoded())
            try out.sync()
            // Read back what was written, as a reader would, before it gets its final name: every
            // structure, the totals, and the signature.
            let written = try ArchiveFile(path: partial)
            try written.checkSignature(trusting: [signer.publicKey])
            guard written.archiveDigest == archiveDigest else {
                throw OperationError("internal error: the archive read back differs from the one written; nothing was published")
            }
            var published = try PartialFiles.publish(partial, as: output)

            let summary = ArchiveSummary(header: header, headerDigest: headerDigest, recipients: block.recipients,
                                         totals: totals, archiveDigest: archiveDigest,
                                         fileSize: footer.trailerOffset + footer.trailerLength + UInt64(FormatV1.footerSize))
            // The minisign sidecar: `minisign -Vm FILE -p minisign.pub` checks the archive with stock tools.
            let sidecar = Minisign.signature(prehash: prehash.finalize(), signer: signer,
                                             trustedComment: Minisign.trustedComment(for: summary, fileName: FileSystem.baseName(of: output)))
            do {
                try FileSystem.writeAtomically(Array(sidecar.utf8), to: output + Minisign.suffix, mode: 0o644)
            } catch {
                published.append(SourceWarning(.sidecarNotWritten, path: output + Minisign.suffix,
                                               "was not written (\(error)); the archive is complete and valid. Sign it again with 'coldarchive rewrap'"))
            }
            return (summary, stream.peakChunksInFlight, published)
        } catch {
            FileSystem.remove(partial)
            throw error
        }
    }

    /// The top-level name of each source: its last path component, which must be unique.
    static func topLevelNames(_ sources: [String]) throws -> [String] {
        var seen = Set<[UInt8]>()
        return try sources.map { source in
            guard FileSystem.exists(source) else { throw SourceError.missing(path: source) }
            var name = FileSystem.baseName(of: source)
            if name == "." || name == ".." || name == "/" || name.isEmpty {
                let resolved = URL(fileURLWithPath: source).standardizedFileURL.resolvingSymlinksInPath().lastPathComponent
                name = resolved
            }
            guard !name.isEmpty, name != "/", name != ".", name != ".." else {
                throw OperationError("cannot name source '\(source)'; pass a directory below the root", kind: .usage)
            }
            guard seen.insert(PathRules.key(name)).inserted else { throw SourceError.duplicateName(name: name) }
            return name
        }
    }
}

/// The temporary files an archive is written to before it is complete.
package enum PartialFiles {
    /// `DIR/.NAME.partial-PID-RANDOM-HOST`: hidden, never mistaken for an archive by name, and telling
    /// which process on which machine writes it (HOST: 8 hex digits of BLAKE2b of the host name), so
    /// that a later run removes it once that process is gone — and only then, and only on that machine:
    /// a vault on a shared disk may be written from several hosts.
    package static func name(for output: String) -> String {
        "\(FileSystem.parent(of: output))/.\(FileSystem.baseName(of: output))\(marker)\(getpid())-\(Sodium.randomBytes(4).hex)-\(hostTag)"
    }

    static let marker = ".partial-"

    /// This machine's tag in partial and staging names.
    static let hostTag: String = {
        var name = [CChar](repeating: 0, count: 256)
        _ = gethostname(&name, name.count - 1)
        let host = name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return Array(Sodium.blake2b(Array(host.utf8)).prefix(4)).hex
    }()

    /// Makes the finished file visible under its final name without ever replacing an existing
    /// file, then syncs the directory. `link(2)` fails if the name is taken; where the file system has
    /// no hard links (vfat, exFAT, some network mounts) the name is checked and the file renamed.
    /// Returns warnings: once the archive is in place, a failed directory sync is not a failed create.
    static func publish(_ partial: String, as output: String) throws -> [SourceWarning] {
        if NameCodec.withCString(partial, { p in NameCodec.withCString(output) { link(p, $0) } }) == 0 {
            FileSystem.remove(partial)
        } else {
            let code = errno
            switch code {
            case EEXIST:
                throw OperationError("'\(output)' appeared while the archive was written; the new archive was discarded")
            case EPERM, ENOTSUP, EOPNOTSUPP, EMLINK, ENOSYS:
                guard !FileSystem.exists(output) else {
                    throw OperationError("'\(output)' appeared while the archive was written; the new archive was discarded")
                }
                try FileSystem.rename(partial, output)
            default:
                throw SystemError(operation: "link", path: output, errno: code)
            }
        }
        do {
            try FileSystem.syncDirectory(FileSystem.parent(of: output))
            return []
        } catch {
            return [SourceWarning(.notDurable, path: output,
                                  "is complete, but its directory could not be synced (\(error)); run 'sync' before removing the media")]
        }
    }

    /// Removes what runs that were killed left behind in the output's directory (their process is
    /// gone): partial files of any archive (`.NAME.partial-PID-RANDOM[-HOST]`, written on this host;
    /// without HOST by version 0.2), and manifest spools and import workspaces killed before they were
    /// unlinked. A directory that `create` or `rewrap` writes into never accumulates them.
    package static func removeStale(for output: String) {
        let directory = FileSystem.parent(of: output)
        guard let names = try? FileSystem.directoryEntries(directory) else { return }
        for name in names where name.hasPrefix(".") {
            guard let pid = stalePID(name) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileSystem.removeTree("\(directory)/\(name)")
            }
        }
    }

    /// The writer's process id in a temporary name of this host's, or nil when `name` is not one.
    static func stalePID(_ name: String) -> Int32? {
        let rest: Substring
        if let prefix = [ManifestSpool.namePrefix, ExportImporter.workspacePrefix].first(where: { name.hasPrefix($0) }) {
            rest = name.dropFirst(prefix.count)
        } else if let range = name.range(of: marker, options: .backwards) {
            rest = name[range.upperBound...]
            let fields = rest.split(separator: "-", omittingEmptySubsequences: false)
            guard fields.count == 2 || (fields.count == 3 && fields[2] == hostTag) else { return nil }
        } else {
            return nil
        }
        guard let pid = rest.split(separator: "-").first.flatMap({ Int32($0) }), pid > 0 else { return nil }
        return pid
    }
}
