import Foundation
import Testing
@testable import ColdArchive

/// Create-side hostility: a local user who can write into a source directory swaps a file for a
/// symlink (to make a root-run create read a secret) or for a FIFO (to hang it) between the walk's
/// listing and its open; sockets and devices in a source are skipped with a warning.
@Suite struct HostileSourceTests {
    /// Archives `root` as `crm` with the walker's swap hook set, and returns the warnings.
    func archive(_ root: String, to output: String, keys: TestKeys, swap: @escaping (String) -> Void) throws -> [SourceWarning] {
        var warnings: [SourceWarning] = []
        _ = try ArchiveCreator.write(to: output, signer: keys.signer, recipients: keys.recipients, label: nil, sources: ["crm"],
                                     compressionLevel: 3, chunkRawSize: FormatV1.defaultChunkRawSize, workers: 2, now: Date()) { content in
            let walker = SourceWalker(content: content)
            walker.beforeOpeningChild = swap
            try walker.add(source: root, as: "crm")
            warnings = walker.warnings
            return (walker.entryCount, walker.contentBytes)
        }
        return warnings
    }

    /// `scratch/src` holding `files` (name: content).
    func source(_ scratch: Scratch, _ files: [String: String]) throws -> String {
        let root = scratch.sub("src")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for (name, content) in files { try TreeBuilder.write("\(root)/\(name)", content) }
        return root
    }

    func restoredNames(_ archive: String, keys: TestKeys, scratch: Scratch) throws -> [String] {
        _ = try Restorer.restore(archivePath: archive, to: scratch.sub("out"), keyring: keys.keyring)
        return try FileManager.default.contentsOfDirectory(atPath: scratch.sub("out/crm")).sorted()
    }

    @Test func aFileSwappedForASymlinkDuringCreateIsNotFollowed() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let root = try source(scratch, ["invoice.pdf": "an invoice"])
        try TreeBuilder.write(scratch.sub("shadow"), "root's secret", mode: 0o600)
        let warnings = try archive(root, to: scratch.sub("a.car"), keys: keys) { path in
            guard path.hasSuffix("/invoice.pdf") else { return }
            unlink(path)
            symlink(scratch.sub("shadow"), path)
        }
        #expect(warnings == [SourceWarning(.changedWhileArchived, path: "\(root)/invoice.pdf", "changed or vanished while it was archived; skipped")])
        #expect(try restoredNames(scratch.sub("a.car"), keys: keys, scratch: scratch) == [])
    }

    @Test func aFileSwappedForAFIFODuringCreateIsSkipped() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let root = try source(scratch, ["orders.csv": "id\n1\n", "tickets.csv": "id\n7\n"])
        let warnings = try archive(root, to: scratch.sub("a.car"), keys: keys) { path in
            guard path.hasSuffix("/orders.csv") else { return }
            unlink(path)
            mkfifo(path, 0o644)
        }
        #expect(warnings == [SourceWarning(.skippedSpecialFile, path: "\(root)/orders.csv", "is a device, FIFO or socket; skipped")])
        #expect(try restoredNames(scratch.sub("a.car"), keys: keys, scratch: scratch) == ["tickets.csv"])
    }

    /// A socket and a FIFO that are in the source from the start (devices need root to make; they
    /// take the same path, by their type in the directory listing).
    @Test func socketsAndFIFOsInASourceAreSkippedWithAWarning() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let root = try source(scratch, ["a.csv": "a"])
        #expect(mkfifo("\(root)/pipe", 0o644) == 0)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let socketPath = "\(root)/sock"
        #expect(socketPath.utf8.count < MemoryLayout.size(ofValue: address.sun_path))
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in socketPath.utf8.enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        let warnings = try archive(root, to: scratch.sub("a.car"), keys: keys) { _ in }
        #expect(warnings.map(\.description).sorted() == ["'\(root)/pipe' is a device, FIFO or socket; skipped",
                                                         "'\(root)/sock' is a device, FIFO or socket; skipped"])
        #expect(warnings.allSatisfy { $0.kind == .skippedSpecialFile && $0.archiveIsInexact })
        #expect(try restoredNames(scratch.sub("a.car"), keys: keys, scratch: scratch) == ["a.csv"])
    }

    /// `create --out src/self.car src` (issue 15, input 3): the archive being written lives inside the
    /// source; it is named in a warning and never archived, nor is the import workspace beside it.
    @Test func theArchiveBeingWrittenInsideASourceIsNotArchived() throws {
        let scratch = try Scratch()
        let root = try source(scratch, ["orders.csv": "id\n1\n"])
        let keyring = scratch.sub("keys")
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        let created = try CLI.run(["create", "--keyring", keyring, "--out", "\(root)/self.car", root])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stderr.contains("is the archive being written ('\(root)/self.car'); not archived"), "\(created.stderr)")
        let list = try CLI.run(["list", "\(root)/self.car", "--keyring", keyring])
        #expect(list.status == 0)
        #expect(list.stdout.contains("src/orders.csv"))
        #expect(!list.stdout.contains("self.car"), "\(list.stdout)")

        // The same with a vendor export, whose workspace is made beside the archive, inside the source.
        let keys = try TestKeys(in: scratch, name: "library-keys")
        try ImportTests().python("""
            import zipfile
            with zipfile.ZipFile('\(scratch.sub("export.zip"))', 'w') as z:
                z.writestr('Account.csv', 'Id,Name\\n001,Acme\\n')
            """)
        var options = CreateOptions(sources: [root], output: "\(root)/with-import.car")
        options.imports = [scratch.sub("export.zip")]
        let report = try ArchiveCreator.create(options, signer: keys.signer, recipients: keys.recipients)
        #expect(report.warnings.contains { $0.kind == .ownFile && $0.detail == "is the import workspace of this run; not archived" },
                "\(report.warnings)")
        #expect(!report.isInexact)
        var paths: [String] = []
        try Lister.list(path: "\(root)/with-import.car", keyring: keys.keyring) { paths.append($0.path) }
        #expect(paths.sorted() == ["export", "export/Account.csv", "src", "src/orders.csv", "src/self.car", "src/self.car.minisig"])
    }
}
