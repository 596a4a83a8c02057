import Foundation
import Testing
@testable import ColdArchive

/// `create --import`: vendor exports (ZIP from Python's zipfile and Debian's zip, tar.gz) rewritten
/// as pax, and hostile exports refused whole, with a list, leaving nothing behind.
@Suite struct ImportTests {
    static let python = "/usr/bin/python3"

    func python(_ script: String) throws {
        let result = try CLI.run(["-c", script], executable: Self.python)
        #expect(result.status == 0, "\(result.stderr)")
    }

    func listing(_ archive: String, _ keys: TestKeys) throws -> [String: ManifestEntry] {
        var entries: [String: ManifestEntry] = [:]
        try Lister.list(path: archive, keyring: keys.keyring) { entries[$0.path] = $0 }
        return entries
    }

    @Test func aZipFromPythonsZipfileIsArchivedAndRestores() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let zip = scratch.sub("salesforce-export-2026-11.zip")
        // No directory entries, a nested path, a non-ASCII name, no Unix permissions: as CRM exports come.
        try python("""
            import zipfile
            with zipfile.ZipFile('\(zip)', 'w', zipfile.ZIP_DEFLATED) as z:
                z.writestr('Account.csv', 'Id,Name\\n001,Acme\\n' * 1000)
                z.writestr('Attachments/00P1/scan.pdf', bytes(range(256)) * 40)
                z.writestr('Notes/Zürich – Notiz.txt', 'grüezi')
            """)
        var options = CreateOptions(sources: [], output: scratch.sub("a.car"))
        options.imports = [zip]
        let report = try ArchiveCreator.create(options, signer: keys.signer, recipients: keys.recipients)
        let description = try #require(try Lister.sourceDescription(path: scratch.sub("a.car"), keyring: keys.keyring))
        #expect(description.sources.map(\.name) == ["salesforce-export-2026-11"])
        #expect(description.sources.map(\.kind) == ["import"])
        #expect(description.sources.map(\.origin) == [zip])
        let entries = try listing(scratch.sub("a.car"), keys)
        #expect(entries["salesforce-export-2026-11/Attachments/00P1/scan.pdf"]?.size == 256 * 40)
        #expect(entries["salesforce-export-2026-11/Attachments"]?.kind == .directory)
        _ = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring)
        #expect(try String(contentsOfFile: scratch.sub("out/salesforce-export-2026-11/Notes/Zürich – Notiz.txt"), encoding: .utf8) == "grüezi")
        // The private unpacking directory is gone.
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix(ExportImporter.workspacePrefix) }.isEmpty)
    }

    @Test func aZipFromDebiansZipAndATarGzKeepTheirTreesAndLinks() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let source = try TreeBuilder.crmTree(at: scratch.sub("export"), attachmentBytes: 5000)
        let zip = try CLI.run(["-c", "cd '\(scratch.sub("export"))' && zip -q -r -y '\(scratch.sub("hubspot.zip"))' crm"], executable: "/bin/bash")
        #expect(zip.status == 0, "\(zip.stderr)")
        let tar = try CLI.run(["-c", "tar -czf '\(scratch.sub("dynamics.tar.gz"))' -C '\(scratch.sub("export"))' crm"], executable: "/bin/bash")
        #expect(tar.status == 0, "\(tar.stderr)")
        var options = CreateOptions(sources: [], output: scratch.sub("a.car"))
        options.imports = [scratch.sub("hubspot.zip"), scratch.sub("dynamics.tar.gz")]
        let report = try ArchiveCreator.create(options, signer: keys.signer, recipients: keys.recipients)
        let description = try #require(try Lister.sourceDescription(path: scratch.sub("a.car"), keyring: keys.keyring))
        #expect(description.sources.map(\.name) == ["dynamics", "hubspot"])
        #expect(report.summary.sources.isEmpty)
        _ = try Restorer.restore(archivePath: scratch.sub("a.car"), to: scratch.sub("out"), keyring: keys.keyring)
        for name in ["hubspot", "dynamics"] {
            let restored = try TreeSnapshot(scratch.sub("out/\(name)/crm"))
            let original = try TreeSnapshot(source)
            #expect(Set(restored.nodes.keys) == Set(original.nodes.keys), "\(name)")
            #expect(restored["tickets/latest.json"]?.link == "T-1001.json", "\(name)")
            #expect(restored["exports/customers.csv"]?.content == original["exports/customers.csv"]?.content, "\(name)")
        }
    }

    @Test func aHostileZipIsRefusedWholeWithTheListOfUnsafeEntries() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let zip = scratch.sub("evil.zip")
        try python("""
            import zipfile
            with zipfile.ZipFile('\(zip)', 'w') as z:
                z.writestr('ok.csv', 'fine')
                z.writestr('../../escape.txt', 'x')
                z.writestr('/tmp/absolute.txt', 'x')
                link = zipfile.ZipInfo('etc-link')
                link.external_attr = (0o120777 << 16)
                link.create_system = 3
                z.writestr(link, '/etc')
            """)
        var options = CreateOptions(sources: [], output: scratch.sub("a.car"))
        options.imports = [zip]
        do {
            _ = try ArchiveCreator.create(options, signer: keys.signer, recipients: keys.recipients)
            Issue.record("a hostile export was archived")
        } catch let error as UnsafeExportError {
            #expect(error.kind == .integrity)
            #expect(error.problems.count == 3, "\(error.problems)")
            #expect(error.description.contains("escape.txt") && error.description.contains("absolute.txt"))
            #expect(error.description.contains("etc-link"))
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: scratch.path)
        #expect(!left.contains("a.car"))
        #expect(left.filter { $0.hasPrefix(".") }.isEmpty, "left behind: \(left)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/absolute.txt"))
    }

    @Test func aTarWithDevicesAndFifosIsRefused() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let tar = scratch.sub("export.tar.gz")
        try python("""
            import tarfile, io
            with tarfile.open('\(tar)', 'w:gz') as t:
                data = b'a,b\\n'
                info = tarfile.TarInfo('crm/ok.csv'); info.size = len(data); t.addfile(info, io.BytesIO(data))
                for name, kind in [('crm/pipe', tarfile.FIFOTYPE), ('crm/tty', tarfile.CHRTYPE), ('crm/disk', tarfile.BLKTYPE)]:
                    info = tarfile.TarInfo(name); info.type = kind; t.addfile(info)
            """)
        var options = CreateOptions(sources: [], output: scratch.sub("a.car"))
        options.imports = [tar]
        #expect(throws: UnsafeExportError.self) { try ArchiveCreator.create(options, signer: keys.signer, recipients: keys.recipients) }
        do {
            _ = try ArchiveCreator.create(options, signer: keys.signer, recipients: keys.recipients)
        } catch let error as UnsafeExportError {
            #expect(error.problems.count == 3, "\(error.problems)")
        }
    }

    @Test func importThroughTheBinary() throws {
        let scratch = try Scratch()
        let keyring = scratch.sub("keys")
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        try python("""
            import zipfile
            with zipfile.ZipFile('\(scratch.sub("export.zip"))', 'w') as z:
                z.writestr('Contacts.csv', 'a,b\\n')
                z.writestr('../x', 'x')
            """)
        let refused = try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("a.car"), "--import", scratch.sub("export.zip")])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("1 unsafe entry"))
        #expect(refused.stderr.contains("'..'"))
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("a.car")))
    }
}
