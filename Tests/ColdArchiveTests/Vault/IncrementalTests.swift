import Foundation
import Testing
@testable import ColdArchive

/// Full, incremental and differential archives of a vault series, and point-in-time restore (issue 19).
@Suite struct IncrementalTests {
    /// A monthly series whose archives are made with change detection (a state directory of its own).
    struct Series {
        let v: MonthlyVault
        let state: String
        var tree: String { v.source }

        init() throws {
            v = try MonthlyVault(months: [])
            state = v.scratch.sub("state")
        }

        @discardableResult
        func add(_ month: String, _ mode: ArchiveHeader.BackupMode, rehash: Bool = false, ignoreChangeTime: Bool = false,
                 retainUntil: Int64? = nil) throws -> VaultCreateReport {
            var options = CreateOptions(sources: [tree], output: "")
            options.retainUntil = retainUntil
            return try v.vault.create(options, series: "crm", period: month, signer: v.keys.signer,
                               recipients: v.keys.recipients, trusting: v.trusted, now: Date(timeIntervalSince1970: 1_767_225_600),  // 2026-01-01
                               changes: ChangeOptions(mode: mode, rehash: rehash, ignoreChangeTime: ignoreChangeTime, state: state))
        }

        func restore(_ month: String, to name: String, include: [String] = []) throws -> RestoreReport {
            let chain = try PointInTime.chain(vault: v.vault, series: "crm", period: month, trusting: v.trusted)
            return try PointInTime.restore(chain: chain, to: v.scratch.sub(name), keyring: v.keys.keyring, include: include)
        }

        func write(_ relative: String, _ text: String) throws {
            let path = "\(tree)/\(relative)"
            try FileManager.default.createDirectory(atPath: FileSystem.parent(of: path), withIntermediateDirectories: true)
            try TreeBuilder.write(path, text)
        }

        func remove(_ relative: String) throws { try FileManager.default.removeItem(atPath: "\(tree)/\(relative)") }
    }

    static let months = (1...12).map { String(format: "2025-%02d", $0) }

    /// The issue's test: a tree mutated over twelve runs; the restore at every period equals the tree
    /// recorded at that period, byte for byte and metadata for metadata, deletions included.
    @Test func everyPeriodRestoresAsItWas() throws {
        let s = try Series()
        var recorded: [String: TreeSnapshot] = [:]
        var reports: [String: VaultCreateReport] = [:]
        func cut(_ month: String, _ mode: ArchiveHeader.BackupMode, rehash: Bool = false, ignoreChangeTime: Bool = false) throws {
            reports[month] = try s.add(month, mode, rehash: rehash, ignoreChangeTime: ignoreChangeTime)
            recorded[month] = try TreeSnapshot(s.tree)
        }
        try s.write("customers/acme/profile.json", #"{"name":"ACME"}"#)
        try s.write("customers/acme/notes.txt", "first call\n")
        try s.write("customers/zeta/profile.json", #"{"name":"Zeta"}"#)
        try s.write("orders/2025-01.csv", "id,total\n1,10\n")
        try s.write("orders/archive/old.csv", "id\n0\n")
        try s.write("tickets/T-1.json", "{}")
        try s.write("docs/readme.txt", "read me\n")
        try FileManager.default.linkItem(atPath: "\(s.tree)/orders/2025-01.csv", toPath: "\(s.tree)/orders/2025-01-copy.csv")
        try cut("2025-01", .full)

        try s.write("orders/2025-02.csv", "id,total\n2,20\n")                            // added
        try s.write("customers/new/profile.json", #"{"name":"New"}"#)                    // a new directory
        try cut("2025-02", .incremental)

        try s.write("customers/acme/notes.txt", "first call\nsecond call, longer\n")   // changed
        try cut("2025-03", .incremental)

        // Same size, same modification time: found only by reading it (--rehash), its change time ignored.
        let notes = "\(s.tree)/customers/acme/profile.json"
        var st = stat()
        #expect(lstat(notes, &st) == 0)
        try TreeBuilder.write(notes, #"{"name":"ACMX"}"#)
        var times = [st.st_atim, st.st_mtim]
        #expect(utimensat(AT_FDCWD, notes, &times, 0) == 0)
        try cut("2025-04", .incremental, rehash: true, ignoreChangeTime: true)

        try s.remove("tickets/T-1.json")                                                // a file deleted
        try s.remove("orders/archive")                                                  // a directory deleted, with what it held
        try cut("2025-05", .incremental)

        try FileManager.default.moveItem(atPath: "\(s.tree)/docs/readme.txt", toPath: "\(s.tree)/docs/README.txt")   // renamed
        try cut("2025-06", .incremental)

        #expect(chmod("\(s.tree)/orders/2025-02.csv", 0o600) == 0)                      // mode
        if geteuid() == 0 { #expect(chown("\(s.tree)/customers/zeta/profile.json", 1234, 1234) == 0) }   // owner
        try cut("2025-07", .incremental)

        try s.remove("customers/new/profile.json")
        try s.remove("customers/new")
        try s.write("customers/new", "now a file\n")                                    // directory → file
        try s.remove("tickets")
        try s.write("tickets/T-2.json/body.txt", "a file became a directory\n")         // (tickets/T-2.json: new dir)
        try cut("2025-08", .incremental)

        try s.remove("customers/zeta")
        try FileManager.default.createSymbolicLink(atPath: "\(s.tree)/customers/zeta", withDestinationPath: "acme")   // directory → symlink
        try cut("2025-09", .incremental)

        try s.remove("docs/README.txt")
        try FileManager.default.linkItem(atPath: "\(s.tree)/orders/2025-02.csv", toPath: "\(s.tree)/docs/README.txt")  // a file that becomes a hardlink
        try cut("2025-10", .incremental)

        try s.write("orders/2025-11.csv", "id,total\n11,110\n")
        try s.remove("orders/2025-01-copy.csv")
        try cut("2025-11", .differential)

        try s.write("orders/2025-12.csv", "id,total\n12,120\n")
        try s.write("customers/acme/notes.txt", "third\n")
        try cut("2025-12", .incremental)

        #expect(reports["2025-01"]?.mode == .full && reports["2025-11"]?.mode == .differential && reports["2025-12"]?.mode == .incremental)
        #expect(reports.values.allSatisfy { $0.fullBecause == nil && $0.indexProblem == nil }, "\(reports.values.compactMap(\.fullBecause))")
        // An incremental stores what changed: March holds the changed notes and their parents, not the rest.
        let march = try Lister.entries(path: reports["2025-03"]!.path, keyring: s.v.keys.keyring)
        #expect(march.map(\.path) == ["crm", "crm/customers", "crm/customers/acme", "crm/customers/acme/notes.txt"])
        #expect(reports["2025-05"]?.deleted == 2)

        for month in Self.months {
            let report = try s.restore(month, to: "restore-\(month)")
            let restored = try TreeSnapshot(s.v.scratch.sub("restore-\(month)/crm"))
            #expect(restored == recorded[month], "\(month): restored\n\(restored)\nrecorded\n\(recorded[month]!)")
            // A differential restores with its full alone; an incremental through each archive since the full.
            let expectedChain = month == "2025-11" ? 2 : month == "2025-12" ? 3 : Int(month.suffix(2))!
            #expect(report.chain?.count == expectedChain, "\(month): \(report.chain ?? [])")
        }
        // The independent decoder restores the chains from FORMAT.md §20 alone, to the same trees: through
        // every incremental since the full, and through a differential.
        let decoder = FidelityTests.support.replacingOccurrences(of: "/Support", with: "/Interop/decode.py")
        for month in ["2025-10", "2025-11", "2025-12"] {
            let out = s.v.scratch.sub("decoded-\(month)")
            let decoded = try CLI.run([decoder, "--extract-chain", reports[month]!.path, "--keyring", s.v.keys.directory, "--to", out],
                                      executable: "/usr/bin/python3")
            #expect(decoded.status == 0, "\(decoded.stdout)\(decoded.stderr)")
            #expect(try TreeSnapshot("\(out)/crm") == recorded[month], "\(month): decoded by decode.py")
        }
    }

    /// A directory deleted (or replaced by a file) in a middle archive and made again later: what an
    /// older archive held below it stays gone (found by review: the merge cut only at the newest entry).
    @Test func aDirectoryDeletedThenMadeAgainDoesNotBringBackItsOldContent() throws {
        let s = try Series()
        try s.write("new/x.txt", "january\n")
        try s.write("a/b/deep/old.txt", "january\n")
        try s.add("2025-01", .full)
        try s.remove("new")
        try s.remove("a/b")
        try s.write("a/b", "now a file\n")
        try s.add("2025-02", .incremental)
        try s.write("other.txt", "march\n")
        try s.add("2025-03", .incremental)
        try s.write("new/y.txt", "april\n")
        try s.remove("a/b")
        try s.write("a/b/fresh.txt", "april\n")
        let april = try s.add("2025-04", .incremental)
        let recorded = try TreeSnapshot(s.tree)
        _ = try s.restore("2025-04", to: "april")
        #expect(try TreeSnapshot(s.v.scratch.sub("april/crm")) == recorded)
        #expect(!FileManager.default.fileExists(atPath: s.v.scratch.sub("april/crm/new/x.txt")))
        #expect(!FileManager.default.fileExists(atPath: s.v.scratch.sub("april/crm/a/b/deep")))
        // The independent decoder agrees.
        let decoder = FidelityTests.support.replacingOccurrences(of: "/Support", with: "/Interop/decode.py")
        let decoded = try CLI.run([decoder, "--extract-chain", april.path, "--keyring", s.v.keys.directory, "--to", s.v.scratch.sub("decoded")],
                                  executable: "/usr/bin/python3")
        #expect(decoded.status == 0, "\(decoded.stderr)")
        #expect(try TreeSnapshot(s.v.scratch.sub("decoded/crm")) == recorded)
    }

    @Test func aDamagedMiddleIncrementalBlocksLaterPeriodsAndLeavesTheTargetAlone() throws {
        let s = try Series()
        try s.write("a.txt", "1\n")
        try s.add("2025-01", .full)
        for (i, month) in ["2025-02", "2025-03", "2025-04"].enumerated() {
            try s.write("f\(i).txt", String(repeating: "x", count: 100_000 * (i + 1)))
            try s.add(month, .incremental)
        }
        let middle = s.v.path("2025-03", 3)
        try flipBit(middle, at: fileSize(middle) / 2)
        try FileManager.default.createDirectory(atPath: s.v.scratch.sub("target"), withIntermediateDirectories: false)
        try TreeBuilder.write(s.v.scratch.sub("target/keep.txt"), "mine\n")
        let before = try TreeSnapshot(s.v.scratch.sub("target"))
        let chain = try PointInTime.chain(vault: s.v.vault, series: "crm", period: "2025-04", trusting: s.v.trusted)
        #expect(throws: VaultError.self) {
            do {
                _ = try PointInTime.restore(chain: chain, to: s.v.scratch.sub("target"), keyring: s.v.keys.keyring, force: true)
            } catch let error as VaultError {
                #expect(error.description.contains("'crm.2025-03.000003.car', archive 3 of the 4 the restore needs, is damaged"), "\(error)")
                throw error
            }
        }
        #expect(try TreeSnapshot(s.v.scratch.sub("target")).ignoringDirectoryTimes == before.ignoringDirectoryTimes)
        // The periods before the damage still restore.
        #expect(try s.restore("2025-02", to: "february").chain?.count == 2)
    }

    /// The manifests are merged from each entry's head only, while another thread checks them whole:
    /// what is wrong with a manifest (here the canonical order, then `tar_offset`s that do not
    /// increase, which the merge's arithmetic relies on) must stop the restore before anything is
    /// written, and never crash the merge.
    @Test(arguments: [([512, 1536, 2560], "'crm/a.txt'"), ([0, 0, 0], "'crm/b.txt' (tar_offset 0 out of order)")])
    func aManifestOutOfOrderStopsAChainRestoreBeforeItWrites(offsets: [UInt64], reason: String) throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let data = Array("x\n".utf8)
        let names = ["crm/b.txt", "crm/a.txt", "crm/c.txt"]
        let tar = names.reduce(HostileContentTests.crm) { $0 + HandTar.entry($1, .file, data: data) }
        // (The right offsets: after the directory's header, each file a header and a block.)
        let files = zip(names, offsets).map { name, offset in
            var entry = ManifestEntry.file(name, data)
            entry.tarOffset = offset
            return entry
        }
        let archive = try craftArchive(scratch, keys: keys, tar: tar, manifest: [.directory("crm")] + files, formatVersion: FormatV1.version2)
        try FileManager.default.createDirectory(atPath: scratch.sub("target"), withIntermediateDirectories: false)
        #expect(throws: VaultError.self) {
            do {
                _ = try PointInTime.restore(chain: [archive], to: scratch.sub("target"), keyring: keys.keyring, force: true)
            } catch let error as VaultError {
                #expect(error.description.contains("archive 1 of the 1 the restore needs, is damaged") && error.description.contains(reason), "\(error)")
                throw error
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.sub("target")).isEmpty)
    }

    /// What the merge does not look at — here a hardlink whose metadata differs from its file's — is
    /// found by the whole check of each manifest, before anything is written.
    @Test func aHardlinkUnlikeItsFileStopsAChainRestoreBeforeItWrites() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let data = Array("x\n".utf8)
        let tar = HostileContentTests.crm + HandTar.entry("crm/a.txt", .file, data: data) + HandTar.entry("crm/b.txt", .hardlink, mode: 0o600, link: "crm/a.txt")
        var a = ManifestEntry.file("crm/a.txt", data), b = ManifestEntry.link(.hardlink, "crm/b.txt", to: "crm/a.txt")
        (a.tarOffset, b.tarOffset, b.mode) = (512, 1536, 0o600)
        let archive = try craftArchive(scratch, keys: keys, tar: tar, manifest: [.directory("crm"), a, b], formatVersion: FormatV1.version2)
        try FileManager.default.createDirectory(atPath: scratch.sub("target"), withIntermediateDirectories: false)
        #expect(throws: VaultError.self) {
            do {
                _ = try PointInTime.restore(chain: [archive], to: scratch.sub("target"), keyring: keys.keyring, force: true)
            } catch let error as VaultError {
                #expect(error.description.contains("archive 1 of the 1 the restore needs, is damaged")
                        && error.description.contains("a hardlink whose mode, owner, times or attributes differ"), "\(error)")
                throw error
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.sub("target")).isEmpty)
    }

    @Test func withoutTheBaseIndexAFullIsMadeAndTheReasonSaid() throws {
        let s = try Series()
        try s.write("a.txt", "1\n")
        let first = try s.add("2025-01", .incremental)
        #expect(first.mode == .full && first.fullBecause == "the series has no archive yet to be the base")
        try FileManager.default.removeItem(atPath: s.state)
        try s.write("b.txt", "2\n")
        let second = try s.add("2025-02", .incremental)
        #expect(second.mode == .full && second.fullBecause?.contains("there is no change index for the base archive") == true, "\(second.fullBecause ?? "")")
        // A damaged index is not used either.
        let index = try #require(FileManager.default.enumerator(atPath: s.state)?.compactMap { $0 as? String }.first { $0.hasSuffix(".index") })
        try flipBit("\(s.state)/\(index)", at: 70)
        try s.write("c.txt", "3\n")
        let third = try s.add("2025-03", .incremental)
        #expect(third.mode == .full && third.fullBecause?.contains("is damaged (its checksum does not match)") == true, "\(third.fullBecause ?? "")")
        let fourth = try s.add("2025-04", .incremental)
        #expect(fourth.mode == .incremental && fourth.base?.sequence == 3 && fourth.unchanged == 3)
        // The index holds every file's content hash (patched in from the manifest for stored files):
        // --rehash reads the three files and finds them all unchanged.
        let fifth = try s.add("2025-05", .incremental, rehash: true)
        #expect(fifth.mode == .incremental && fifth.unchanged == 3 && fifth.report.summary.contentBytes == 0, "\(fifth.unchanged) \(fifth.report.summary.contentBytes)")
    }

    /// An edit that keeps size and modification time, on a file system whose change times are not
    /// trusted (--ignore-ctime): an incremental misses it; with --rehash it is found.
    @Test func aSameSizeSameTimeEditIsFoundOnlyByRehashWhenChangeTimesAreIgnored() throws {
        let s = try Series()
        try s.write("notes.txt", "version one\n")
        try s.add("2025-01", .full)
        let path = "\(s.tree)/notes.txt"
        var st = stat()
        #expect(lstat(path, &st) == 0)
        try TreeBuilder.write(path, "version 1!!\n")
        var times = [st.st_atim, st.st_mtim]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        let missed = try s.add("2025-02", .incremental, ignoreChangeTime: true)
        #expect(missed.unchanged == 1 && missed.report.summary.contentBytes == 0)
        let found = try s.add("2025-03", .incremental, rehash: true, ignoreChangeTime: true)
        #expect(found.unchanged == 0 && found.report.summary.contentBytes == 12)
        // Without --ignore-ctime the change time alone finds it.
        let s2 = try Series()
        try s2.write("notes.txt", "version one\n")
        try s2.add("2025-01", .full)
        var st2 = stat()
        #expect(lstat("\(s2.tree)/notes.txt", &st2) == 0)
        try TreeBuilder.write("\(s2.tree)/notes.txt", "version 1!!\n")
        var times2 = [st2.st_atim, st2.st_mtim]
        #expect(utimensat(AT_FDCWD, "\(s2.tree)/notes.txt", &times2, 0) == 0)
        #expect(try s2.add("2025-02", .incremental).report.summary.contentBytes == 12)
    }

    /// The audit checks that every incremental rests on an archive the series holds.
    @Test func anIncrementalWhoseBaseIsGoneIsAnAuditFinding() throws {
        let s = try Series()
        try s.write("a.txt", "1\n")
        try s.add("2025-01", .full)
        try s.write("b.txt", "2\n")
        try s.add("2025-02", .incremental)
        #expect(try s.v.audit(to: "2025-02").findings == [])
        try FileManager.default.removeItem(atPath: s.v.path("2025-01", 1))
        let report = try s.v.audit(to: "2025-02")
        #expect(report.findings.contains { $0.kind == .chainBreak && $0.period == "2025-02" && $0.reason.contains("an incremental resting on archive digest") && $0.reason.contains("which the series does not hold: it cannot be restored") }, "\(report.findings)")
    }

    @Test func oneCustomersFolderFromAPeriodReadsOnlyWhatItNeeds() throws {
        let s = try Series()
        try s.write("customers/acme/contract.pdf", String(repeating: "a", count: 300_000))
        try s.write("customers/zeta/contract.pdf", String(repeating: "z", count: 300_000))
        try s.add("2025-01", .full)
        try s.write("customers/zeta/contract.pdf", String(repeating: "Z", count: 300_000))
        try s.add("2025-02", .incremental)
        let report = try s.restore("2025-02", to: "zeta", include: ["crm/customers/zeta"])
        #expect(try TreeSnapshot(s.v.scratch.sub("zeta")).description == "crm\ncrm/customers\ncrm/customers/zeta\ncrm/customers/zeta/contract.pdf")
        #expect(try String(contentsOfFile: s.v.scratch.sub("zeta/crm/customers/zeta/contract.pdf"), encoding: .utf8).hasPrefix("ZZZ"))
        #expect(report.chain?.count == 2)
    }
}

/// Retention (`prune`): rules on signed periods, the dependency closure, signed retain-until dates and
/// their extension, every removal journaled, and the audit clean after it.
@Suite struct RetentionTests {
    static let now = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01
    static let year2100: Int64 = 4_102_444_800

    /// 2025-01 full, 02 and 03 incrementals, 04 full, 05 and 06 incrementals.
    static func series(retainFebruary: Bool = false) throws -> IncrementalTests.Series {
        let s = try IncrementalTests.Series()
        for (month, mode) in [("2025-01", ArchiveHeader.BackupMode.full), ("2025-02", .incremental), ("2025-03", .incremental),
                              ("2025-04", .full), ("2025-05", .incremental), ("2025-06", .incremental)] {
            try s.write("orders/\(month).csv", "id\n\(month)\n")
            try s.add(month, mode, retainUntil: retainFebruary && month == "2025-02" ? Self.year2100 : nil)
        }
        return s
    }

    @Test func rulesKeepWhatTheKeptArchivesRestOnAndPruneJournalsEachRemoval() throws {
        let s = try Self.series()
        let policy = RetentionPolicy(monthly: 2)
        let plan = try s.v.vault.planPrune(series: "crm", policy: policy, trusting: s.v.trusted, now: Self.now)
        #expect(plan.removed.map { FileSystem.baseName(of: $0) } == ["crm.2025-01.000001.car", "crm.2025-02.000002.car", "crm.2025-03.000003.car"])
        let kept = Dictionary(uniqueKeysWithValues: plan.decisions.filter(\.kept).map { ($0.period, $0.keptBecause) })
        #expect(kept["2025-04"] == ["needed by crm.2025-06.000006.car (incremental)", "needed by crm.2025-05.000005.car (incremental)"], "\(kept)")
        #expect(kept["2025-06"] == ["the series' latest archive", "monthly 2025-06 (1 of 2)"])
        #expect(kept["2025-05"] == ["monthly 2025-05 (2 of 2)", "needed by crm.2025-06.000006.car (incremental)"])
        // File times decide nothing: the newest file on disk is not the latest archive.
        var times = [timespec(tv_sec: 946_684_800, tv_nsec: 0), timespec(tv_sec: 946_684_800, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, s.v.path("2025-06", 6), &times, 0) == 0)
        #expect(try s.v.vault.planPrune(series: "crm", policy: policy, trusting: s.v.trusted, now: Self.now).removed == plan.removed)

        let done = try s.v.vault.prune(series: "crm", policy: policy, signer: s.v.keys.signer, trusting: s.v.trusted, now: Self.now)
        #expect(done.removed == plan.removed)
        for file in plan.removed { #expect(!FileManager.default.fileExists(atPath: "\(s.v.vault.root)/\(file)") && !FileManager.default.fileExists(atPath: "\(s.v.vault.root)/\(file).minisig")) }
        var pruned: [JournalRecord] = []
        try Journal.read(s.v.vault.journalPath, trusting: s.v.trusted) { if let r = $0.record, r.event == .archivePruned { pruned.append(r) } }
        #expect(pruned.map(\.period) == ["2025-01", "2025-02", "2025-03"] && pruned.allSatisfy { $0.reason == "outside the retention rules: keep-monthly 2" })
        // The audit stays clean: the pruned months are explained gaps, the chain checked against the journal.
        let report = try s.v.audit()
        #expect(report.findings == [], "\(report.findings)")
        #expect(report.series.first?.periods.map(\.status) == [.explained, .explained, .explained, .ok, .ok, .ok])
        #expect(report.series.first?.periods.first?.explanation?.contains("keep-monthly 2") == true)
        // What is left still restores, at every period it covers.
        #expect(try s.restore("2025-06", to: "june").chain?.count == 3)
    }

    @Test func aSignedRetainUntilKeepsAnArchiveAndItsBaseAndAnIncrementalExtendsItsBases() throws {
        let s = try Self.series(retainFebruary: true)
        let plan = try s.v.vault.planPrune(series: "crm", policy: RetentionPolicy(monthly: 1), trusting: s.v.trusted, now: Self.now)
        let kept = Dictionary(uniqueKeysWithValues: plan.decisions.filter(\.kept).map { ($0.period, $0.keptBecause) })
        #expect(kept["2025-02"] == ["retained until 2100-01-01T00:00:00Z"], "\(kept)")
        // February rests on January: making it with a retain-until extended January's, in the journal.
        #expect(kept["2025-01"] == ["retained until 2100-01-01T00:00:00Z", "needed by crm.2025-02.000002.car (incremental)"])
        #expect(plan.removed.map { FileSystem.baseName(of: $0) } == ["crm.2025-03.000003.car"])
        var extended: [String] = []
        try Journal.read(s.v.vault.journalPath, trusting: s.v.trusted) { if let r = $0.record, r.event == .retentionExtended { extended.append(r.file ?? "") } }
        #expect(extended == ["series/crm/crm.2025-01.000001.car"])
        let later = try IncrementalTests.Series()
        try later.write("a.csv", "1\n")
        try later.add("2025-01", .full, retainUntil: 1_800_000_000)
        try later.write("b.csv", "2\n")
        try later.add("2025-02", .incremental, retainUntil: 1_900_000_000)
        var records: [JournalRecord] = []
        try Journal.read(later.v.vault.journalPath, trusting: later.v.trusted) { if let r = $0.record, r.event == .retentionExtended { records.append(r) } }
        #expect(records.map(\.file) == ["series/crm/crm.2025-01.000001.car"] && records.first?.retainUntil == "2030-03-17T17:46:40Z"
                && records.first?.reason == "needed by crm.2025-02.000002.car", "\(records)")
        // The extension counts: the full is retained until the incremental's date, not its own.
        let after = try later.v.vault.planPrune(series: "crm", policy: RetentionPolicy(monthly: 1), trusting: later.v.trusted,
                                                now: Date(timeIntervalSince1970: 1_850_000_000))
        #expect(after.decisions.first?.keptBecause.contains("retained until 2030-03-17T17:46:40Z") == true, "\(after.decisions)")
    }

    @Test func theCommandPrintsItsPlanAndRefusesToRunWithoutARule() throws {
        let v = try CLIVault(months: ["2026-07", "2026-08", "2026-09"])
        let none = try CLI.run(["prune", "--vault", v.vault, "--series", "crm", "--keyring", v.keyring])
        #expect(none.status == 2 && none.stderr.contains("give at least one rule"), "\(none.stderr)")
        let dry = try CLI.run(["prune", "--vault", v.vault, "--series", "crm", "--keep-monthly", "1", "--dry-run", "--keyring", v.keyring])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("would remove  crm.2026-07.000001.car  full") && dry.stdout.contains("keep    crm.2026-09.000003.car  full  — the series' latest archive; monthly 2026-09 (1 of 1)"), "\(dry.stdout)")
        #expect(dry.stdout.contains("dry run: would remove 2 of 3 archives"))
        #expect(FileManager.default.fileExists(atPath: v.archive("2026-07", 1)))
        let run = try CLI.run(["prune", "--vault", v.vault, "--series", "crm", "--keep-within", "1m", "--keyring", v.keyring])
        #expect(run.status == 0 && run.stdout.contains("removed 1 of 3 archives"), "\(run.stdout)\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: v.archive("2026-07", 1)) && FileManager.default.fileExists(atPath: v.archive("2026-08", 2)))
        let audit = try CLI.run(["audit", "--vault", v.vault, "--trust", v.trust, "--to", "2026-09"])
        #expect(audit.status == 0, "\(audit.stdout)")
    }
}

/// The same through the command line.
@Suite struct IncrementalCLITests {
    @Test func anOperatorCutsIncrementalsAndRestoresAMonth() throws {
        let v = try CLIVault(months: [])
        let state = v.scratch.sub("state")
        func create(_ month: String, _ extra: [String] = []) throws -> CLIResult {
            try CLI.run(["create", "--vault", v.vault, "--series", "crm", "--period", month, "--keyring", v.keyring, "--state", state,
                         v.scratch.sub("crm")] + extra)
        }
        let full = try create("2026-09")
        #expect(full.status == 0, "\(full.stderr)")
        try TreeBuilder.write(v.scratch.sub("crm/orders.csv"), "id,month\n1,2026-10\n")
        let incremental = try create("2026-10", ["--mode", "incremental"])
        #expect(incremental.status == 0, "\(incremental.stderr)")
        #expect(incremental.stdout.contains("incremental on sequence 1 ("), "\(incremental.stdout)")
        #expect(incremental.stdout.contains("1 files and links unchanged (not stored), 0 paths deleted since"), "\(incremental.stdout)")
        let unmeasured = try CLI.run(["plan", "--vault", v.vault, "--series", "crm", "--period", "2026-10", "--trust", v.trust])
        #expect(unmeasured.status == 0 && unmeasured.stdout.contains("needs 2 archives, each verified whole first:"), "\(unmeasured.stdout)\(unmeasured.stderr)")
        #expect(unmeasured.stdout.contains("crm.2026-10.000002.car  incremental  2026-10") && unmeasured.stdout.contains("estimated time: unknown"))
        let september = try CLI.run(["restore", "--vault", v.vault, "--series", "crm", "--period", "2026-09", "--keyring", v.keyring, "--to", v.scratch.sub("r9")])
        #expect(september.status == 0 && september.stdout.contains("through 1 archive, each verified whole first: crm.2026-09.000001.car"), "\(september.stdout)\(september.stderr)")
        #expect(!FileManager.default.fileExists(atPath: v.scratch.sub("r9/crm/orders.csv")))
        let october = try CLI.run(["restore", "--vault", v.vault, "--series", "crm", "--period", "2026-10", "--keyring", v.keyring, "--to", v.scratch.sub("r10")])
        #expect(october.stdout.contains("through 2 archives"), "\(october.stdout)\(october.stderr)")
        #expect(try String(contentsOfFile: v.scratch.sub("r10/crm/orders.csv"), encoding: .utf8) == "id,month\n1,2026-10\n")
        // Two restores measured: plan now estimates from them.
        let measured = try CLI.run(["plan", "--vault", v.vault, "--series", "crm", "--trust", v.trust, "--json"])
        let plan = try JSONSerialization.jsonObject(with: Data(measured.stdout.utf8)) as? [String: Any]
        #expect((plan?["archives"] as? [Any])?.count == 2 && (plan?["measuredBytesPerSecond"] as? Double ?? 0) > 0
                && (plan?["estimatedSeconds"] as? Double) != nil, "\(measured.stdout)")
        // Another host's state (none here): a full, and why.
        let elsewhere = try CLI.run(["create", "--vault", v.vault, "--series", "crm", "--period", "2026-11", "--keyring", v.keyring,
                                     "--state", v.scratch.sub("other-state"), "--mode", "differential", v.scratch.sub("crm")])
        #expect(elsewhere.status == 0 && elsewhere.stderr.contains("a full archive was made instead of the differential asked for: there is no change index for the base archive"), "\(elsewhere.stderr)")
        // A host whose state directory cannot be made (a system account without a home) still archives.
        let homeless = try CLI.run(["create", "--vault", v.vault, "--series", "crm", "--period", "2026-11", "--keyring", v.keyring,
                                    "--state", "/proc/coldarchive-state", "--mode", "incremental", v.scratch.sub("crm")])
        #expect(homeless.status == 0 && homeless.stderr.contains("a full archive was made instead of the incremental asked for: the state directory"), "\(homeless.stderr)")
        let misuse = try CLI.run(["create", "--out", v.scratch.sub("x.car"), "--mode", "incremental", "--keyring", v.keyring, v.scratch.sub("crm")])
        #expect(misuse.status == 2 && misuse.stderr.contains("go with --vault DIR"))
    }
}

extension Lister {
    /// Every entry of an archive's manifest (tests).
    static func entries(path: String, keyring: Keyring) throws -> [ManifestEntry] {
        var all: [ManifestEntry] = []
        try list(path: path, keyring: keyring) { all.append($0) }
        return all
    }
}
