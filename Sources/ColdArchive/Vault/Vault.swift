import Foundation

/// A vault's own settings, `VAULT/vault.json` (FORMAT.md §19).
public struct VaultSettings: Codable, Sendable, Equatable {
    public var format = "coldarchive-vault"
    public var version = 1
    /// 16 random bytes, hex: names the vault in its journal.
    public var id: String
    public var created: String
}

/// A series' settings, `VAULT/series/NAME/series.json` (FORMAT.md §19). The journal's
/// `series-created` record holds the same values, signed; the audit compares the two.
public struct SeriesSettings: Codable, Sendable, Equatable {
    public var series: String
    public var schedule: Schedule
    /// An IANA time zone name; periods are calendar periods in it.
    public var timeZone: String
    /// When `create` is given no `--period`: `previous` covers the last period that has ended (a
    /// monthly series cut in the first days of December covers November), `current` the period in
    /// progress, `none` makes `--period` required.
    public var periodFromDate: PeriodFromDate

    public enum PeriodFromDate: String, Codable, Sendable, CaseIterable {
        case previous, current, none
    }

    enum CodingKeys: String, CodingKey {
        case series, schedule
        case timeZone = "time_zone"
        case periodFromDate = "period_from_date"
    }

    public init(series: String, schedule: Schedule = .monthly, timeZone: String = "UTC", periodFromDate: PeriodFromDate = .previous) {
        self.series = series
        self.schedule = schedule
        self.timeZone = timeZone
        self.periodFromDate = periodFromDate
    }

    public var zone: TimeZone { TimeZone(identifier: timeZone) ?? TimeZone(identifier: "UTC")! }

    /// The period an archive cut at `date` covers, or nil when the series says `--period` is required.
    public func period(at date: Date) -> Period? {
        let now = Period(containing: date, schedule: schedule, timeZone: zone)
        switch periodFromDate {
        case .previous: return now.previous
        case .current: return now
        case .none: return nil
        }
    }

    /// The last period that must have an archive by `date`: the one that ended last for a `previous`
    /// series, the one in progress for the others.
    public func lastDuePeriod(at date: Date) -> Period {
        let now = Period(containing: date, schedule: schedule, timeZone: zone)
        return periodFromDate == .previous ? now.previous : now
    }

    /// The period in progress at `date`: no archive may cover a later one.
    public func currentPeriod(at date: Date) -> Period {
        Period(containing: date, schedule: schedule, timeZone: zone)
    }
}

/// An archive file in a series folder, known by its name `SERIES.PERIOD.SEQUENCE.car` (§19).
public struct VaultArchiveName: Sendable, Hashable {
    public let series: String
    public let period: String
    public let sequence: UInt64

    public var fileName: String {
        let digits = String(sequence)
        return "\(series).\(period).\(String(repeating: "0", count: max(0, 6 - digits.count)))\(digits).car"
    }

    public init(series: String, period: String, sequence: UInt64) {
        self.series = series
        self.period = period
        self.sequence = sequence
    }

    /// Parses a file name; nil when it is not one of an archive of `series`.
    public init?(fileName: String, series: String) {
        guard fileName.hasPrefix(series + "."), fileName.hasSuffix(".car") else { return nil }
        let middle = fileName.dropFirst(series.count + 1).dropLast(4).split(separator: ".", omittingEmptySubsequences: false)
        guard middle.count == 2, ArchiveHeader.isValidPeriod(String(middle[0])), middle[1].count >= 6,
              middle[1].allSatisfy(\.isASCII), let sequence = UInt64(middle[1]), sequence >= 1 else { return nil }
        self.init(series: series, period: String(middle[0]), sequence: sequence)
        guard self.fileName == fileName else { return nil }
    }
}

/// Why a vault operation could not be done.
public struct VaultError: ColdArchiveError, Equatable {
    public let message: String
    public let kind: FailureKind
    public init(_ message: String, kind: FailureKind = .other) {
        self.message = message
        self.kind = kind
    }
    public var description: String { message }
}

/// A vault: a directory (an offline disk, a NAS share) holding `vault.json`, the journal, and one
/// folder per series with its archives (FORMAT.md §19 gives the layout). Opening one writes nothing.
public final class Vault: @unchecked Sendable {
    public let root: String
    public let settings: VaultSettings

    public static let settingsName = "vault.json"
    public static let seriesFolder = "series"
    /// Signing key revocation statements (`*.revocation`, FORMAT.md §14), read by `audit`.
    public static let revocationsFolder = "revocations"
    public static let seriesSettingsName = "series.json"
    public static let lockName = ".lock"

    public var journalPath: String { "\(root)/\(Journal.fileName)" }
    public func seriesDirectory(_ series: String) -> String { "\(root)/\(Self.seriesFolder)/\(series)" }

    private init(root: String, settings: VaultSettings) {
        self.root = root
        self.settings = settings
    }

    /// Opens the vault at `root`; throws when there is none.
    public static func open(_ root: String) throws -> Vault {
        let path = "\(root)/\(settingsName)"
        guard FileSystem.exists(path) else {
            throw VaultError("'\(root)' is not a vault (it has no \(settingsName)): check the path (a new vault is made with 'coldarchive vault init')")
        }
        let settings: VaultSettings
        do { settings = try JSONDecoder().decode(VaultSettings.self, from: Data(try FileSystem.readSmallFile(path, limit: 1 << 16))) } catch {
            throw VaultError("'\(path)' is not a vault's settings (\(Self.brief(error)))", kind: .integrity)
        }
        guard settings.format == "coldarchive-vault", settings.version == 1 else {
            throw VaultError("'\(path)' is vault format \(settings.format) \(settings.version); this coldarchive knows coldarchive-vault 1")
        }
        return Vault(root: root, settings: settings)
    }

    /// Makes a new vault at `root` (created if missing; an existing directory must not be a vault
    /// already) and journals it, signed by `signer`.
    public static func initialize(at root: String, signer: SigningKey, now: Date = Date()) throws -> Vault {
        if FileSystem.exists("\(root)/\(settingsName)") {
            throw VaultError("'\(root)' is a vault already")
        }
        if !FileSystem.exists(root) { _ = try FileSystem.makeDirectories(root) }
        try FileSystem.makeDirectory("\(root)/\(seriesFolder)")
        let settings = VaultSettings(id: Sodium.randomBytes(16).hex, created: Journal.rfc3339(now))
        var record = JournalRecord(event: .vaultCreated)
        record.vault = settings.id
        try Journal.append(record, to: "\(root)/\(Journal.fileName)", signer: signer, now: now)
        try FileSystem.writeAtomically(Array(try Self.encoder.encode(settings)) + [0x0A], to: "\(root)/\(settingsName)", mode: 0o644)
        try FileSystem.syncDirectory(root)
        return Vault(root: root, settings: settings)
    }

    /// Adds a series (its folder, settings and a signed journal record).
    @discardableResult
    public func addSeries(_ settings: SeriesSettings, signer: SigningKey, trusting trusted: [SigningPublicKey]? = nil,
                          now: Date = Date()) throws -> SeriesSettings {
        try checkJournal(trusting: trusted ?? [signer.publicKey])
        guard ArchiveHeader.isValidSeriesName(settings.series) else {
            throw VaultError("'\(DisplayName.escaped(settings.series))' is not a series name: 1–64 of A–Z a–z 0–9 . _ -, the first a letter or digit", kind: .usage)
        }
        guard TimeZone(identifier: settings.timeZone) != nil else {
            throw VaultError("'\(settings.timeZone)' is not a time zone this system knows (an IANA name such as UTC or Europe/Zurich)", kind: .usage)
        }
        let directory = seriesDirectory(settings.series)
        guard !FileSystem.exists(directory) else { throw VaultError("the vault has a series '\(settings.series)' already") }
        try FileSystem.makeDirectory(directory)
        var record = JournalRecord(event: .seriesCreated)
        record.series = settings.series
        record.schedule = settings.schedule.rawValue
        record.timeZone = settings.timeZone
        record.periodFromDate = settings.periodFromDate.rawValue
        try Journal.append(record, to: journalPath, signer: signer, now: now)
        try FileSystem.writeAtomically(Array(try Self.encoder.encode(settings)) + [0x0A], to: "\(directory)/\(Self.seriesSettingsName)", mode: 0o644)
        return settings
    }

    /// A decoding error in a few words, not Foundation's debug description.
    static func brief(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "no \"\(key.stringValue)\""
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            return "\"\(c.codingPath.map(\.stringValue).joined(separator: "."))\" has the wrong type"
        case DecodingError.dataCorrupted(let c):
            return c.codingPath.isEmpty ? "not JSON" : "\"\(c.codingPath.map(\.stringValue).joined(separator: "."))\" is not a valid value"
        default: return "\(error)"
        }
    }

    /// Refuses to add to a journal that does not verify with `trusted` (another site's key signed it,
    /// or it was changed): a record appended now could never be told apart from the damage.
    public func checkJournal(trusting trusted: [SigningPublicKey]) throws {
        var problem: String?
        var records = 0
        if FileSystem.exists(journalPath) {
            try Journal.read(journalPath, trusting: trusted) { line in
                if let p = line.problem, problem == nil { problem = "line \(line.number): \(p)" }
                if line.record != nil { records += 1 }
            }
        }
        if problem == nil && records == 0 { problem = "it is missing or empty" }
        if let problem {
            throw VaultError("the vault journal does not verify with this keyring's signing keys (\(problem)); nothing was written. Run 'coldarchive audit --vault \(root) --trust SIGNING_PUB'", kind: .integrity)
        }
    }

    /// The `archive-added` records of the journal whose signature verifies with `trusted`, in journal
    /// order: every archive the vault was ever given (FORMAT.md §19).
    public func recordedArchives(trusting trusted: [SigningPublicKey]) throws -> [JournalRecord] {
        var added: [JournalRecord] = []
        guard FileSystem.exists(journalPath) else { return [] }
        try Journal.read(journalPath, trusting: trusted) { line in
            if let record = line.record ?? line.signed, record.event == .archiveAdded { added.append(record) }
        }
        return added
    }

    /// The copies the journal records (`copy-made`, verified signatures only): the latest record per
    /// copy location, in the order they were first made.
    public func recordedCopies(trusting trusted: [SigningPublicKey]) throws -> [JournalRecord] {
        var latest: [String: JournalRecord] = [:]
        var order: [String] = []
        guard FileSystem.exists(journalPath) else { return [] }
        try Journal.read(journalPath, trusting: trusted) { line in
            guard let record = line.record ?? line.signed, record.event == .copyMade, let target = record.target else { return }
            if latest[target] == nil { order.append(target) }
            latest[target] = record
        }
        return order.compactMap { latest[$0] }
    }

    /// The names of the vault's series, sorted.
    public func seriesNames() throws -> [String] {
        let folder = "\(root)/\(Self.seriesFolder)"
        guard FileSystem.isDirectory(folder) else { return [] }
        return try FileSystem.directoryEntries(folder).filter { FileSystem.isDirectory("\(folder)/\($0)") && !$0.hasPrefix(".") }.sorted()
    }

    public func series(_ name: String) throws -> SeriesSettings {
        let path = "\(seriesDirectory(name))/\(Self.seriesSettingsName)"
        guard FileSystem.exists(path) else {
            throw VaultError("the vault '\(root)' has no series '\(DisplayName.escaped(name))' (no \(Self.seriesFolder)/\(name)/\(Self.seriesSettingsName)); a series is added with 'coldarchive vault init \(root) --series \(name)'")
        }
        do { return try JSONDecoder().decode(SeriesSettings.self, from: Data(try FileSystem.readSmallFile(path, limit: 1 << 16))) } catch {
            throw VaultError("'\(path)' is not a series' settings (\(Self.brief(error)))", kind: .integrity)
        }
    }

    /// The archives in a series folder, by their file names, in sequence order.
    public func archiveNames(in series: String) throws -> [VaultArchiveName] {
        try FileSystem.directoryEntries(seriesDirectory(series)).compactMap { VaultArchiveName(fileName: $0, series: series) }
            .sorted { ($0.sequence, $0.period) < ($1.sequence, $1.period) }
    }

    /// The vault an archive file belongs to, with its vault-relative path, when the file sits in a
    /// series folder of one (`VAULT/series/NAME/FILE`); nil otherwise.
    public static func containing(file path: String) -> (vault: Vault, file: String)? {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let parts = absolute.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard parts.count >= 4, parts[parts.count - 3] == seriesFolder else { return nil }
        let root = "/" + parts.dropLast(3).joined(separator: "/")
        guard FileSystem.exists("\(root)/\(settingsName)"), let vault = try? open(root) else { return nil }
        return (vault, parts.suffix(3).joined(separator: "/"))
    }

    /// Refuses a signing key revoked as compromised in `VAULT/revocations/` from `now` on: what it signs
    /// into the vault (`making`: "an archive", "a journal record") would be an audit finding.
    /// Throws `VaultError` saying so and what to do.
    public func checkNotRevoked(_ key: SigningPublicKey, trusting trusted: [SigningPublicKey], now: Date = Date(), making what: String) throws {
        var ignored: [AuditFinding] = []
        if let revoked = try Auditor.revocations(of: self, extra: [], trusting: trusted, findings: &ignored)[key.fingerprint],
           now >= revoked.since {
            throw VaultError("the signing key \(key.fingerprint) is revoked as compromised since \(revoked.revocation.since) (\(revoked.revocation.file)): \(what) it signs would be an audit finding. Rotate it first: coldarchive keys rotate --signing")
        }
    }

    /// Records, signed, that an archive of the vault was decrypted without being restored: `purpose` is
    /// `list` or `verify-deep` (FORMAT.md §19, `decrypt`).
    public func journalDecryption(file: String, archiveDigest: String, purpose: String, signer: SigningKey) throws {
        try journalOpening(.decrypt, file: file, archiveDigest: archiveDigest, signer: signer) { $0.purpose = purpose }
    }

    /// Journals a restore of the vault's archive `file` (vault-relative) into `target`, signed by `signer`.
    public func journalRestore(file: String, archiveDigest: String, target: String, signer: SigningKey) throws {
        try journalOpening(.restore, file: file, archiveDigest: archiveDigest, signer: signer) { $0.target = target }
    }

    /// A record of an archive being decrypted (`restore`, `decrypt`): which file, which digest, and what `fill` adds.
    private func journalOpening(_ event: JournalRecord.Event, file: String, archiveDigest: String, signer: SigningKey,
                                _ fill: (inout JournalRecord) -> Void) throws {
        var record = JournalRecord(event: event)
        record.file = file
        record.archiveDigest = archiveDigest
        fill(&record)
        try Journal.append(record, to: journalPath, signer: signer)
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// Runs `body` holding the series' lock (`flock` on `SERIES/.lock`), so that two creates never
    /// give out one sequence number twice. With `wait` false a held lock is an error naming its holder.
    public func withSeriesLock<T>(_ series: String, wait: Bool, _ body: () throws -> T) throws -> T {
        let path = "\(seriesDirectory(series))/\(Self.lockName)"
        let fd = NameCodec.withCString(path) { Glibc.open($0, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        guard fd >= 0 else { throw SystemError(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK else { throw SystemError(operation: "lock", path: path, errno: errno) }
            if !wait {
                var holder = [UInt8](repeating: 0, count: 64)
                let n = holder.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 64, 0) }
                let who = n > 0 ? String(decoding: holder[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "another process"
                throw VaultError("another create into series '\(series)' is running (\(who)); wait for it to finish, or pass --wait")
            }
            guard flock(fd, LOCK_EX) == 0 else { throw SystemError(operation: "lock", path: path, errno: errno) }
        }
        let me = Array("pid \(getpid()) on \(ProcessInfo.processInfo.hostName)\n".utf8)
        _ = ftruncate(fd, 0)
        _ = me.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        // Unlocked explicitly, not by close alone: a child forked meanwhile shares the open file
        // description until it execs (seen in the test suite, which spawns the CLI from other threads).
        defer {
            _ = ftruncate(fd, 0)
            _ = flock(fd, LOCK_UN)
        }
        return try body()
    }
}
