import Foundation
import ColdArchive

/// Verified copies of archives in an S3-compatible object store (issue 20; docs/OFFSITE.md "Object
/// stores"). The archive is verified whole first; it goes up as one PutObject, or as a multipart upload
/// of parts of at least 8 MiB (at most 10 000, sized from the archive), uploaded in parallel, each with its
/// SHA-256 as `x-amz-checksum-sha256` and as the signed payload hash; an interrupted multipart push resumes
/// (ListParts) without sending its finished parts again. Then the object version is read back in full with
/// ranged GETs and compared with the verified archive, and its Object Lock retention and legal hold are
/// read back: only then does it count as a copy.
public enum S3Push {
    public struct Options: Sendable {
        /// COMPLIANCE or GOVERNANCE; with `retainUntil`.
        public var lockMode: String?
        public var retainUntil: Date?
        public var legalHold = false
        public var storageClass: String?
        /// Parts uploaded (and ranges read back) at once.
        public var concurrency = 8
        /// Bytes per part; nil: from the archive's size.
        public var partSize: Int?
        public init() {}
    }

    public struct Report: Sendable, Codable, Equatable {
        public var archive: String
        public var archiveDigest: String
        public var url: String
        public var versionID: String?
        public var bytes: UInt64
        /// 0 for a single PutObject.
        public var parts: Int
        /// Parts an earlier, interrupted push had finished, not sent again.
        public var resumedParts: Int
        /// True when the store already held this file as the newest version (read back, nothing written).
        public var alreadyThere: Bool
        public var lockMode: String?
        public var retainUntil: Date?
        public var legalHold: Bool
        public var storageClass: String?
        /// The key ids the copy is wrapped to.
        public var recipients: [String]
    }

    /// The one test seam: `COLDARCHIVE_TEST_KILL_AFTER_PARTS=N` makes a push kill itself with SIGKILL once
    /// it has sent N parts, as a crash or a pulled cable would, so that a test can resume it deterministically.
    static let killAfterParts: Int? = ProcessInfo.processInfo.environment["COLDARCHIVE_TEST_KILL_AFTER_PARTS"].flatMap(Int.init)

    /// The minimum part size S3 allows (except for the last part), and its most parts.
    static let minimumPart = 8 << 20
    static let maxParts = 10_000

    /// Parts of at least 8 MiB, a whole number of MiB, few enough for 10 000 to hold the archive.
    static func partSize(for size: UInt64) -> Int {
        let mib = UInt64(1 << 20)
        let needed = (size + UInt64(maxParts) - 1) / UInt64(maxParts)
        return Int(max(UInt64(minimumPart), (needed + mib - 1) / mib * mib))
    }

    /// Copies the archive at `path` to `location` (its key: the archive's place in its vault, else its
    /// file name, under the prefix) through `client`. Blocks until done. Throws `IntegrityError` for a
    /// damaged archive, `S3Error` when the store refuses or cannot be reached after retries, or when what
    /// it holds does not read back as the archive or its lock is not what was asked.
    public static func push(_ path: String, to location: S3Location, client: S3Client, options: Options,
                            trusting trusted: [SigningPublicKey]) throws -> Report {
        try blocking { try await push(path, to: location, client: client, options: options, trusting: trusted) }
    }

    /// The same, for async callers.
    public static func push(_ path: String, to location: S3Location, client: S3Client, options: Options,
                            trusting trusted: [SigningPublicKey]) async throws -> Report {
        let archive = try ArchiveFile(path: path)
        _ = try archive.checkSignature(trusting: trusted)
        do {
            _ = try archive.checkChunkHashes(workers: Verifier.defaultWorkers)
        } catch let error as IntegrityError {
            throw IntegrityError.inconsistent(what: "'\(path)' is damaged (\(error)); it was not copied. Repair it first ('coldarchive repair')")
        }
        let relative = Vault.containing(file: path)?.file ?? FileSystem.baseName(of: path)
        let key = location.key(relative)
        let box = Box(file: try OpenFile.forReading(path))
        let facts = Facts(path: path, size: archive.fileSize, digest: archive.summary.archiveDigest, recipients: archive.recipientKeyIDs)
        let report = try await upload(facts, file: box, key: key, location: location, client: client, options: options)
        try archive.checkUnchanged()
        return report
    }

    /// What the upload needs of the archive.
    struct Facts: Sendable {
        var path: String
        var size: UInt64
        var digest: String
        var recipients: [String]
    }

    /// An open file handed to tasks (read with pread only).
    final class Box: @unchecked Sendable {
        let file: OpenFile
        init(file: OpenFile) { self.file = file }
        func read(_ range: Range<UInt64>) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: Int(range.count))
            let n = try out.withUnsafeMutableBytes { try file.read(into: $0, at: range.lowerBound) }
            guard n == out.count else { throw IntegrityError.truncated(what: "'\(file.path)'") }
            return out
        }
    }

    private static func upload(_ archive: Facts, file: Box, key: String, location: S3Location, client: S3Client,
                               options: Options) async throws -> Report {
        let size = archive.size
        let bucket = location.bucket
        var settings = S3Client.WriteSettings(lockMode: options.lockMode, retainUntil: options.retainUntil, legalHold: options.legalHold,
                                              storageClass: options.storageClass)
        if settings.lockMode == nil { settings.retainUntil = nil }
        var report = Report(archive: archive.path, archiveDigest: archive.digest, url: location.url(key), versionID: nil,
                            bytes: size, parts: 0, resumedParts: 0, alreadyThere: false, lockMode: nil, retainUntil: nil,
                            legalHold: false, storageClass: options.storageClass, recipients: archive.recipients)

        // The newest version may already be this very file.
        if let existing = try await client.headObject(bucket: bucket, key: key), existing.size == size,
           (try? await readBack(file: file, size: size, bucket: bucket, key: key, versionID: existing.versionID, client: client,
                                concurrency: options.concurrency)) != nil {
            report.alreadyThere = true
            report.versionID = existing.versionID
        } else {
            let partSize = options.partSize ?? partSize(for: size)
            if size <= UInt64(partSize) {
                report.versionID = try await client.putObject(bucket: bucket, key: key, body: try file.read(0..<size), settings: settings)
            } else {
                let (version, parts, resumed) = try await multipart(file: file, size: size, partSize: partSize, bucket: bucket, key: key,
                                                                    settings: settings, client: client, concurrency: options.concurrency)
                (report.versionID, report.parts, report.resumedParts) = (version, parts, resumed)
            }
            if report.versionID == nil { report.versionID = try await client.headObject(bucket: bucket, key: key)?.versionID }
            try await readBack(file: file, size: size, bucket: bucket, key: key, versionID: report.versionID, client: client,
                               concurrency: options.concurrency)
        }
        // What the store says of the version's lock, not what was asked.
        if let retention = try await client.objectRetention(bucket: bucket, key: key, versionID: report.versionID) {
            (report.lockMode, report.retainUntil) = (retention.mode, retention.until)
        }
        report.legalHold = try await client.objectLegalHold(bucket: bucket, key: key, versionID: report.versionID)
        if let mode = settings.lockMode, let until = settings.retainUntil, !report.alreadyThere {
            guard report.lockMode == mode, let held = report.retainUntil, held >= until.addingTimeInterval(-1) else {
                throw S3Error.lockNotEnforced("\(report.url) was written with \(mode) until \(S3Client.iso8601(until)), but the store reports \(report.lockMode ?? "no lock")\(report.retainUntil.map { " until \(S3Client.iso8601($0))" } ?? ""); check the bucket with 'coldarchive offsite check'")
            }
        }
        if options.legalHold && !report.legalHold {
            throw S3Error.lockNotEnforced("\(report.url) was written with a legal hold, but the store reports none")
        }
        return report
    }

    /// A multipart upload, resumed when an unfinished one of the same key has parts of this size.
    private static func multipart(file: Box, size: UInt64, partSize: Int, bucket: String, key: String, settings: S3Client.WriteSettings,
                                  client: S3Client, concurrency: Int) async throws -> (String?, Int, Int) {
        let count = Int((size + UInt64(partSize) - 1) / UInt64(partSize))
        func range(_ n: Int) -> Range<UInt64> { UInt64((n - 1) * partSize)..<min(UInt64(n * partSize), size) }
        var uploadID: String?
        var done: [Int: S3Client.Part] = [:]
        // The newest unfinished upload of this key is resumed: its parts of the right size count when their
        // checksum (if the store gives one) is this part's; the read-back after completion checks every byte.
        let unfinished = try await client.listMultipartUploads(bucket: bucket, key: key).sorted { ($0.initiated ?? .distantPast) > ($1.initiated ?? .distantPast) }
        if let newest = unfinished.first {
            let parts = try await client.listParts(bucket: bucket, key: key, uploadID: newest.id)
            uploadID = newest.id
            for part in parts where part.number >= 1 && part.number <= count && part.size == UInt64(range(part.number).count) {
                done[part.number] = part
            }
        }
        for stale in unfinished.dropFirst() { try? await client.abortMultipartUpload(bucket: bucket, key: key, uploadID: stale.id) }
        let id: String
        if let uploadID { id = uploadID } else { id = try await client.createMultipartUpload(bucket: bucket, key: key, settings: settings) }
        let resumed = done.count
        // A resumed part without a checksum from the store gets ours, computed from the file.
        for (n, part) in done where part.checksum == nil {
            done[n]?.checksum = S3Client.base64(Sodium.sha256(try file.read(range(n))))
        }
        let pending = (1...count).filter { done[$0] == nil }
        try await withThrowingTaskGroup(of: S3Client.Part.self) { group in
            var next = pending.makeIterator()
            func start() throws {
                guard let n = next.next() else { return }
                let bytes = try file.read(range(n))
                group.addTask {
                    let sha = Sodium.sha256(bytes)
                    let etag = try await client.uploadPart(bucket: bucket, key: key, uploadID: id, number: n, body: bytes, sha256: sha)
                    return S3Client.Part(number: n, etag: etag, size: UInt64(bytes.count), checksum: S3Client.base64(sha))
                }
            }
            for _ in 0..<max(1, concurrency) { try start() }
            while let part = try await group.next() {
                done[part.number] = part
                if let stop = killAfterParts, done.count - resumed >= stop { kill(getpid(), SIGKILL) }
                try start()
            }
        }
        let version = try await client.completeMultipartUpload(bucket: bucket, key: key, uploadID: id, parts: Array(done.values))
        return (version, count, resumed)
    }

    /// Reads the version back in ranges and compares each with the verified file, byte for byte: an
    /// object that reads back identical to a verified archive is that archive.
    static func readBack(file: Box, size: UInt64, bucket: String, key: String, versionID: String?, client: S3Client,
                         concurrency: Int) async throws {
        guard let info = try await client.headObject(bucket: bucket, key: key, versionID: versionID), info.size == size else {
            throw S3Error.notACopy("s3://\(bucket)/\(key) is not there with \(size) bytes after it was written")
        }
        try await forEachRange(of: size, concurrency: concurrency) { range in
            let remote = try await client.getObject(bucket: bucket, key: key, versionID: versionID, range: range)
            let local = try file.read(range)
            guard remote == local else {
                throw S3Error.notACopy("bytes \(range.lowerBound)–\(range.upperBound - 1) of s3://\(bucket)/\(key) read back differ from the archive")
            }
        }
    }

    /// Runs `body` on each 8 MiB range of `size` bytes, `concurrency` at a time (the first error stops the rest).
    static func forEachRange(of size: UInt64, concurrency: Int, _ body: @escaping @Sendable (Range<UInt64>) async throws -> Void) async throws {
        let step = UInt64(8 << 20)
        let ranges = stride(from: UInt64(0), to: size, by: Int(step)).map { $0..<min($0 + step, size) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = ranges.makeIterator()
            func start() {
                guard let range = next.next() else { return }
                group.addTask { try await body(range) }
            }
            for _ in 0..<max(1, concurrency) { start() }
            while try await group.next() != nil { start() }
        }
    }
}

/// Runs async work from synchronous code (the command line) and waits for it.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = Outcome<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { outcome.value = .success(try await body()) } catch { outcome.value = .failure(error) }
        done.signal()
    }
    done.wait()
    return try outcome.value!.get()
}

/// The result a blocking call waits for (written once by the task, read after the semaphore).
final class Outcome<T>: @unchecked Sendable {
    var value: Result<T, Error>?
}

/// `offsite check`: does this store enforce Object Lock? Stores exist that accept lock settings and
/// ignore them, so nothing is taken on trust: a small canary object is written locked (COMPLIANCE, for a
/// day), its retention is read back, and a delete of that very version must be refused and leave it there.
public enum OffsiteCheck {
    public struct Report: Sendable, Codable, Equatable {
        public var location: String
        public var bucketLockEnabled: Bool
        public var canary: String
        public var versionID: String?
        /// The retention the store reports for the canary version.
        public var retention: String?
        public var deleteRefused: Bool
        public var versionStillThere: Bool
        public var enforced: Bool
        /// Why it is not enforced, in a sentence.
        public var problem: String?
    }

    public static func check(_ location: S3Location, client: S3Client, lockFor seconds: TimeInterval = 86_400, now: Date = Date()) throws -> Report {
        try blocking { try await check(location, client: client, lockFor: seconds, now: now) }
    }

    public static func check(_ location: S3Location, client: S3Client, lockFor seconds: TimeInterval, now: Date) async throws -> Report {
        let bucket = location.bucket
        let key = location.key(".coldarchive-canary/\(Int(now.timeIntervalSince1970))-\(Sodium.randomBytes(4).hex)")
        var report = Report(location: location.description, bucketLockEnabled: (try? await client.objectLockEnabled(bucket: bucket)) ?? false,
                            canary: location.url(key), versionID: nil, retention: nil, deleteRefused: false, versionStillThere: false,
                            enforced: false, problem: nil)
        let until = now.addingTimeInterval(seconds)
        do {
            report.versionID = try await client.putObject(bucket: bucket, key: key, body: Array("coldarchive Object Lock canary, \(S3Client.iso8601(now))\n".utf8),
                                                          settings: S3Client.WriteSettings(lockMode: "COMPLIANCE", retainUntil: until))
        } catch let error as S3Error {
            report.problem = "the store refused to write a locked object (\(error))\(report.bucketLockEnabled ? "" : "; the bucket has no Object Lock configuration")"
            return report
        }
        guard let version = report.versionID else {
            report.problem = "the store gave the canary no version id: the bucket is not versioned, so no version can be locked"
            return report
        }
        if let retention = try await client.objectRetention(bucket: bucket, key: key, versionID: version) {
            report.retention = "\(retention.mode) until \(retention.until.map(S3Client.iso8601) ?? "?")"
        }
        let deleted = try await client.deleteObject(bucket: bucket, key: key, versionID: version)
        report.deleteRefused = !(200...299).contains(deleted.status)
        report.versionStillThere = try await client.headObject(bucket: bucket, key: key, versionID: version) != nil
        if report.retention == nil {
            report.problem = "the store accepted the lock settings but reports no retention for the version"
        } else if !report.deleteRefused || !report.versionStillThere {
            report.problem = "a delete of the locked version \(version) was \(report.deleteRefused ? "refused, yet the version is gone" : "accepted (HTTP \(deleted.status))")"
        } else {
            report.enforced = true
        }
        return report
    }
}

extension S3Push {
    /// Copies the vault's metadata (`Push.metadataFiles`: settings, journal, series settings,
    /// revocations) under the location's prefix, each as its own object with its checksum, so that a
    /// bucket alone can be audited and restored from.
    public static func copyMetadata(of vault: Vault, to location: S3Location, client: S3Client) throws -> [String] {
        let files = try Push.metadataFiles(of: vault)
        let contents = try files.map { ($0, try FileSystem.readSmallFile("\(vault.root)/\($0)", limit: 1 << 30)) }
        return try blocking {
            var keys: [String] = []
            for (file, bytes) in contents {
                _ = try await client.putObject(bucket: location.bucket, key: location.key(file), body: bytes)
                keys.append(location.url(location.key(file)))
            }
            return keys
        }
    }
}

/// Reading a copy back out of an object store: the object version is fetched with parallel ranged GETs
/// into a spool file (written under a partial name, synced, then renamed), which restore then verifies
/// whole before it writes a byte, as it does any archive. The cost: disk space for the archive beside
/// the target, one download, one local write (docs/OFFSITE.md "Restoring from an object store").
public enum S3Pull {
    public struct Report: Sendable, Codable, Equatable {
        public var url: String
        public var versionID: String?
        public var path: String
        public var bytes: UInt64
        public var storageClass: String?
    }

    /// Downloads `key` (its newest version, or `versionID`) of `bucket` to `path`, which must not exist.
    /// Throws `S3Error.archived` for an object in an archive tier (with how to bring it back).
    public static func download(bucket: String, key: String, versionID: String? = nil, to path: String, client: S3Client,
                                concurrency: Int = 4) throws -> Report {
        try blocking { try await download(bucket: bucket, key: key, versionID: versionID, to: path, client: client, concurrency: concurrency) }
    }

    public static func download(bucket: String, key: String, versionID: String? = nil, to path: String, client: S3Client,
                                concurrency: Int = 4) async throws -> Report {
        guard let info = try await client.headObject(bucket: bucket, key: key, versionID: versionID) else {
            throw S3Error.service(operation: "HeadObject", status: 404, code: "NoSuchKey", message: "s3://\(bucket)/\(key)\(versionID.map { " version \($0)" } ?? "") is not there")
        }
        let version = versionID ?? info.versionID
        PartialFiles.removeStale(for: path)
        let partial = PartialFiles.name(for: path)
        let out = S3Push.Box(file: try OpenFile.createNew(partial, mode: 0o600))
        do {
            try await S3Push.forEachRange(of: info.size, concurrency: concurrency) { range in
                let bytes = try await client.getObject(bucket: bucket, key: key, versionID: version, range: range)
                try bytes.withUnsafeBytes { try out.file.write($0, at: range.lowerBound) }
            }
            try out.file.sync()
            try FileSystem.rename(partial, path)
        } catch {
            FileSystem.remove(partial)
            throw error
        }
        return Report(url: "s3://\(bucket)/\(key)", versionID: version, path: path, bytes: info.size, storageClass: info.storageClass)
    }
}

extension S3Push {
    /// A base's lock must last as long as every archive resting on it: for each `key` of a base (its full,
    /// and for an incremental the archives between), the newest version's retention is extended to `until`
    /// when it ends earlier (read back after). Returns the keys extended.
    public static func extendBaseLocks(keys: [String], in bucket: String, until: Date, client: S3Client) throws -> [String] {
        try blocking {
            var extended: [String] = []
            for key in keys {
                guard let info = try await client.headObject(bucket: bucket, key: key),
                      let current = try await client.objectRetention(bucket: bucket, key: key, versionID: info.versionID) else { continue }
                guard (current.until ?? .distantPast) < until else { continue }
                try await client.putObjectRetention(bucket: bucket, key: key, versionID: info.versionID, mode: current.mode, until: until)
                guard let after = try await client.objectRetention(bucket: bucket, key: key, versionID: info.versionID),
                      let held = after.until, held >= until.addingTimeInterval(-1) else {
                    throw S3Error.lockNotEnforced("the retention of base s3://\(bucket)/\(key) was extended to \(S3Client.iso8601(until)), but the store does not report it")
                }
                extended.append("s3://\(bucket)/\(key)")
            }
            return extended
        }
    }
}
