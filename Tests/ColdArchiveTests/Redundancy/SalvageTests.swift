import Foundation
import Testing
@testable import ColdArchive

/// `restore --salvage` (issue 20): what is intact comes back, checked; what is not is named.
@Suite struct SalvageTests {
    /// An archive of 30 incompressible files of 3 000 bytes and a hardlink, in 4 KiB chunks; the
    /// manifest's entries and where each ends in the tar stream.
    struct Damaged {
        let scratch: Scratch
        let keys: TestKeys
        let source: String
        let path: String
        let file: ArchiveFile

        init() throws {
            scratch = try Scratch()
            keys = try TestKeys(in: scratch)
            source = scratch.sub("src/crm")
            try FileManager.default.createDirectory(atPath: "\(source)/docs", withIntermediateDirectories: true)
            for i in 0..<30 { try TreeBuilder.write(String(format: "\(source)/docs/f%02d.bin", i), bytes: TreeBuilder.noise(3_000, seed: UInt64(i + 1))) }
            try FileManager.default.linkItem(atPath: "\(source)/docs/f10.bin", toPath: "\(source)/docs/f29-link.bin")
            path = scratch.sub("a.car")
            var options = CreateOptions(sources: [source], output: path)
            options.chunkRawSize = 4096
            _ = try ArchiveCreator.create(options, signer: keys.signer, recipients: keys.recipients)
            file = try ArchiveFile(path: path)
        }

        /// The paths whose tar bytes touch data chunk `index` (and hardlinks to such files), from the manifest.
        func touching(_ index: UInt64) throws -> Set<String> {
            let entries = try Lister.entries(path: path, keyring: keys.keyring).filter { $0.kind != .deleted }
            let size = UInt64(file.header.chunkRawSize)
            var lost = Set<String>()
            for (i, e) in entries.enumerated() where e.kind != .directory {
                let end = i + 1 < entries.count ? entries[i + 1].tarOffset : file.totals.tarBytes
                if e.tarOffset / size <= index && index <= (end - 1) / size { lost.insert(e.path) }
                if e.kind == .hardlink && lost.contains(e.linkTarget) { lost.insert(e.path) }
            }
            return lost
        }

        /// The data chunk holding the middle of `name`'s content.
        func chunk(of name: String) throws -> UInt64 {
            let entry = try #require(try Lister.entries(path: path, keyring: keys.keyring).first { $0.path == name })
            return (entry.tarOffset + 512 + entry.size / 2) / UInt64(file.header.chunkRawSize)
        }

        func damage(chunk index: UInt64) throws {
            let cursor = file.chunkTable()
            while let (i, offset, _) = try cursor.next() {
                if i == index { try flipBit(path, at: offset + 2) }
            }
        }
    }

    @Test func everythingIntactIsRestoredAndCheckedAndTheRestIsNamed() throws {
        let d = try Damaged()
        // The chunk of the file a hardlink far from it names: the link is lost with it.
        let chunk = try d.chunk(of: "crm/docs/f10.bin")
        let expected = try d.touching(chunk)
        #expect(expected.contains("crm/docs/f10.bin") && expected.contains("crm/docs/f29-link.bin") && expected.count < 6, "\(expected)")
        try d.damage(chunk: chunk)
        let report = try Salvage.restore(archivePath: d.path, to: d.scratch.sub("out"), keyring: d.keys.keyring)
        let summary = try #require(report.salvage)
        #expect(summary.damagedChunks.map(\.index) == [chunk])
        #expect(Set(summary.lost.map(\.path)) == expected)
        #expect(summary.lost.allSatisfy { $0.reason == "its bytes lie in damaged chunk \(chunk)" || $0.reason.hasPrefix("it links to 'crm/docs/f10.bin'") })
        // Every other file is back, byte for byte; none of the lost ones exists.
        for i in 0..<30 {
            let name = String(format: "crm/docs/f%02d.bin", i)
            let restored = d.scratch.sub("out/\(name)")
            if expected.contains(name) {
                #expect(!FileManager.default.fileExists(atPath: restored), "\(name)")
            } else {
                #expect(FileManager.default.contents(atPath: restored) == FileManager.default.contents(atPath: d.scratch.sub("src/\(name)")), "\(name)")
            }
        }
        // The list is left in the target.
        let list = try String(contentsOfFile: try #require(summary.listFile), encoding: .utf8)
        #expect(list.contains("# damaged chunks: \(chunk) (bytes "))
        for name in expected { #expect(list.contains("\(name)\t")) }
    }

    @Test func aDamagedManifestIsRefusedAndNothingIsWritten() throws {
        let d = try Damaged()
        try d.damage(chunk: d.file.totals.manifestFirstChunk)
        expectError({ if case .inconsistent(let what) = $0 { what.hasPrefix("the manifest itself is damaged (chunk \(d.file.totals.manifestFirstChunk)") } else { false } }) {
            _ = try Salvage.restore(archivePath: d.path, to: d.scratch.sub("out"), keyring: d.keys.keyring)
        }
        #expect(!FileManager.default.fileExists(atPath: d.scratch.sub("out")))
    }

    @Test func theCommandSaysItLoudlyAndExitsOne() throws {
        let d = try Damaged()
        let intact = try CLI.run(["restore", d.path, "--salvage", "--keyring", d.keys.directory, "--to", d.scratch.sub("intact")])
        #expect(intact.status == 0, "\(intact.stderr)")
        try d.damage(chunk: 3)
        let plain = try CLI.run(["restore", d.path, "--keyring", d.keys.directory, "--to", d.scratch.sub("plain")])
        #expect(plain.status == 1 && !FileManager.default.fileExists(atPath: d.scratch.sub("plain")))
        let salvaged = try CLI.run(["restore", d.path, "--salvage", "--keyring", d.keys.directory, "--to", d.scratch.sub("out")])
        #expect(salvaged.status == 1)
        #expect(salvaged.stderr.contains("SALVAGE of a damaged archive: 1 damaged chunk (3);"), "\(salvaged.stderr)")
        for name in try d.touching(3) { #expect(salvaged.stderr.contains("not restored: '\(name)': its bytes lie in damaged chunk 3")) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: d.scratch.sub("out")).contains { $0.hasPrefix("coldarchive-salvage-") })
        #expect(try CLI.run(["restore", d.path, "--salvage", "--include", "x", "--keyring", d.keys.directory, "--to", d.scratch.sub("x")]).status == 2)
    }
}
