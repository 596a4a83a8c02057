import Foundation
#if !FUZZ_STANDALONE
@testable import ColdArchive
#endif

/// One fuzzing entry point over every parser that reads untrusted bytes. The first byte picks the
/// target; the rest is the input. `make fuzz` compiles this file together with the library under
/// libFuzzer (-D FUZZ_STANDALONE); the test suite replays the committed corpus through it.
enum FuzzHarness {
    static let vectors = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Vectors").path

    /// The vector's keyring, copied once with private modes so its keys can open the vector.
    nonisolated(unsafe) static var keyring: Keyring? = {
        let prefix = "coldarchive-fuzz-keys-"
        // Copies left by earlier runs whose process is gone (the copy lives as long as its process).
        for name in (try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? [] where name.hasPrefix(prefix) {
            if let pid = Int32(name.dropFirst(prefix.count)), kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + name)
            }
        }
        let copy = NSTemporaryDirectory() + prefix + "\(getpid())"
        try? FileManager.default.removeItem(atPath: copy)
        return try? copyVectorKeyring(to: copy)
    }()

    /// Copies the vector's keyring by content (not `copyItem`, which also copies the owner and fails
    /// for a user who does not own the checkout), giving secret key files mode 0600 (git keeps no modes).
    static func copyVectorKeyring(to copy: String) throws -> Keyring {
        let source = "\(vectors)/keys"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        for path in try FileManager.default.subpathsOfDirectory(atPath: source).sorted() {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: "\(source)/\(path)", isDirectory: &isDirectory)
            if isDirectory.boolValue {
                try FileManager.default.createDirectory(atPath: "\(copy)/\(path)", withIntermediateDirectories: true)
                continue
            }
            let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(source)/\(path)"))
            guard FileManager.default.createFile(atPath: "\(copy)/\(path)", contents: bytes,
                                                 attributes: [.posixPermissions: path.hasSuffix(".key") ? 0o600 : 0o644]) else {
                throw CocoaError(.fileWriteUnknown)
            }
        }
        return try Keyring(directory: copy)
    }


    /// Runs one input; returns normally whatever the input (errors are the expected outcome).
    static func run(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let input = Array(bytes.dropFirst())
        switch selector % 4 {
        case 0: openPath(input)
        case 1: headerAndTrailer(input)
        case 2: tarStream(input)
        default: manifest(input)
        }
    }

    /// The whole open path: structure, signature, chunk hashes, unwrap, manifest, payload.
    static func openPath(_ input: [UInt8]) {
        let scratchFile = NSTemporaryDirectory() + "coldarchive-fuzz-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).car"
        defer { unlink(scratchFile) }
        guard (try? Data(input).write(to: URL(fileURLWithPath: scratchFile))) != nil,
              let archive = try? ArchiveFile(path: scratchFile) else { return }
        _ = archive.summary
        guard let keyring, let trusted = try? keyring.trustedSigningKeys() else { return }
        _ = try? archive.checkSignature(trusting: trusted)
        _ = try? archive.checkChunkHashes(workers: 1)
        guard let cipher = try? archive.unlock(with: keyring) else { return }
        _ = try? archive.checkManifest(cipher: cipher)
        _ = try? archive.readPayload(cipher: cipher, workers: 1, sink: nil)
    }

    /// The fixed structures on their own: prelude + header, recipient block, trailer totals, footer.
    static func headerAndTrailer(_ input: [UInt8]) {
        if input.count >= 16 { _ = try? ArchiveHeader.decode(prelude: Array(input[0..<16]), fields: Array(input[16...])) }
        _ = try? RecipientBlock.decode(input)
        if input.count >= FormatV1.trailerFixedSize { _ = try? TrailerTotals.decode(Array(input.prefix(FormatV1.trailerFixedSize))) }
        if input.count >= FormatV1.footerSize { _ = try? Footer.decode(Array(input.suffix(FormatV1.footerSize))) }
    }

    /// libarchive's tar reader and coldarchive's entry checks, as restore drives them.
    static func tarStream(_ input: [UInt8]) {
        let buffer = ByteBuffer(capacity: input.count)
        _ = input.withUnsafeBytes { buffer.append($0) }
        var given = false
        guard let reader = try? TarReader(source: {
            defer { given = true }
            return given ? nil : buffer
        }) else { return }
        let scratch = ByteBuffer(capacity: 64 << 10)
        var order = EntryOrderCheck()
        for _ in 0..<10_000 {
            guard let header = try? reader.nextEntry() else { return }
            let entry = ManifestEntry(kind: header.kind, path: header.path, mode: UInt16(header.mode & 0o777), mtime: header.mtime,
                                      mtimeNanoseconds: header.mtimeNanoseconds, size: 0, contentHash: ManifestEntry.zeroHash,
                                      linkTarget: header.linkTarget)
            _ = try? order.check(entry)
            if let parts = try? PathRules.components(of: header.path) {
                _ = PathRules.symlinkEscapes(linkPath: parts, target: header.linkTarget)
            }
            while let n = try? reader.readData(into: scratch.storage), n > 0 {}
        }
    }

    /// The manifest decoder, fed in uneven pieces, and the canonical-order check.
    static func manifest(_ input: [UInt8]) {
        var decoder = ManifestDecoder()
        var order = EntryOrderCheck()
        var offset = 0
        var step = 1
        while offset < input.count {
            let end = min(input.count, offset + step)
            decoder.feed(Array(input[offset..<end]))
            offset = end
            step = step * 3 % 257 + 1
            while let entry = try? decoder.next() { _ = try? order.check(entry) }
        }
        _ = try? decoder.expectEnd()
    }
}

#if FUZZ_STANDALONE
@_cdecl("LLVMFuzzerTestOneInput")
public func coldarchiveFuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    FuzzHarness.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#endif
