import ColdArchive
import Foundation
import GRDB

/// One archive as the catalog indexes it.
public struct CatalogArchive: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "archive"
    /// Vault-relative path, `series/NAME/NAME.PERIOD.SEQUENCE.car`.
    public var file: String
    public var archiveID: String
    public var series: String?
    public var sequence: Int64?
    public var period: String?
    public var backupMode: String?
    public var created: String
    /// When the journal recorded it (nil for an archive the journal does not know).
    public var added: String?
    public var fileBytes: Int64
    public var contentBytes: Int64
    public var entryCount: Int64
    public var headerDigest: String
    public var archiveDigest: String
    public var previousArchiveDigest: String?
    public var signer: String
    /// Encryption key ids the file key is wrapped to, comma-separated.
    public var recipients: String
    public var retainUntil: String?

    enum CodingKeys: String, CodingKey {
        case file, archiveID = "archive_id", series, sequence, period, backupMode = "backup_mode", created, added
        case fileBytes = "file_bytes", contentBytes = "content_bytes", entryCount = "entry_count"
        case headerDigest = "header_digest", archiveDigest = "archive_digest", previousArchiveDigest = "previous_archive_digest"
        case signer, recipients, retainUntil = "retain_until"
    }
}

/// One check run on an archive (verify, audit, restore, drill, scrub) and its result.
public struct CatalogCheck: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "check_run"
    public var file: String
    public var archiveDigest: String?
    /// `verify`, `verify-deep`, `restore`, …
    public var kind: String
    /// RFC 3339, UTC.
    public var time: String
    public var host: String
    /// `ok` or `failed`.
    public var result: String
    public var detail: String?
    /// For a restore: the content bytes written and the seconds it took (what `plan` estimates from).
    public var bytes: Int64?
    public var seconds: Double?

    enum CodingKeys: String, CodingKey {
        case file, archiveDigest = "archive_digest", kind, time, host, result, detail, bytes, seconds
    }

    public init(file: String, archiveDigest: String?, kind: String, time: Date = Date(), result: String, detail: String? = nil,
                bytes: Int64? = nil, seconds: Double? = nil) {
        self.bytes = bytes
        self.seconds = seconds
        self.file = file
        self.archiveDigest = archiveDigest
        self.kind = kind
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        self.time = f.string(from: time)
        self.host = ProcessInfo.processInfo.hostName
        self.result = result
        self.detail = detail
    }
}

/// A vault's catalog, `VAULT/catalog.sqlite` (SQLite through GRDB, with migrations): an index of its
/// archives — ids, series, sequence, period, sizes, digests, key ids, signer — and of every check run
/// on them. Only an index: `rebuild` makes it again from the archives and the journal, and every
/// command works without it (a vault on read-only media has none, or an old one).
public final class Catalog {
    public static let fileName = "catalog.sqlite"
    let queue: DatabaseQueue
    public let path: String

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: CatalogArchive.databaseTableName) { t in
                t.primaryKey("file", .text)
                t.column("archive_id", .text).notNull()
                t.column("series", .text).indexed()
                t.column("sequence", .integer)
                t.column("period", .text)
                t.column("backup_mode", .text)
                t.column("created", .text).notNull()
                t.column("added", .text)
                t.column("file_bytes", .integer).notNull()
                t.column("content_bytes", .integer).notNull()
                t.column("entry_count", .integer).notNull()
                t.column("header_digest", .text).notNull()
                t.column("archive_digest", .text).notNull().indexed()
                t.column("previous_archive_digest", .text)
                t.column("signer", .text).notNull()
                t.column("recipients", .text).notNull()
                t.column("retain_until", .text)
            }
            try db.create(table: CatalogCheck.databaseTableName) { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("file", .text).notNull().indexed()
                t.column("archive_digest", .text)
                t.column("kind", .text).notNull()
                t.column("time", .text).notNull()
                t.column("host", .text).notNull()
                t.column("result", .text).notNull()
                t.column("detail", .text)
            }
        }
        migrator.registerMigration("v2: restore speed") { db in
            try db.alter(table: CatalogCheck.databaseTableName) { t in
                t.add(column: "bytes", .integer)
                t.add(column: "seconds", .double)
            }
        }
        return migrator
    }

    /// The restore speed this vault's restores have measured (content bytes per second, the median of
    /// the last 20 restores that recorded it); nil before the first.
    public func measuredRestoreSpeed() throws -> Double? {
        let rows = try queue.read { db in
            try CatalogCheck.filter(Column("kind") == "restore" && Column("result") == "ok" && Column("seconds") > 0 && Column("bytes") > 0)
                .order(Column("id").desc).limit(20).fetchAll(db)
        }
        let speeds = rows.compactMap { r in r.seconds.flatMap { s in r.bytes.map { Double($0) / s } } }.sorted()
        return speeds.isEmpty ? nil : speeds[speeds.count / 2]
    }

    private init(path: String, queue: DatabaseQueue) {
        self.path = path
        self.queue = queue
    }

    /// Opens (creating and migrating as needed) the catalog at `path`.
    public static func open(path: String) throws -> Catalog {
        let queue = try DatabaseQueue(path: path)
        try migrator.migrate(queue)
        return Catalog(path: path, queue: queue)
    }

    /// The vault's catalog, opened for writing; nil when it cannot be (read-only media, permissions):
    /// callers go on without it.
    public static func openIfWritable(vault: Vault) -> Catalog? {
        let path = "\(vault.root)/\(fileName)"
        let exists = FileManager.default.fileExists(atPath: path)
        guard exists ? access(path, W_OK) == 0 && access(vault.root, W_OK) == 0 : access(vault.root, W_OK) == 0 else { return nil }
        return try? open(path: path)
    }

    /// Adds or replaces an archive's row.
    public func record(_ archive: CatalogArchive) throws {
        try queue.write { db in try archive.save(db) }
    }

    public func record(_ check: CatalogCheck) throws {
        try queue.write { db in try check.insert(db) }
    }

    public func archives(series: String? = nil) throws -> [CatalogArchive] {
        try queue.read { db in
            var request = CatalogArchive.order(Column("series"), Column("sequence"), Column("file"))
            if let series { request = request.filter(Column("series") == series) }
            return try request.fetchAll(db)
        }
    }

    public func checks(file: String? = nil) throws -> [CatalogCheck] {
        try queue.read { db in
            var request = CatalogCheck.order(Column("time"), Column("id"))
            if let file { request = request.filter(Column("file") == file) }
            return try request.fetchAll(db)
        }
    }

    /// The row for an archive file in a vault (`file` vault-relative), from its plaintext header and
    /// trailer; `added` from the journal.
    public static func row(for archive: ArchiveFile, file: String, added: String?) throws -> CatalogArchive {
        let s = archive.summary
        return CatalogArchive(file: file, archiveID: s.archiveID, series: s.series, sequence: s.sequence.map(Int64.init), period: s.period,
                              backupMode: s.backupMode, created: s.created, added: added, fileBytes: Int64(s.fileSize),
                              contentBytes: Int64(s.contentBytes), entryCount: Int64(s.entryCount), headerDigest: s.headerDigest,
                              archiveDigest: s.archiveDigest, previousArchiveDigest: s.previousArchiveDigest,
                              signer: s.signerFingerprint, recipients: s.recipientKeyIDs.joined(separator: ","), retainUntil: s.retainUntil)
    }

    /// What `rebuild` found.
    public struct RebuildReport: Codable, Sendable {
        public var archives: Int
        public var checks: Int
        public var unreadable: [String]
    }

    /// Makes the vault's catalog again from its archives (their plaintext headers and trailers: no key)
    /// and its journal (when each archive was added; each restore it records). Written to a temporary
    /// file and renamed over the old catalog, so a killed rebuild leaves the old one.
    @discardableResult
    public static func rebuild(vault: Vault, trusting trusted: [SigningPublicKey]) throws -> RebuildReport {
        let path = "\(vault.root)/\(fileName)"
        let temp = "\(vault.root)/.\(fileName).rebuild-\(getpid())"
        for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: temp + suffix) }
        var report = RebuildReport(archives: 0, checks: 0, unreadable: [])
        do {
            let catalog = try open(path: temp)
            var added: [String: String] = [:]
            var checks: [CatalogCheck] = []
            if FileManager.default.fileExists(atPath: vault.journalPath) {
                try Journal.read(vault.journalPath, trusting: trusted) { line in
                    guard let record = line.record, let file = record.file else { return }
                    switch record.event {
                    case .archiveAdded: added[file] = record.time
                    case .restore:
                        var check = CatalogCheck(file: file, archiveDigest: record.archiveDigest, kind: "restore", result: "ok", detail: record.target.map { "to \($0)" })
                        check.time = record.time
                        check.host = record.host
                        checks.append(check)
                    case .decrypt where record.purpose == "verify-deep":
                        var check = CatalogCheck(file: file, archiveDigest: record.archiveDigest, kind: "verify-deep", result: "ok", detail: nil)
                        check.time = record.time
                        check.host = record.host
                        checks.append(check)
                    default: break
                    }
                }
            }
            for series in try vault.seriesNames() {
                for name in try vault.archiveNames(in: series) {
                    let file = "\(Vault.seriesFolder)/\(series)/\(name.fileName)"
                    do {
                        try catalog.record(try row(for: try ArchiveFile(path: "\(vault.root)/\(file)"), file: file, added: added[file]))
                        report.archives += 1
                    } catch {
                        report.unreadable.append(file)
                    }
                }
            }
            for check in checks { try catalog.record(check) }
            report.checks = checks.count
            try catalog.queue.close()
            for suffix in ["-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            guard rename(temp, path) == 0 else { throw VaultError("could not put the rebuilt catalog in place: \(String(cString: strerror(errno)))") }
        } catch {
            for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: temp + suffix) }
            throw error
        }
        return report
    }
}
