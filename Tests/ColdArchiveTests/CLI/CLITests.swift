import Foundation
import Testing
@testable import ColdArchive

/// The built binary, driven as a user drives it; exit codes are part of the interface.
@Suite struct CLITests {
    func setUp() throws -> (Scratch, String, String) {
        let scratch = try Scratch()
        let keyring = scratch.sub("keys")
        let initResult = try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring])
        #expect(initResult.status == 0, "\(initResult.stderr)")
        let source = try TreeBuilder.crmTree(at: scratch.sub("src"))
        return (scratch, keyring, source)
    }

    @Test func theWholeLifecycleThroughTheBinary() throws {
        let (scratch, keyring, source) = try setUp()
        let archive = scratch.sub("2026-11.car")
        let create = try CLI.run(["create", "--keyring", keyring, "--label", "CRM 2026-11", "--out", archive, source])
        #expect(create.status == 0, "\(create.stderr)")
        #expect(create.stdout.contains("archive digest"))

        let inspect = try CLI.run(["inspect", archive, "--json"])
        #expect(inspect.status == 0)
        let summary = try JSONDecoder().decode(ArchiveSummary.self, from: Data(inspect.stdout.utf8))
        #expect(summary.label == "CRM 2026-11")
        #expect(summary.entryCount == 12)

        let verify = try CLI.run(["verify", archive, "--trust", "\(keyring)/signing.pub", "--json"])
        #expect(verify.status == 0, "\(verify.stderr)")
        let report = try JSONDecoder().decode(VerificationReport.self, from: Data(verify.stdout.utf8))
        #expect(report.chunksChecked == summary.chunkCount)

        let deep = try CLI.run(["verify", archive, "--deep", "--keyring", keyring])
        #expect(deep.status == 0, "\(deep.stderr)")
        #expect(deep.stdout.contains("12 entries decrypted"))

        // The text listing has the BLAKE2b-256 column its help promises (b2sum -l 256 of the file).
        let text = try CLI.run(["list", archive, "--keyring", keyring])
        let csv = Array(try Data(contentsOf: URL(fileURLWithPath: "\(source)/exports/customers.csv")))
        #expect(text.stdout.contains(" \(Sodium.blake2b(csv).hex) crm/exports/customers-copy.csv\n"), "\(text.stdout)")
        #expect(text.stdout.contains(" \(String(repeating: "-", count: 64)) crm/exports\n"))
        let list = try CLI.run(["list", archive, "--keyring", keyring, "--json"])
        #expect(list.status == 0)
        #expect(list.stdout.split(separator: "\n").count == 12)
        #expect(list.stdout.contains("\"path\":\"crm/tickets/Zürich–Straße.json\""))

        let restore = try CLI.run(["restore", archive, "--keyring", keyring, "--to", scratch.sub("out")])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try TreeSnapshot(source) == TreeSnapshot(scratch.sub("out/crm")))

        let checked = try CLI.run(["restore", archive, "--keyring", keyring, "--to", scratch.sub("out2"), "--check-content"])
        #expect(checked.status == 0, "\(checked.stderr)")
        #expect(try TreeSnapshot(source) == TreeSnapshot(scratch.sub("out2/crm")))
    }

    @Test func theKeyringComesFromTheEnvironment() throws {
        let (scratch, keyring, source) = try setUp()
        let result = try CLI.run(["create", "--out", scratch.sub("a.car"), source], environment: ["COLDARCHIVE_KEYRING": keyring])
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test func damageExitsOneWithAPlainMessage() throws {
        let (scratch, keyring, source) = try setUp()
        let archive = scratch.sub("a.car")
        #expect(try CLI.run(["create", "--keyring", keyring, "--out", archive, source]).status == 0)
        try flipBit(archive, at: fileSize(archive) / 2)
        let verify = try CLI.run(["verify", archive, "--trust", "\(keyring)/signing.pub"])
        #expect(verify.status == 1)
        #expect(verify.stderr.contains("archive is damaged: chunk"))
        let restore = try CLI.run(["restore", archive, "--keyring", keyring, "--to", scratch.sub("out")])
        #expect(restore.status == 1)
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("out")))
    }

    @Test func anotherSignersKeyExitsOne() throws {
        let (scratch, keyring, source) = try setUp()
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", scratch.sub("other")]).status == 0)
        #expect(try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("a.car"), source]).status == 0)
        let verify = try CLI.run(["verify", scratch.sub("a.car"), "--trust", scratch.sub("other/signing.pub")])
        #expect(verify.status == 1)
        #expect(verify.stderr.contains("which is not a trusted key"))
        // A rotated signing key looks like this too: the message says how to follow a rotation.
        #expect(verify.stderr.contains("--chain KEYRING/signing-chain"), "\(verify.stderr)")
    }

    /// Issue 16, input 5: verify every file given, report every damaged chunk, JSON for success and
    /// failure alike; inspect takes several files too.
    @Test func verifyChecksEveryFileAndNamesEveryDamagedChunk() throws {
        let (scratch, keyring, source) = try setUp()
        let good = scratch.sub("2026-10.car"), bad = scratch.sub("2026-11.car")
        for archive in [good, bad] {
            var options = CreateOptions(sources: [source], output: archive)
            options.chunkRawSize = 64 << 10
            let ring = try Keyring(directory: keyring)
            _ = try ArchiveCreator.create(options, signer: ring.signingKey(), recipients: ring.recipientPublicKeys())
        }
        let file = try ArchiveFile(path: bad)
        let cursor = file.chunkTable()
        var chunks: [(UInt64, UInt64, UInt64)] = []
        while let (index, offset, record) = try cursor.next() { chunks.append((index, offset, UInt64(record.sealedLength))) }
        try #require(chunks.count >= 4)
        for i in [1, 3] { try flipBit(bad, at: chunks[i].1 + 10) }

        let text = try CLI.run(["verify", bad, good, "--trust", "\(keyring)/signing.pub"])
        #expect(text.status == 1)
        #expect(text.stdout.contains("FAILED \(bad)") && text.stdout.contains("OK \(good): intact"), "\(text.stdout)")
        for i in [1, 3] {
            #expect(text.stdout.contains("damaged chunk \(chunks[i].0): bytes \(chunks[i].1)–\(chunks[i].1 + chunks[i].2 - 1)"), "\(text.stdout)")
        }

        let json = try CLI.run(["verify", bad, good, "--trust", "\(keyring)/signing.pub", "--json"])
        #expect(json.status == 1)
        let lines = json.stdout.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(lines.count == 2)
        #expect(lines[0]?["valid"] as? Bool == false && lines[0]?["errorKind"] as? String == "integrity")
        #expect((lines[0]?["damagedChunks"] as? [[String: Any]])?.compactMap { $0["index"] as? Int } == [1, 3])
        #expect(lines[1]?["valid"] as? Bool == true && lines[1]?["archive"] as? String == good)

        let inspect = try CLI.run(["inspect", good, bad, "--json"])
        #expect(inspect.status == 0)
        #expect(inspect.stdout.split(separator: "\n").count == 2)
    }

    @Test(arguments: [
        ["create", "--keyring", "k"],                    // no --out, no source
        ["verify", "x.car"],                             // neither --trust nor --deep
        ["restore", "x.car"],                            // no --to
        ["frobnicate"],                                  // no such command
        ["create", "--out", "a.car", "--level", "many", "src"],
    ])
    func usageErrorsExitTwo(arguments: [String]) throws {
        let result = try CLI.run(arguments)
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        #expect(!result.stderr.isEmpty)
    }

    @Test func otherFailuresExitThree() throws {
        let (scratch, keyring, source) = try setUp()
        // A missing keyring.
        let noKeys = try CLI.run(["create", "--keyring", scratch.sub("nowhere"), "--out", scratch.sub("a.car"), source])
        #expect(noKeys.status == 3)
        #expect(noKeys.stderr.contains("keys init"))
        // A restore target that is not empty.
        #expect(try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("a.car"), source]).status == 0)
        try FileManager.default.createDirectory(atPath: scratch.sub("busy"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("busy/x"), "x")
        let busy = try CLI.run(["restore", scratch.sub("a.car"), "--keyring", keyring, "--to", scratch.sub("busy")])
        #expect(busy.status == 3)
        #expect(busy.stderr.contains("not empty"))
        // keys init over an existing keyring.
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 3)
        // A missing archive.
        #expect(try CLI.run(["inspect", scratch.sub("missing.car")]).status == 3)
    }

    /// The test runner itself: a child that writes more to stderr than a pipe holds (64 KiB) before
    /// it writes to stdout must not hang it.
    @Test func theRunnerReadsALargeStandardErrorWithoutHanging() throws {
        let result = try CLI.run(["-c", "head -c 200000 /dev/zero | tr '\\0' x >&2; echo done"], executable: "/bin/sh")
        #expect(result.stdout == "done\n")
        #expect(result.stderr.utf8.count == 200_000)
    }

    /// File names with a newline (forging a realistic listing line), a carriage return, a tab, an
    /// escape sequence, a backslash and a right-to-left override (issue 15, input 6): the text listing
    /// escapes them as GNU tar does, one line per entry; JSON gives the exact names.
    @Test func listEscapesControlCharactersInNames() throws {
        let (scratch, keyring, _) = try setUp()
        let root = scratch.sub("names/crm")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let names = ["evil\n- 644           42 2026-11-01T00:00:00.000000000Z forged.csv", "over\rwrite", "tab\there",
                     "esc\u{1B}[31mred", "back\\slash", "rlo\u{202E}fdp.exe", "del\u{7F}"]
        for name in names { try TreeBuilder.write("\(root)/\(name)", "x") }
        let archive = scratch.sub("names.car")
        #expect(try CLI.run(["create", "--keyring", keyring, "--out", archive, root]).status == 0)

        let text = try CLI.run(["list", archive, "--keyring", keyring])
        #expect(text.status == 0)
        let lines = text.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == names.count + 1, "\(text.stdout)")
        #expect(!text.stdout.contains("\r") && !text.stdout.contains("\u{1B}") && !text.stdout.contains("\u{202E}") && !text.stdout.contains("\t"))
        for escaped in [#"crm/evil\n- 644"#, #"crm/over\rwrite"#, #"crm/tab\there"#, #"crm/esc\033[31mred"#, #"crm/back\\slash"#,
                        #"crm/rlo\342\200\256fdp.exe"#, #"crm/del\177"#] {
            #expect(lines.contains { $0.contains(escaped) }, "\(escaped)")
        }

        let json = try CLI.run(["list", archive, "--keyring", keyring, "--json"])
        let paths = try json.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])["path"] as? String
        }
        #expect(Set(paths.compactMap { $0 }.map(PathRules.key)) == Set((["crm"] + names.map { "crm/\($0)" }).map(PathRules.key)))
    }

    /// Warnings reach scripts (issue 15, input 7): each has a kind and a path in `create --json`, and a
    /// complete, valid archive that misses something of its sources exits 4, not 0.
    @Test func createReportsWarningsInJSONAndExitsFour() throws {
        let (scratch, keyring, source) = try setUp()
        struct Created: Decodable {
            struct Warning: Decodable { var kind: String; var path: String; var detail: String }
            var archive: String
            var entryCount: UInt64
            var warnings: [Warning]
        }
        let clean = try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("clean.car"), "--json", source])
        #expect(clean.status == 0, "\(clean.stderr)")
        let cleanReport = try JSONDecoder().decode(Created.self, from: Data(clean.stdout.utf8))
        #expect(cleanReport.archive == scratch.sub("clean.car") && cleanReport.warnings.isEmpty && cleanReport.entryCount == 12)

        #expect(mkfifo("\(source)/queue.fifo", 0o600) == 0)
        let inexact = try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("inexact.car"), "--json", source])
        #expect(inexact.status == 4, "\(inexact.stderr)")
        #expect(inexact.stderr.contains("warning: '\(source)/queue.fifo' is a device, FIFO or socket; skipped"))
        let report = try JSONDecoder().decode(Created.self, from: Data(inexact.stdout.utf8))
        #expect(report.warnings.map(\.kind) == ["skipped-special-file"])
        #expect(report.warnings.map(\.path) == ["\(source)/queue.fifo"])
        // The archive itself is complete and valid.
        #expect(try CLI.run(["verify", scratch.sub("inexact.car"), "--trust", "\(keyring)/signing.pub"]).status == 0)
    }

    @Test func versionAndUsageErrorsReadCleanly() throws {
        let version = try CLI.run(["--version"])
        #expect(version.status == 0)
        #expect(version.stdout == "coldarchive \(ArchiveCreator.version) (writes archive format version 2)\n")
        let usage = try CLI.run(["create"])
        #expect(usage.status == 2)
        #expect(usage.stderr.hasPrefix("coldarchive: error: name at least one SOURCE to archive, or --import FILE"), "\(usage.stderr)")
        let noOutput = try CLI.run(["create", "somewhere"])
        #expect(noOutput.status == 2)
        #expect(noOutput.stderr.hasPrefix("coldarchive: error: pass --out FILE, or --vault DIR --series NAME"), "\(noOutput.stderr)")
    }

    /// `restore --to` and `keys init --keyring` create missing parents (as their help says); a restore
    /// that fails removes every directory it made.
    @Test func restoreAndKeysInitCreateMissingParents() throws {
        let (scratch, keyring, source) = try setUp()
        let nested = try CLI.run(["keys", "init", "--no-passphrase", "--keyring", scratch.sub("custodian/safe/keys")])
        #expect(nested.status == 0, "\(nested.stderr)")
        #expect(FileManager.default.fileExists(atPath: scratch.sub("custodian/safe/keys/signing.pub")))

        let archive = scratch.sub("a.car")
        #expect(try CLI.run(["create", "--keyring", keyring, "--out", archive, source]).status == 0)
        let restored = try CLI.run(["restore", archive, "--keyring", keyring, "--to", scratch.sub("restore/2026-11/crm-tree")])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try TreeSnapshot(source) == TreeSnapshot(scratch.sub("restore/2026-11/crm-tree/crm")))

        // Refused during extraction (after the target was made): nothing of the new path stays.
        let keys = try TestKeys(in: scratch, name: "crafting-keys")
        let hostile = try craftArchive(scratch, keys: keys, tar: HostileContentTests.crm + HandTar.entry("crm/etc", .symlink, link: "../../etc"),
                                       manifest: [.directory("crm"), .link(.symlink, "crm/etc", to: "../../etc")])
        #expect(throws: IntegrityError.unsafeEntry(path: "crm/etc", reason: .symlinkEscapes(target: "../../etc"))) {
            _ = try Restorer.restore(archivePath: hostile, to: scratch.sub("never/made/here"), keyring: keys.keyring)
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("never")))
    }

    /// Issue 16, input 4: an operator at 3 a.m. with no keyring here is pointed at the offline key
    /// backup and --keyring, not told to run 'keys init' (which makes a keyring that cannot help).
    @Test func restoreWithoutAKeyringPointsToTheBackupNotToKeysInit() throws {
        let (scratch, keyring, source) = try setUp()
        #expect(try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("c.car"), source]).status == 0)
        let result = try CLI.run(["restore", scratch.sub("c.car"), "--keyring", scratch.sub("nowhere"), "--to", scratch.sub("r")])
        #expect(result.status == 3)
        #expect(result.stderr.contains("point --keyring at the keyring that made them — or at its offline backup"), "\(result.stderr)")
        #expect(result.stderr.contains("'coldarchive keys init' makes a NEW keyring, which cannot open archives made with another one"))
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("r")))
    }

    @Test func helpExitsZero() throws {
        let result = try CLI.run(["--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("Exit codes"))
    }
}

/// Restore's writer threads keep few directory descriptors however the files are spread: a tree of
/// hundreds of directories holding one file each restores under a limit of 32 open files (at most 12 directories with queued files, 4 in the batch being filled, and the process's own dozen).
@Suite struct DescriptorBudgetTests {
    @Test func manyDirectoriesRestoreUnderATightFileLimit() throws {
        let scratch = try Scratch()
        let keyring = scratch.sub("keys")
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        for d in 0..<400 {
            let dir = scratch.sub(String(format: "src/crm/c%04d", d))
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try TreeBuilder.write("\(dir)/customer.json", "{\"id\": \(d)}\n")
            // Content the writer lanes take a while over (hashed with --check-content), so the
            // parsing thread runs ahead of them and queues as many directories as it may.
            try TreeBuilder.write("\(dir)/scan.pdf", bytes: TreeBuilder.noise(128 << 10, seed: UInt64(d)))
        }
        let archive = scratch.sub("a.car")
        let create = try CLI.run(["-c", "ulimit -n 40 && exec \"$0\" create --keyring \"$1\" --out \"$2\" \"$3\"",
                                  CLI.executable, keyring, archive, scratch.sub("src/crm")], executable: "/bin/bash")
        #expect(create.status == 0, "\(create.stderr)")
        let restore = try CLI.run(["-c", "ulimit -n 32 && exec \"$0\" restore \"$2\" --check-content --keyring \"$1\" --to \"$3\"",
                                   CLI.executable, keyring, archive, scratch.sub("out")], executable: "/bin/bash")
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try TreeSnapshot(scratch.sub("src/crm")) == TreeSnapshot(scratch.sub("out/crm")))
    }
}
