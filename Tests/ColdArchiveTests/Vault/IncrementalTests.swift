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
        func add(_ month: String, _ mode: ArchiveHeader.BackupMode, rehash: Bool = false, ignoreChangeTime: Bool = false) throws -> VaultCreateReport {
            try v.vault.create(CreateOptions(sources: [tree], output: ""), series: "crm", period: month, signer: v.keys.signer,
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
        let september = try CLI.run(["restore", "--vault", v.vault, "--series", "crm", "--period", "2026-09", "--keyring", v.keyring, "--to", v.scratch.sub("r9")])
        #expect(september.status == 0 && september.stdout.contains("through 1 archive, each verified whole first: crm.2026-09.000001.car"), "\(september.stdout)\(september.stderr)")
        #expect(!FileManager.default.fileExists(atPath: v.scratch.sub("r9/crm/orders.csv")))
        let october = try CLI.run(["restore", "--vault", v.vault, "--series", "crm", "--period", "2026-10", "--keyring", v.keyring, "--to", v.scratch.sub("r10")])
        #expect(october.stdout.contains("through 2 archives"), "\(october.stdout)\(october.stderr)")
        #expect(try String(contentsOfFile: v.scratch.sub("r10/crm/orders.csv"), encoding: .utf8) == "id,month\n1,2026-10\n")
        // Another host's state (none here): a full, and why.
        let elsewhere = try CLI.run(["create", "--vault", v.vault, "--series", "crm", "--period", "2026-11", "--keyring", v.keyring,
                                     "--state", v.scratch.sub("other-state"), "--mode", "differential", v.scratch.sub("crm")])
        #expect(elsewhere.status == 0 && elsewhere.stderr.contains("a full archive was made instead of the differential asked for: there is no change index for the base archive"), "\(elsewhere.stderr)")
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
