import Foundation
import Testing
@testable import ColdArchive

/// Issue 15: every name, link, owner, attribute and byte kept exactly, or a loud account of what was
/// not. Trees are compared with Tests/Support/compare-trees (lstat, listxattr, getfacl), not with the
/// library's own idea of a tree.
@Suite struct FidelityTests {
    static let support = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Support").path
    static let isRoot = geteuid() == 0

    func setxattr(_ path: String, _ name: String, _ value: String) throws {
        let r = try CLI.run(["-n", name, "-v", value, path], executable: "/usr/bin/setfattr")
        try #require(r.status == 0, "setfattr: \(r.stderr)")
    }

    func setfacl(_ arguments: [String]) throws {
        let r = try CLI.run(arguments, executable: "/usr/bin/setfacl")
        try #require(r.status == 0, "setfacl: \(r.stderr)")
    }

    func setTime(_ path: String, seconds: Int, nanoseconds: Int) {
        var times = [timespec(tv_sec: seconds, tv_nsec: nanoseconds), timespec(tv_sec: seconds, tv_nsec: nanoseconds)]
        #expect(utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW) == 0)
    }

    func compare(_ expected: String, _ actual: String, owners: Bool) throws {
        let result = try CLI.run([Self.support + "/compare-trees"] + (owners ? ["--owners"] : []) + [expected, actual],
                                 executable: "/usr/bin/python3")
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
    }

    /// A tree with every kind of name, link, owner, attribute and timestamp this machine can make (as
    /// the user running the test: root adds other owners), archived and restored, is exact.
    @Test func everyKindOfMetadataRoundTripsExactly() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let crm = scratch.sub("src/crm")
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(crm)/tickets/closed", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(crm)/shared", withIntermediateDirectories: true)
        try TreeBuilder.write("\(crm)/customers.csv", "id,name\n1,Ada\n")
        try TreeBuilder.write("\(crm)/tickets/T-1.json", "{}\n")
        try TreeBuilder.write("\(crm)/tickets/closed/T-0.json", "{\"old\":true}\n", mode: 0o400)
        try TreeBuilder.write("\(crm)/report.sh", "#!/bin/sh\n", mode: 0o4755)
        try TreeBuilder.write("\(crm)/caf\u{E9}.txt", "precomposed")
        try TreeBuilder.write("\(crm)/cafe\u{301}.txt", "decomposed")
        try TreeBuilder.write("\(crm)/line\nbreak.txt", "newline in the name")
        try TreeBuilder.write("\(crm)/1955.txt", "old")
        try fm.createSymbolicLink(atPath: "\(crm)/localtime", withDestinationPath: "/usr/share/zoneinfo/UTC")
        try fm.createSymbolicLink(atPath: "\(crm)/tickets/up", withDestinationPath: "../../../elsewhere")
        try fm.createSymbolicLink(atPath: "\(crm)/dangling", withDestinationPath: "no-such-file")
        // A Latin-1 name (not UTF-8), a link to it, and a sparse file with a hole at each end.
        let latin1 = Array("\(crm)/Kunde-M".utf8) + [0xFC] + Array("ller.txt".utf8) + [0]
        let fd = latin1.withUnsafeBufferPointer { p in p.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT, 0o640) } }
        #expect(fd >= 0 && write(fd, "latin-1", 7) == 7)
        close(fd)
        #expect(symlink([CChar](arrayLiteral: 75, 117, 110, 100, 101, 45, 77, CChar(bitPattern: 0xFC), 108, 108, 101, 114, 46, 116, 120, 116, 0),
                        "\(crm)/latin1-link") == 0)
        let image = open("\(crm)/disk.img", O_WRONLY | O_CREAT, 0o600)
        #expect(ftruncate(image, 32 << 20) == 0 && pwrite(image, "MBR", 3, 8 << 20) == 3)
        close(image)
        #expect(link("\(crm)/customers.csv", "\(crm)/tickets/customers-again.csv") == 0)
        #expect(chmod("\(crm)/shared", 0o1777) == 0)
        // Attributes and ACLs (ext4 and tmpfs take both); the ACL names the user running the test.
        let me = String(getuid())
        try setxattr("\(crm)/customers.csv", "user.origin", "crm-export")
        try setxattr("\(crm)/customers.csv", "user.checksum", "0123")
        try setxattr("\(crm)/tickets", "user.retention", "10y")
        try setfacl(["-m", "u:\(me):r,g:\(getgid()):rw", "\(crm)/tickets/T-1.json"])
        try setfacl(["-d", "-m", "u:\(me):rx", "\(crm)/tickets"])
        if Self.isRoot {
            #expect(chown("\(crm)/tickets/T-1.json", 1000, 100) == 0)
            #expect(lchown("\(crm)/localtime", 65534, 65534) == 0)
            #expect(chown("\(crm)/shared", 65534, 100) == 0)
            try TreeBuilder.write("\(crm)/setgid-tool", "#!/bin/sh\n", mode: 0o755)
            #expect(chown("\(crm)/setgid-tool", 0, 100) == 0 && chmod("\(crm)/setgid-tool", 0o2755) == 0)
        }
        // Times last, deepest first: 1955-01-01 00:00:00.5 (input 8) and nanoseconds everywhere.
        setTime("\(crm)/1955.txt", seconds: -473_385_600, nanoseconds: 500_000_000)
        setTime("\(crm)/report.sh", seconds: 1_769_903_999, nanoseconds: 123_456_789)
        setTime("\(crm)/localtime", seconds: 1_700_000_000, nanoseconds: 1)
        for dir in ["\(crm)/tickets/closed", "\(crm)/tickets", "\(crm)/shared", crm] {
            setTime(dir, seconds: 1_600_000_000, nanoseconds: 999_999_999)
        }

        let report = try ArchiveCreator.create(CreateOptions(sources: [crm], output: scratch.sub("a.car")), signer: keys.signer,
                                               recipients: keys.recipients)
        #expect(report.warnings.isEmpty, "\(report.warnings)")
        _ = try Verifier.verifyDeep(path: scratch.sub("a.car"), keyring: keys.keyring)
        let restored = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring,
                                            checkContent: true)
        #expect(restored.notices.isEmpty, "\(restored.notices)")
        #expect(restored.owners == (Self.isRoot ? "archived" : "none (not running as root: everything belongs to the user who restored)"))
        try compare(scratch.sub("src"), scratch.sub("out"), owners: Self.isRoot)

        // The manifest says what was kept.
        var entries: [String: ManifestEntry] = [:]
        try Lister.list(path: scratch.sub("a.car"), keyring: keys.keyring) { entries[$0.path] = $0 }
        let csv = try #require(entries["crm/customers.csv"])
        #expect(csv.xattrs.map(\.displayName).sorted() == ["user.checksum", "user.origin"])
        let ticket = try #require(entries["crm/tickets/T-1.json"])
        #expect(ticket.accessACL.contains { $0.tag == .user && $0.id == getuid() && $0.permissions == 4 })
        #expect(entries["crm/tickets"]?.defaultACL.isEmpty == false)
        #expect(entries["crm/report.sh"]?.mode == 0o4755)
        #expect(entries["crm/shared"]?.mode == 0o1777)
        #expect(entries["crm/1955.txt"].map { [$0.mtime, Int64($0.mtimeNanoseconds)] } == [-473_385_600, 500_000_000])
        if Self.isRoot { #expect(ticket.uid == 1000 && ticket.gid == 100) }
    }

    /// Holes in sparse files (a VM image, a database's preallocated file) are kept: the tar stream holds
    /// only the data regions (GNU sparse 1.0), and restore makes the same holes again.
    @Test func sparseFilesKeepTheirHoles() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let crm = scratch.sub("src/crm")
        try FileManager.default.createDirectory(atPath: crm, withIntermediateDirectories: true)
        func sparse(_ name: String, size: Int, data: [(offset: Int, bytes: [UInt8])]) throws {
            let fd = open("\(crm)/\(name)", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            try #require(fd >= 0)
            defer { close(fd) }
            #expect(ftruncate(fd, off_t(size)) == 0)
            for (offset, bytes) in data { #expect(bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) } == bytes.count) }
        }
        let noise = TreeBuilder.noise(40_000, seed: 5)
        try sparse("disk.img", size: 64 << 20, data: [(0, Array("HEADER".utf8)), (16 << 20, noise), (40 << 20, noise)])
        try sparse("ends-in-a-hole.db", size: 20 << 20, data: [(1000, Array(noise.prefix(3000)))])
        try TreeBuilder.write("\(crm)/plain.csv", "a,b\n")
        func allocated(_ path: String) throws -> Int {
            var st = stat()
            try #require(stat(path, &st) == 0)
            return Int(st.st_blocks) * 512
        }
        try #require(try allocated("\(crm)/disk.img") < 1 << 20, "this file system makes no holes")
        let report = try ArchiveCreator.create(CreateOptions(sources: [crm], output: scratch.sub("a.car")), signer: keys.signer,
                                               recipients: keys.recipients)
        #expect(report.summary.contentBytes == UInt64((64 << 20) + (20 << 20) + 4))
        #expect(report.summary.tarBytes < 1 << 20, "the holes went into the tar stream: \(report.summary.tarBytes) bytes")
        var entries: [String: ManifestEntry] = [:]
        try Lister.list(path: scratch.sub("a.car"), keyring: keys.keyring) { entries[$0.path] = $0 }
        let disk = try #require(entries["crm/disk.img"]?.sparseMap)
        #expect(disk.filter { $0.length > 0 }.count == 3 && disk.allSatisfy { $0.offset % 4096 == 0 })
        #expect(disk.last == SparseRegion(offset: 64 << 20, length: 0))
        #expect(entries["crm/ends-in-a-hole.db"]?.sparseMap?.last == SparseRegion(offset: 20 << 20, length: 0))
        #expect(entries["crm/plain.csv"]?.sparseMap == nil)
        _ = try Verifier.verifyDeep(path: scratch.sub("a.car"), keyring: keys.keyring)
        _ = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring, checkContent: true)
        try compare(scratch.sub("src"), scratch.sub("out"), owners: Self.isRoot)
        #expect(try allocated(scratch.sub("out/crm/disk.img")) < 1 << 20)
        #expect(try allocated(scratch.sub("out/crm/ends-in-a-hole.db")) < 1 << 20)
    }

    /// `--no-owner` (and a restore by another user than root) gives everything to the restoring user
    /// and says so; `--numeric-owner` sets the archived numbers even where the names differ here.
    @Test(.enabled(if: FidelityTests.isRoot)) func ownerPoliciesDoWhatTarsDo() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        try FileManager.default.createDirectory(atPath: scratch.sub("src/crm"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("src/crm/a.csv"), "a\n")
        #expect(chown(scratch.sub("src/crm/a.csv"), 4242, 4343) == 0)  // no such user or group here: by number
        #expect(chown(scratch.sub("src/crm"), 65534, 65534) == 0)
        _ = try ArchiveCreator.create(CreateOptions(sources: [scratch.sub("src/crm")], output: scratch.sub("a.car")),
                                      signer: keys.signer, recipients: keys.recipients)
        func owner(_ path: String) throws -> [UInt32] {
            var st = stat()
            try #require(lstat(path, &st) == 0)
            return [st.st_uid, st.st_gid]
        }
        let archived = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("a"), keyring: keys.keyring)
        #expect(archived.owners == "archived")
        #expect(try owner(scratch.sub("a/crm/a.csv")) == [4242, 4343])
        #expect(try owner(scratch.sub("a/crm")) == [65534, 65534])
        let none = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("n"), keyring: keys.keyring, owners: .none)
        #expect(none.owners == "none (--no-owner)")
        #expect(try owner(scratch.sub("n/crm/a.csv")) == [0, 0])
        let numeric = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("m"), keyring: keys.keyring, owners: .numeric)
        #expect(numeric.owners == "numeric")
        #expect(try owner(scratch.sub("m/crm")) == [65534, 65534])
    }

    /// Restore creates each file with its archived permission bits and skips `fchmod` and `fchown`
    /// when they would change nothing (issue 17). What decides a new file's mode and group besides the
    /// request — a default ACL on the target, a setgid target — must still end in the archived ones.
    @Test func modesAndGroupsAreExactWhereTheTargetWouldChangeThem() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let crm = scratch.sub("src/crm")
        try FileManager.default.createDirectory(atPath: "\(crm)/tickets", withIntermediateDirectories: true)
        for (name, mode) in [("open.csv", 0o644), ("shared.csv", 0o666), ("tool.sh", 0o755), ("private.key", 0o600), ("sealed.txt", 0o444)] {
            try TreeBuilder.write("\(crm)/tickets/\(name)", name, mode: mode)
        }
        _ = try ArchiveCreator.create(CreateOptions(sources: [crm], output: scratch.sub("a.car")), signer: keys.signer,
                                      recipients: keys.recipients)
        func status(_ path: String) throws -> stat {
            var st = stat()
            try #require(lstat(path, &st) == 0)
            return st
        }
        // A default ACL on the target gives new files its own permissions instead of the umask's: here
        // none for group and others, which would leave open.csv 0600.
        let acl = scratch.sub("acl-target")
        try FileManager.default.createDirectory(atPath: acl, withIntermediateDirectories: true)
        try setfacl(["-d", "-m", "u::rwx,g::---,o::---", acl])
        _ = try Restorer.restore(archivePath: scratch.sub("a.car"), to: acl, keyring: keys.keyring, workers: 2)
        for (name, mode) in [("open.csv", 0o644), ("shared.csv", 0o666), ("tool.sh", 0o755), ("private.key", 0o600), ("sealed.txt", 0o444)] {
            #expect(try status("\(acl)/crm/tickets/\(name)").st_mode & 0o7777 == mode_t(mode), "\(name)")
        }
        // Below a setgid directory a new file takes the directory's group, not the creator's.
        if Self.isRoot {
            let setgid = scratch.sub("setgid-target")
            try FileManager.default.createDirectory(atPath: setgid, withIntermediateDirectories: true)
            #expect(chown(setgid, 0, 100) == 0 && chmod(setgid, 0o2775) == 0)
            _ = try Restorer.restore(archivePath: scratch.sub("a.car"), to: setgid, keyring: keys.keyring, workers: 2)
            #expect(try status("\(setgid)/crm/tickets/open.csv").st_gid == 0)
            #expect(try status("\(setgid)/crm/tickets/tool.sh").st_gid == 0)
        }
    }

    /// Issue 15, input 1: a file that shrinks while it is read was stored padded with zeros and called
    /// intact. Now the entry is flagged, the warning says what happened, restore cuts it at the bytes
    /// that were read and names it.
    @Test func aFileThatShrinksWhileReadIsFlaggedCutAndReported() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        try FileManager.default.createDirectory(atPath: scratch.sub("src/crm"), withIntermediateDirectories: true)
        let big = TreeBuilder.noise(3 << 20, seed: 9)
        try TreeBuilder.write(scratch.sub("src/crm/big.bin"), bytes: big)
        try TreeBuilder.write(scratch.sub("src/crm/small.txt"), "unchanged\n")
        var warnings: [SourceWarning] = []
        _ = try ArchiveCreator.write(to: scratch.sub("a.car"), signer: keys.signer, recipients: keys.recipients, label: nil, sources: ["crm"],
                                     compressionLevel: 3, chunkRawSize: FormatV1.defaultChunkRawSize, workers: 2, now: Date()) { content in
            let walker = SourceWalker(content: content)
            // As `truncate -s 1M` does to a file being archived: after the first read.
            walker.whileReading = { path in if path.hasSuffix("big.bin") { truncate(path, 1 << 20) } }
            try walker.add(source: scratch.sub("src/crm"), as: "crm")
            warnings = walker.warnings
            return (walker.entryCount, walker.contentBytes)
        }
        #expect(warnings.map(\.kind) == [.shrankWhileRead])
        #expect(warnings.first?.path == scratch.sub("src/crm/big.bin"))
        var entries: [String: ManifestEntry] = [:]
        try Lister.list(path: scratch.sub("a.car"), keyring: keys.keyring) { entries[$0.path] = $0 }
        let entry = try #require(entries["crm/big.bin"])
        #expect(entry.flags == [.changedWhileRead, .shrank])
        #expect(entry.size == UInt64(big.count))
        let readSize = try #require(entry.readSize)
        #expect(readSize >= 1 << 20 && readSize < UInt64(big.count))
        #expect(entries["crm/small.txt"]?.flags == [])
        _ = try Verifier.verifyDeep(path: scratch.sub("a.car"), keyring: keys.keyring)
        let report = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring)
        #expect(report.notices.map(\.kind) == [.changedWhileRead])
        #expect(report.notices.first?.path == "crm/big.bin")
        let restored = Array(try Data(contentsOf: URL(fileURLWithPath: scratch.sub("out/crm/big.bin"))))
        #expect(restored.count == Int(readSize))
        // Compared by hash: a failing comparison of two 3 MiB arrays would print them whole.
        #expect(Sodium.blake2b(restored).hex == Sodium.blake2b(Array(big.prefix(Int(readSize)))).hex)
    }

    /// A file whose modification time changes while it is read (same size) is flagged too: what was
    /// stored may mix old and new content.
    @Test func aFileModifiedWhileReadIsFlagged() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        try FileManager.default.createDirectory(atPath: scratch.sub("src/crm"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("src/crm/ledger.db"), bytes: TreeBuilder.noise(2 << 20, seed: 3))
        var warnings: [SourceWarning] = []
        _ = try ArchiveCreator.write(to: scratch.sub("a.car"), signer: keys.signer, recipients: keys.recipients, label: nil, sources: ["crm"],
                                     compressionLevel: 3, chunkRawSize: FormatV1.defaultChunkRawSize, workers: 2, now: Date()) { content in
            let walker = SourceWalker(content: content)
            walker.whileReading = { path in
                // An in-place write of one byte, as a database does.
                let fd = open(path, O_WRONLY)
                var byte: UInt8 = 0xFF
                _ = pwrite(fd, &byte, 1, 100)
                close(fd)
            }
            try walker.add(source: scratch.sub("src/crm"), as: "crm")
            warnings = walker.warnings
            return (walker.entryCount, walker.contentBytes)
        }
        #expect(warnings.map(\.kind) == [.changedWhileRead])
        var flags: ManifestEntry.Flags = []
        try Lister.list(path: scratch.sub("a.car"), keyring: keys.keyring) { if $0.path == "crm/ledger.db" { flags = $0.flags } }
        #expect(flags == .changedWhileRead)
        let report = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring)
        #expect(report.notices.map(\.path) == ["crm/ledger.db"])
    }

    /// Issue 15, input 4: one name that is not UTF-8 (Latin-1 from an old Windows share) aborted the
    /// whole archive and was shown with U+FFFD. Names are bytes: such names are archived, listed
    /// (`\xfe` and `\xff` differ; `pathHex` in JSON), restored exactly, and read by the independent decoder.
    @Test func namesThatAreNotUTF8AreArchivedAndRestoredExactly() throws {
        let scratch = try Scratch()
        let keyring = scratch.sub("keys")
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        let crm = scratch.sub("src/crm")
        try FileManager.default.createDirectory(atPath: crm, withIntermediateDirectories: true)
        try TreeBuilder.write("\(crm)/good.csv", "ok\n")
        func cPath(_ parts: [UInt8]) -> [CChar] { parts.map { CChar(bitPattern: $0) } + [0] }
        let base = Array("\(crm)/".utf8)
        for byte: UInt8 in [0xFE, 0xFF] {
            let fd = open(cPath(base + Array("Kunde-".utf8) + [byte] + Array(".pdf".utf8)), O_WRONLY | O_CREAT, 0o644)
            #expect(fd >= 0)
            _ = [byte].withUnsafeBytes { write(fd, $0.baseAddress, 1) }
            close(fd)
        }
        // A directory with a Latin-1 name, a file in it, and a symlink whose target is Latin-1 too.
        #expect(mkdir(cPath(base + Array("Akte M".utf8) + [0xFC] + Array("ller".utf8)), 0o755) == 0)
        let inner = open(cPath(base + Array("Akte M".utf8) + [0xFC] + Array("ller/brief.txt".utf8)), O_WRONLY | O_CREAT, 0o644)
        close(inner)
        #expect(symlink(cPath(Array("Kunde-".utf8) + [0xFE] + Array(".pdf".utf8)), cPath(base + Array("link".utf8))) == 0)

        let result = try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("a.car"), "--json", crm])
        #expect(result.status == 0, "\(result.stderr)")
        let list = try CLI.run(["list", "--keyring", keyring, scratch.sub("a.car")])
        #expect(list.stdout.contains("crm/Kunde-\\xfe.pdf") && list.stdout.contains("crm/Kunde-\\xff.pdf"), "\(list.stdout)")
        #expect(list.stdout.contains("crm/Akte M\\xfcller/brief.txt"))
        #expect(list.stdout.contains("crm/link -> Kunde-\\xfe.pdf"))
        let json = try CLI.run(["list", "--keyring", keyring, "--json", scratch.sub("a.car")])
        let rows = json.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(rows.contains { $0["pathHex"] as? String == Array("crm/Kunde-".utf8).hex + "fe" + Array(".pdf".utf8).hex && $0["path"] == nil })
        #expect(rows.contains { $0["linkHex"] as? String == Array("Kunde-".utf8).hex + "fe" + Array(".pdf".utf8).hex })
        #expect(try CLI.run(["restore", "--keyring", keyring, scratch.sub("a.car"), "--to", scratch.sub("out")]).status == 0)
        try FidelityTests().compare(scratch.sub("src"), scratch.sub("out"), owners: false)
        let decoder = FidelityTests.support.replacingOccurrences(of: "/Support", with: "/Interop/decode.py")
        let decoded = try CLI.run([decoder, "--extract", scratch.sub("a.car"), "--keyring", keyring, "--to", scratch.sub("dec")],
                                  executable: "/usr/bin/python3")
        #expect(decoded.status == 0, "\(decoded.stdout)\(decoded.stderr)")
        try FidelityTests().compare(scratch.sub("src"), scratch.sub("dec"), owners: false)
    }

    /// Issue 15, input 8: GNU tar and Python's tarfile read the pax time of a pre-1970 file with a
    /// fraction one second early, as libarchive wrote it. Version 2 writes the standard form, which
    /// Python's tarfile (a stock reader) reads right; coldarchive reads it right too.
    @Test func preEpochTimesAreWrittenTheWayStockReadersReadThem() throws {
        #expect(TarWriter.paxTime(-473_385_600, 500_000_000) == (-473_385_599, 500_000_000))
        #expect(TarWriter.timeFromPax(-473_385_599, 500_000_000) == (-473_385_600, 500_000_000))
        #expect(TarWriter.paxTime(-2, 250_000_000) == (-1, 750_000_000))
        #expect(TarWriter.paxTime(5, 250_000_000) == (5, 250_000_000))
        // The record libarchive prints for it, read by Python's tarfile.
        var out: [UInt8] = []
        let writer = try TarWriter(version: 2) { out += Array($0) }
        var entry = ManifestEntry(kind: .file, path: "old.txt", mode: 0o644, mtime: -473_385_600, mtimeNanoseconds: 500_000_000,
                                  size: 0, contentHash: ManifestEntry.zeroHash, linkTarget: "")
        entry.userName = "root"
        try writer.writeHeader(entry)
        try writer.finish()
        let scratch = try Scratch()
        try TreeBuilder.write(scratch.sub("t.tar"), bytes: out)
        let python = try CLI.run(["-c", "import tarfile; print(repr(tarfile.open('\(scratch.sub("t.tar"))').getmember('old.txt').mtime))"],
                                 executable: "/usr/bin/python3")
        #expect(python.stdout == "-473385599.5\n", "\(python.stderr)")
        // A time in the last second of 1969 cannot be stated with its fraction: stored whole, with a warning.
        let keys = try TestKeys(in: scratch)
        try FileManager.default.createDirectory(atPath: scratch.sub("src/crm"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("src/crm/edge.txt"), "x")
        setTime(scratch.sub("src/crm/edge.txt"), seconds: -1, nanoseconds: 250_000_000)
        let report = try ArchiveCreator.create(CreateOptions(sources: [scratch.sub("src/crm")], output: scratch.sub("a.car")),
                                               signer: keys.signer, recipients: keys.recipients)
        #expect(report.warnings.map(\.kind) == [.timeRounded])
        _ = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring)
        var st = stat()
        #expect(lstat(scratch.sub("out/crm/edge.txt"), &st) == 0)
        #expect(st.st_mtim.tv_sec == -1 && st.st_mtim.tv_nsec == 0)
    }
}

/// What gets archived is the user's to choose (issue 15): `--exclude`, `--exclude-from`,
/// `--one-file-system`, recorded in the encrypted source description.
@Suite struct ExcludeTests {
    @Test func excludePatternsLeaveOutNamesAndPathsAndAreRecorded() throws {
        let scratch = try Scratch()
        let keyring = scratch.sub("keys")
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        let crm = scratch.sub("src/crm")
        for dir in ["tickets/cache", "tmp/a", "exports", "cache"] {
            try FileManager.default.createDirectory(atPath: "\(crm)/\(dir)", withIntermediateDirectories: true)
        }
        for file in ["tickets/T-1.json", "tickets/T-1.json.tmp", "tickets/cache/x", "tmp/a/y", "tmp/keep.txt", "exports/e.csv",
                     "cache/z", "notes.tmp", "exports/cache"] {
            try TreeBuilder.write("\(crm)/\(file)", file)
        }
        try TreeBuilder.write(scratch.sub("excludes"), "# build and scratch space\n\ncrm/tmp/*\r\n*.tmp\n")
        let result = try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("a.car"), "--exclude", "cache",
                                  "--exclude-from", scratch.sub("excludes"), crm])
        #expect(result.status == 0, "\(result.stderr)")
        let keys = try Keyring(directory: keyring)
        var paths: [String] = []
        try Lister.list(path: scratch.sub("a.car"), keyring: keys) { paths.append($0.path) }
        // 'cache' (a name) goes wherever it is, file or directory; 'crm/tmp/*' only there, so the
        // directory crm/tmp stays with nothing in it; '*.tmp' by name.
        #expect(paths == ["crm", "crm/exports", "crm/exports/e.csv", "crm/tickets", "crm/tickets/T-1.json", "crm/tmp"])
        let description = try #require(try Lister.sourceDescription(path: scratch.sub("a.car"), keyring: keys))
        #expect(description.exclude == ["cache", "crm/tmp/*", "*.tmp"])
        #expect(description.oneFileSystem == false)
        #expect(description.sources.map(\.origin) == [crm])
    }

    @Test(.enabled(if: FidelityTests.isRoot)) func oneFileSystemKeepsTheMountPointButNotWhatIsMountedThere() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let crm = scratch.sub("src/crm")
        try FileManager.default.createDirectory(atPath: "\(crm)/mnt", withIntermediateDirectories: true)
        try TreeBuilder.write("\(crm)/a.csv", "a")
        let mount = try CLI.run(["-t", "tmpfs", "-o", "size=1m", "coldarchive-test", "\(crm)/mnt"], executable: "/usr/bin/mount")
        try #require(mount.status == 0, "mount: \(mount.stderr)")
        defer { _ = try? CLI.run(["\(crm)/mnt"], executable: "/usr/bin/umount") }
        try TreeBuilder.write("\(crm)/mnt/other-fs.txt", "b")
        func paths(oneFileSystem: Bool, _ name: String) throws -> [String] {
            var options = CreateOptions(sources: [crm], output: scratch.sub(name))
            options.oneFileSystem = oneFileSystem
            _ = try ArchiveCreator.create(options, signer: keys.signer, recipients: keys.recipients)
            var out: [String] = []
            try Lister.list(path: scratch.sub(name), keyring: keys.keyring) { out.append($0.path) }
            return out
        }
        #expect(try paths(oneFileSystem: false, "all.car") == ["crm", "crm/a.csv", "crm/mnt", "crm/mnt/other-fs.txt"])
        #expect(try paths(oneFileSystem: true, "one.car") == ["crm", "crm/a.csv", "crm/mnt"])
        #expect(try Lister.sourceDescription(path: scratch.sub("one.car"), keyring: keys.keyring)?.oneFileSystem == true)
    }
}

/// Issue 16, input 5: with a key, `verify --deep` names the files each damaged chunk holds (format v2's
/// `tar_offset`s). The truth is taken from the decrypted chunks themselves, before the damage: a file
/// is in a chunk when a piece of its (incompressible, unique) content is.
@Suite struct DamagedChunkFilesTests {
    @Test func eachDamagedChunkNamesTheFilesItHolds() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let crm = scratch.sub("src/crm")
        try FileManager.default.createDirectory(atPath: crm, withIntermediateDirectories: true)
        var contents: [String: [UInt8]] = [:]
        for i in 0..<12 {
            let bytes = TreeBuilder.noise(5000 + 997 * i, seed: UInt64(100 + i))
            contents["crm/f\(String(format: "%02d", i)).bin"] = bytes
            try TreeBuilder.write("\(crm)/f\(String(format: "%02d", i)).bin", bytes: bytes)
        }
        let path = scratch.sub("a.car")
        _ = try ArchiveCreator.write(to: path, signer: keys.signer, recipients: keys.recipients, label: nil, sources: ["crm"],
                                     compressionLevel: 3, chunkRawSize: 4096, workers: 2, now: Date()) { content in
            let walker = SourceWalker(content: content)
            try walker.add(source: crm, as: "crm")
            return (walker.entryCount, walker.contentBytes)
        }
        // The truth: each data chunk's plaintext, searched for 64-byte pieces of every file.
        let archive = try ArchiveFile(path: path)
        let cipher = try archive.unlock(with: keys.keyring)
        let opener = try ChunkOpener(cipher: cipher, chunkRawSize: 4096, totals: archive.totals)
        let cursor = archive.chunkTable()
        let pool = archive.sealedPool(keep: 1)
        var windows: [Data: String] = [:]
        for (name, bytes) in contents {
            for start in stride(from: 0, to: bytes.count - 32, by: 16) { windows[Data(bytes[start..<start + 32])] = name }
        }
        var truth: [UInt64: Set<String>] = [:]
        while let chunk = try archive.readChunk(cursor, pool: pool), chunk.index < archive.totals.manifestFirstChunk {
            let raw = Data(try opener.open(chunk).toArray())
            for start in 0..<max(0, raw.count - 32) {
                if let name = windows[raw[start..<start + 32]] { truth[chunk.index, default: []].insert(name) }
            }
        }
        // Damage three data chunks, then ask.
        var offsets: [UInt64] = []
        let all = archive.chunkTable()
        while let (_, offset, _) = try all.next() { offsets.append(offset) }
        let picked: [UInt64] = [2, 9, archive.totals.manifestFirstChunk / 2]
        try #require(Set(picked).count == 3 && picked.allSatisfy { $0 < archive.totals.manifestFirstChunk - 1 })
        for index in picked { try flipBit(path, at: offsets[Int(index)] + 20) }
        let damaged = try Verifier.damagedChunks(path: path, trusting: [keys.signer.publicKey])
        #expect(damaged.map(\.index) == picked.sorted())
        let named = Verifier.identifyFiles(in: damaged, path: path, keyring: keys.keyring)
        for chunk in named {
            let files = Set(try #require(chunk.files, "\(chunk.filesUnknown ?? "")"))
            let expected = truth[chunk.index] ?? []
            #expect(!expected.isEmpty, "chunk \(chunk.index) holds no file content: the test would prove nothing")
            #expect(expected.isSubset(of: files), "chunk \(chunk.index): \(files) misses \(expected.subtracting(files))")
            // Besides those, at most the entry whose header alone lies at the chunk's edge.
            #expect(files.count <= expected.count + 1, "chunk \(chunk.index): \(files) against \(expected)")
        }
    }
}

/// Found by a new user's review of format 2 (2026-11-29), each a test.
@Suite struct FormatTwoReviewTests {
    func keyring(_ scratch: Scratch) throws -> String {
        let keyring = scratch.sub("keys")
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        return keyring
    }

    func cPath(_ bytes: [UInt8]) -> [CChar] { bytes.map { CChar(bitPattern: $0) } + [0] }

    /// Attribute names tar cannot carry exactly (a space, a newline, '%', bytes that are not UTF-8)
    /// made an archive that verified keylessly but could never be restored, with exit 0. Now each is
    /// left out with a warning (exit 4), and the archive restores.
    @Test func attributeNamesTarCannotCarryAreReportedAndTheArchiveRestores() throws {
        let scratch = try Scratch()
        let keyring = try keyring(scratch)
        let crm = scratch.sub("src/crm")
        try FileManager.default.createDirectory(atPath: crm, withIntermediateDirectories: true)
        try TreeBuilder.write("\(crm)/f", "a\n")
        for name in ["user.sp ace", "user.a\nb", "user.pct%41"] {
            let r = try CLI.run(["-n", name, "-v", "v", "\(crm)/f"], executable: "/usr/bin/setfattr")
            try #require(r.status == 0, "\(r.stderr)")
        }
        let latin1 = try CLI.run(["-c", "setfattr -n $'user.l\\xfe' -v v '\(crm)/f'"], executable: "/bin/bash")
        try #require(latin1.status == 0, "\(latin1.stderr)")
        try FidelityTests().setxattr("\(crm)/f", "user.kept", "yes")
        let result = try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("a.car"), "--json", crm])
        #expect(result.status == 4, "\(result.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let kinds = (json?["warnings"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
        #expect(kinds == Array(repeating: "attributes-not-read", count: 4))
        #expect(result.stderr.contains("user.l\\xfe"), "\(result.stderr)")
        #expect(try CLI.run(["restore", "--keyring", keyring, scratch.sub("a.car"), "--to", scratch.sub("out")]).status == 0)
        let get = try CLI.run(["-d", "-m", "-", "\(scratch.sub("out"))/crm/f"], executable: "/usr/bin/getfattr")
        #expect(get.stdout.contains("user.kept=\"yes\"") && !get.stdout.contains("user.sp"), "\(get.stdout)")
    }

    /// Command-line paths are bytes too: a Latin-1 source, output and exclude pattern work exactly.
    @Test func commandLinePathsThatAreNotUTF8AreTakenExactly() throws {
        let scratch = try Scratch()
        let keyring = try keyring(scratch)
        let archiv = Array(scratch.sub("Archiv-").utf8) + [0xE4]
        #expect(mkdir(cPath(archiv), 0o755) == 0)
        for name in [Array("Kunde-".utf8) + [0xFE] + Array(".pdf".utf8), Array("Kunde-".utf8) + [0xFF] + Array(".pdf".utf8), Array("ok.csv".utf8)] {
            let fd = open(cPath(archiv + [0x2F] + name), O_WRONLY | O_CREAT, 0o644)
            close(fd)
        }
        let source = NameCodec.decode(archiv)
        let out = NameCodec.decode(Array(scratch.sub("out").utf8) + [0xE9] + Array(".car".utf8))
        // The binary gets the raw bytes, as a shell passes them (Process passes each String's UTF-8,
        // which for a NameCodec string would be the escape: so these go through a shell script).
        let script = scratch.sub("run.sh")
        let quoted = { (s: String) in "$'" + NameCodec.bytes(s).map { String(format: "\\x%02x", $0) }.joined() + "'" }
        try TreeBuilder.write(script, "exec \(CLI.executable) create --keyring \(keyring) --out \(quoted(out)) --exclude $'Kunde-?.pdf' \(quoted(source))\n")
        let result = try CLI.run([script], executable: "/bin/bash")
        #expect(result.status == 0, "\(result.stderr)")
        var st = stat()
        #expect(NameCodec.withCString(out) { stat($0, &st) } == 0)
        var paths: [String] = []
        try Lister.list(path: out, keyring: try Keyring(directory: keyring)) { paths.append($0.path) }
        #expect(paths == [NameCodec.decode(Array("Archiv-".utf8) + [0xE4]), NameCodec.decode(Array("Archiv-".utf8) + [0xE4] + Array("/ok.csv".utf8))])
        // A missing exclude file is an I/O error (exit 3), not a usage error.
        let missing = try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("b.car"), "--exclude-from", scratch.sub("nope"), scratch.sub("src")])
        #expect(missing.status == 3, "\(missing.stderr)")
    }
}

/// `list` writes its lines byte by byte (issue 17: it spent its time in date formatters and
/// `String(format:)`); its times must read as Foundation's ISO 8601 formatter says, across centuries,
/// leap days and negative times.
@Suite struct ListFormattingTests {
    @Test func listedTimesAreExactISO8601() throws {
        let scratch = try Scratch()
        let keyring = scratch.sub("keys")
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        let crm = scratch.sub("src/crm")
        try FileManager.default.createDirectory(atPath: crm, withIntermediateDirectories: true)
        // (ext4 keeps times from 1901-12-13 on: earlier ones are clamped by the file system.)
        let times: [(Int, Int)] = [(-2_145_916_800, 0), (-2_077_704_000, 1), (4_107_542_400, 0), (-473_385_600, 500_000_000), (-1, 0), (0, 0),
                                   (951_782_400, 999_999_999), (4_107_542_399, 999_999_999), (1_769_903_999, 123_456_789)]
        for (i, (s, ns)) in times.enumerated() {
            let path = "\(crm)/t\(i)"
            try TreeBuilder.write(path, "\(i)")
            var t = [timespec(tv_sec: s, tv_nsec: ns), timespec(tv_sec: s, tv_nsec: ns)]
            #expect(utimensat(AT_FDCWD, path, &t, 0) == 0)
        }
        let create = try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("a.car"), crm])
        #expect(create.status == 0, "\(create.stderr)")
        let text = try CLI.run(["list", "--keyring", keyring, scratch.sub("a.car")]).stdout
        let json = try CLI.run(["list", "--json", "--keyring", keyring, scratch.sub("a.car")]).stdout
        let formatter = ISO8601DateFormatter()
        for (i, (s, ns)) in times.enumerated() {
            let expected = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(s))).dropLast() + "." + String(format: "%09d", ns) + "Z"
            #expect(text.contains(" \(expected) ") && text.contains("crm/t\(i)\n"), "\(expected)")
            #expect(json.contains("\"mtime\":\"\(expected)\",\"path\":\"crm/t\(i)\""), "\(expected)")
        }
    }
}
