import Foundation
import Testing
@testable import ColdArchive
@testable import ColdArchiveParity

/// Reed–Solomon parity sidecars (issue 20): the only copy rebuilt bit for bit from damage within the
/// budget; damage beyond it named, with nothing changed; parity that is not this file's refused.
@Suite struct ParityTests {
    /// An archive of incompressible data in chunks of 64 KiB (about 100 of them), with 5 % parity.
    struct Protected {
        let scratch: Scratch
        let keys: TestKeys
        let path: String
        let original: [UInt8]
        /// Where each chunk starts and how long it is.
        let chunks: [(offset: UInt64, length: UInt64)]
        let made: Parity.Report

        init(share: String = "5%", dataBytes: Int = 6_600_000, chunkRawSize: UInt32 = 64 << 10,
             maxColumnLength: UInt64 = ParityIndex.maxColumnLength) throws {
            scratch = try Scratch()
            keys = try TestKeys(in: scratch)
            let source = scratch.sub("src")
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            try TreeBuilder.write("\(source)/attachments.bin", bytes: TreeBuilder.noise(dataBytes, seed: 20))
            try TreeBuilder.write("\(source)/customers.csv", "id,name\n1,Ada Lovelace\n2,Grace Hopper\n")
            path = scratch.sub("a.car")
            var options = CreateOptions(sources: [source], output: path, label: "parity test")
            options.chunkRawSize = chunkRawSize
            _ = try ArchiveCreator.create(options, signer: keys.signer, recipients: keys.recipients)
            original = try Self.bytes(path)
            let cursor = try ArchiveFile(path: path).chunkTable()
            var chunks: [(UInt64, UInt64)] = []
            while let (_, offset, record) = try cursor.next() { chunks.append((offset, UInt64(record.sealedLength))) }
            self.chunks = chunks
            made = try Parity.create(for: path, basisPoints: try Parity.basisPoints(share), signingKey: keys.signer,
                                     trusting: [keys.signer.publicKey], verifyFirst: true, workers: 2, maxColumnLength: maxColumnLength)
        }

        static func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
        var trusted: [SigningPublicKey] { [keys.signer.publicKey] }

        func destroy(_ file: String, at offset: UInt64, count: UInt64, seed: UInt64 = 7) throws {
            try Self.overwrite(file, at: offset, count: count, seed: seed)
        }

        /// Overwrites bytes [offset, offset + count) of `file` with other bytes (every one changed).
        static func overwrite(_ file: String, at offset: UInt64, count: UInt64, seed: UInt64 = 7) throws {
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: file))
            defer { try? handle.close() }
            try handle.seek(toOffset: offset)
            let old = try handle.read(upToCount: Int(count)) ?? Data()
            let noise = TreeBuilder.noise(Int(count), seed: seed)
            try handle.seek(toOffset: offset)
            try handle.write(contentsOf: Data(zip(old, noise).map { $0 == $1 ? ~$0 : $1 }))
        }

        func destroyChunks(_ indexes: [Int]) throws {
            for i in indexes { try destroy(path, at: chunks[i].offset, count: chunks[i].length, seed: UInt64(i)) }
        }
    }

    @Test func threePercentOfTheChunksDestroyedAtRandomAreRebuiltFromFivePercentParity() throws {
        let p = try Protected()
        #expect(p.chunks.count >= 100)
        #expect(p.made.overheadPercent <= 6.0, "parity is \(p.made.overheadPercent) %")
        var generator = SplitMix64(seed: 3)
        let lost = Array((0..<p.chunks.count).shuffled(using: &generator).prefix(p.chunks.count * 3 / 100))
        #expect(lost.count == 3)
        try p.destroyChunks(lost)
        #expect(throws: (any Error).self) { try Verifier.verify(path: p.path, trusting: p.trusted) }
        let check = try Parity.check(p.path, trusting: p.trusted)
        #expect(check.damagedSlices > 0 && check.recoverable)
        let report = try Parity.repair(p.path, trusting: p.trusted)
        #expect(try Protected.bytes(p.path) == p.original)
        #expect(report.damagedSlices == check.damagedSlices)
        #expect(report.rebuiltBytes >= lost.map { p.chunks[$0].length }.reduce(0, +))
        // Nothing is left beside it, and an intact archive is left as it is.
        #expect(try FileManager.default.contentsOfDirectory(atPath: p.scratch.path).filter { $0.hasPrefix(".") }.isEmpty)
        #expect(try Parity.repair(p.path, trusting: p.trusted).wasIntact)
    }

    @Test func oneContiguousRunOfThreePercentOfTheChunksIsRebuilt() throws {
        let p = try Protected()
        let first = p.chunks.count / 2
        try p.destroyChunks(Array(first..<(first + 3)))
        _ = try Parity.repair(p.path, trusting: p.trusted)
        #expect(try Protected.bytes(p.path) == p.original)
        // The longest region the report promises is rebuilt too, wherever it lies (here: from byte 0,
        // the prelude, header and recipient block included).
        try p.destroy(p.path, at: 0, count: p.made.contiguousBytesRecoverable)
        #expect(throws: (any Error).self) { try ArchiveFile(path: p.path) }
        _ = try Parity.repair(p.path, trusting: p.trusted)
        #expect(try Protected.bytes(p.path) == p.original)
    }

    @Test func scatteredBitRotInMostChunksIsRebuiltSliceBySlice() throws {
        let p = try Protected()
        let index = try ParityIndex.read(from: try OpenFile.forReading(Parity.sidecarPath(for: p.path)), trusting: p.trusted)
        // One flipped bit in each of `parityCount` different columns of every group: far more chunks damaged
        // than whole-chunk erasures at 5 % could mend, but each flip costs only its own slice.
        var flipped: [UInt64] = []
        for g in 0..<index.slicesPerColumn {
            for j in 0..<index.parityCount {
                let column = (g * index.parityCount + j) % index.columnCount
                let at = UInt64(column) * index.columnLength + UInt64(g * index.sliceSize + 100)
                if at < index.archiveSize { flipped.append(at) }
            }
        }
        for at in flipped { try flipBit(p.path, at: at) }
        let chunksHit = Set(flipped.compactMap { at in p.chunks.firstIndex { $0.offset <= at && at < $0.offset + $0.length } })
        #expect(chunksHit.count * 2 > p.chunks.count, "\(chunksHit.count) of \(p.chunks.count) chunks damaged")
        let report = try Parity.repair(p.path, trusting: p.trusted)
        #expect(report.damagedSlices == flipped.count)
        #expect(try Protected.bytes(p.path) == p.original)
    }

    @Test func damageBeyondTheBudgetIsNamedAndNothingChanges() throws {
        let p = try Protected()
        // One region one column longer than the guarantee: every group loses more than its parity.
        let index = try ParityIndex.read(from: try OpenFile.forReading(Parity.sidecarPath(for: p.path)), trusting: p.trusted)
        let count = UInt64(index.parityCount + 1) * index.columnLength
        try p.destroy(p.path, at: 1000, count: count)
        let damaged = try Protected.bytes(p.path)
        #expect(throws: ParityError.self) { try Parity.repair(p.path, trusting: p.trusted) }
        do {
            _ = try Parity.repair(p.path, trusting: p.trusted)
        } catch let error as ParityError {
            guard case .beyondBudget(let why) = error else { Issue.record("unexpected: \(error)"); return }
            #expect(why.contains("lost more than their \(index.parityCount) parity slices"))
            #expect(why.contains("nothing was changed"))
        }
        #expect(try Protected.bytes(p.path) == damaged)
        #expect(try Parity.check(p.path, trusting: p.trusted).recoverable == false)
        #expect(try FileManager.default.contentsOfDirectory(atPath: p.scratch.path).filter { $0.hasPrefix(".") }.isEmpty)
    }

    @Test func damagedParityIsSeenAndTheRestStillServes() throws {
        let p = try Protected()
        let sidecar = Parity.sidecarPath(for: p.path)
        let index = try ParityIndex.read(from: try OpenFile.forReading(sidecar), trusting: p.trusted)
        try p.destroyChunks([10])
        // The parity slice of row 0 for the groups chunk 10 touches is damaged too.
        let column = Int(p.chunks[10].offset / index.columnLength)
        let slice = Int((p.chunks[10].offset % index.columnLength) / UInt64(index.sliceSize))
        try flipBit(sidecar, at: index.parityOffset(stripe: column % index.stripeCount, row: 0, slice: slice) + 9)
        let report = try Parity.repair(p.path, trusting: p.trusted)
        #expect(report.damagedParitySlices >= 1)
        #expect(try Protected.bytes(p.path) == p.original)
    }

    @Test func aDamagedIndexIsReadFromItsSecondCopy() throws {
        let p = try Protected()
        let sidecar = Parity.sidecarPath(for: p.path)
        let index = try ParityIndex.read(from: try OpenFile.forReading(sidecar), trusting: p.trusted)
        try flipBit(sidecar, at: 200)
        try p.destroyChunks([5])
        _ = try Parity.repair(p.path, trusting: p.trusted)
        #expect(try Protected.bytes(p.path) == p.original)
        // Both copies damaged: the index cannot be trusted, and the reason says so.
        try flipBit(sidecar, at: UInt64(index.indexLength) + index.parityBytes + 200)
        #expect(throws: ParityError.self) { try ParityIndex.read(from: try OpenFile.forReading(sidecar), trusting: p.trusted) }
        do {
            _ = try ParityIndex.read(from: try OpenFile.forReading(sidecar), trusting: p.trusted)
        } catch let error as ParityError {
            guard case .bothIndexesDamaged(let problems) = error else { Issue.record("unexpected: \(error)"); return }
            #expect(problems.count == 2 && problems.allSatisfy { $0.contains("signature is invalid") })
        }
    }

    @Test func parityIsTrustedOnlyWhenSignedByATrustedKey() throws {
        let p = try Protected()
        let other = try TestKeys(in: p.scratch, name: "other-keys")
        try p.destroyChunks([5])
        let damaged = try Protected.bytes(p.path)
        #expect(throws: ParityError.untrustedSigner(fingerprint: p.keys.signer.publicKey.fingerprint)) {
            try Parity.repair(p.path, trusting: [other.signer.publicKey])
        }
        #expect(try Protected.bytes(p.path) == damaged)
    }

    @Test func parityOfAnotherArchiveIsRefused() throws {
        let p = try Protected()
        let q = try Protected(dataBytes: 300_000)
        try copyFile(Parity.sidecarPath(for: q.path), Parity.sidecarPath(for: p.path) + ".q")
        try p.destroyChunks([5])
        do {
            _ = try Parity.repair(p.path, sidecar: Parity.sidecarPath(for: p.path) + ".q", trusting: p.trusted + q.trusted)
            Issue.record("parity of another archive was used")
        } catch let error as ParityError {
            guard case .otherArchive = error else { Issue.record("unexpected: \(error)"); return }
        }
    }

    @Test func aRewrappedArchiveIsNeverTurnedBackByStaleParity() throws {
        let p = try Protected(dataBytes: 1_000_000)
        // Rewrap to one more recipient: the payload is the same, the recipient block longer.
        let extra = try TestKeys(in: p.scratch, name: "escrow")
        _ = try p.keys.keyring.addRecipient(publicKeyFile: "\(extra.directory)/encryption/\(extra.keyring.activeEncryptionKeyID).pub", label: "escrow")
        _ = try Rewrapper.rewrap(path: p.path, keyring: p.keys.keyring)
        let rewrapped = try Protected.bytes(p.path)
        #expect(rewrapped.count != p.original.count)
        expectStale(containing: "it was made for a file of \(p.original.count) bytes and this one has \(rewrapped.count)") {
            _ = try Parity.repair(p.path, trusting: p.trusted)
        }
        #expect(try Protected.bytes(p.path) == rewrapped)
    }

    @Test func aRewrapOfTheSameSizeIsNeverTurnedBackEither() throws {
        let p = try Protected(dataBytes: 1_000_000)
        // A new active encryption key: as many recipients, so the same length, other bytes.
        _ = try p.keys.keyring.rotateEncryptionKey()
        _ = try Rewrapper.rewrap(path: p.path, keyring: p.keys.keyring)
        let rewrapped = try Protected.bytes(p.path)
        #expect(rewrapped.count == p.original.count && rewrapped != p.original)
        expectStale(containing: "the archive verifies, yet 1 of its slices (bytes 0–4095) differ") {
            _ = try Parity.repair(p.path, trusting: p.trusted)
        }
        #expect(try Protected.bytes(p.path) == rewrapped)
    }

    func expectStale(containing text: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("stale parity was applied", sourceLocation: sourceLocation)
        } catch let error as ParityError {
            guard case .staleParity(let why) = error else { Issue.record("unexpected: \(error)", sourceLocation: sourceLocation); return }
            #expect(why.contains(text), "\(why)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected: \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func aRebuiltSliceMustMatchItsRecordedHash() throws {
        // Parity data altered by whoever holds the signing key, its hash and signature made to fit: the
        // rebuilt bytes are wrong, and repair says so before it writes anything.
        let p = try Protected(dataBytes: 1_000_000)
        let sidecar = Parity.sidecarPath(for: p.path)
        var index = try ParityIndex.read(from: try OpenFile.forReading(sidecar), trusting: p.trusted)
        var side = try Protected.bytes(sidecar)
        let at = Int(index.parityOffset(stripe: 0, row: 0, slice: 0))
        side[at] ^= 0xFF
        let state = Sodium.Blake2bState(outputBytes: 16)
        side[at..<(at + index.sliceSize)].withUnsafeBytes { state.update($0) }
        index.parityHashes.replaceSubrange(0..<16, with: state.finalize())
        index.signature = p.keys.signer.sign(index.signedMessage(index.encodedUnsigned()))
        let encoded = index.encoded()
        side.replaceSubrange(0..<encoded.count, with: encoded)
        side.replaceSubrange((side.count - 16 - encoded.count)..<(side.count - 16), with: encoded)
        try TreeBuilder.write(sidecar, bytes: side)
        try p.destroy(p.path, at: 0, count: UInt64(index.sliceSize))
        let damaged = try Protected.bytes(p.path)
        do {
            _ = try Parity.repair(p.path, trusting: p.trusted)
            Issue.record("wrong parity was applied")
        } catch let error as ParityError {
            #expect(error == .malformed("slice 0 rebuilt from the parity does not match its recorded hash"), "\(error)")
        }
        #expect(try Protected.bytes(p.path) == damaged)
    }

    @Test func anIndexIsCheckedBeforeAnythingIsAllocatedFromIt() throws {
        let p = try Protected(share: "1%", dataBytes: 3_600_000, chunkRawSize: 4096, maxColumnLength: 12_288)
        let sidecar = Parity.sidecarPath(for: p.path)
        let side = try Protected.bytes(sidecar)
        // One stripe of ~300 columns cannot be a GF(2^8) code.
        var oneStripe = side
        oneStripe.replaceSubrange(76..<80, with: [1, 0, 0, 0])
        #expect(throws: ParityError.malformed("a stripe of \(p.made.columns) columns with \(p.made.parityColumns) parity columns exceeds 255 rows")) {
            _ = try ParityIndex.decode(Array(oneStripe[0..<(try ParityIndex.read(from: try OpenFile.forReading(sidecar), trusting: p.trusted).indexLength)]))
        }
        // A sidecar cut short is refused for its length, not read past its end.
        try TreeBuilder.write(sidecar, bytes: Array(side.dropLast()))
        #expect(throws: ParityError.malformed("the file is \(side.count - 1) bytes long, its index says \(side.count)")) {
            _ = try ParityIndex.read(from: try OpenFile.forReading(sidecar), trusting: p.trusted)
        }
    }

    @Test func anArchiveOfMoreColumnsThanAStripeHoldsIsStripedAndStillRebuilt() throws {
        // 1 % parity over ~300 columns (as an archive of over 242 GiB has: columns of at most 2^30 bytes):
        // two stripes, interleaved, so one contiguous region costs each half.
        let p = try Protected(share: "1%", dataBytes: 3_600_000, chunkRawSize: 4096, maxColumnLength: 12_288)
        #expect(p.made.stripes == 2, "\(p.made)")
        try p.destroy(p.path, at: 5000, count: p.made.contiguousBytesRecoverable)
        _ = try Parity.repair(p.path, trusting: p.trusted)
        #expect(try Protected.bytes(p.path) == p.original)
        try p.destroyChunks([3, 200, 601])
        _ = try Parity.repair(p.path, trusting: p.trusted)
        #expect(try Protected.bytes(p.path) == p.original)
    }

    @Test func theIndependentDecoderRecomputesTheParityFromFormatMDAlone() throws {
        // 5 % over one stripe (m = 5), and 1 % over two stripes: decode.py (§21 alone) checks the index and
        // signature, recomputes every parity column from the archive, and rebuilds lost columns.
        let decoder = FidelityTests.support.replacingOccurrences(of: "/Support", with: "/Interop/decode.py")
        for p in [try Protected(), try Protected(share: "1%", dataBytes: 3_600_000, chunkRawSize: 4096, maxColumnLength: 12_288)] {
            let pub = p.scratch.sub("signing.pub")
            try FileManager.default.copyItem(atPath: "\(p.keys.directory)/signing.pub", toPath: pub)
            let checked = try CLI.run([decoder, "--check-parity", p.path, "--trust", pub], executable: "/usr/bin/python3")
            #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
            #expect(checked.stdout.contains("\(p.made.stripes) stripes, \(p.made.parityColumns) parity columns each"), "\(checked.stdout)")
            #expect(checked.stdout.contains("rebuild OK"))
            // A parity column changed in one byte is not the code of its stripe.
            let index = try ParityIndex.read(from: try OpenFile.forReading(Parity.sidecarPath(for: p.path)), trusting: p.trusted)
            try flipBit(Parity.sidecarPath(for: p.path), at: index.parityOffset(stripe: 0, row: 0, slice: 0) + 1)
            let refused = try CLI.run([decoder, "--check-parity", p.path, "--trust", pub], executable: "/usr/bin/python3")
            #expect(refused.status == 1 && refused.stderr.contains("parity column 0 of stripe 0 is not the Cauchy code"), "\(refused.stderr)")
        }
    }

    @Test func theWholeStoryThroughTheBinary() throws {
        let scratch = try Scratch()
        let keyring = scratch.sub("keys")
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        let source = scratch.sub("src")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try TreeBuilder.write("\(source)/scan.bin", bytes: TreeBuilder.noise(2_000_000, seed: 4))
        let archive = scratch.sub("a.car")
        let create = try CLI.run(["create", "--keyring", keyring, "--out", archive, "--parity", "5%", source])
        #expect(create.status == 0, "\(create.stderr)")
        #expect(create.stdout.contains("parity \(archive).parity:"), "\(create.stdout)")
        #expect(FileManager.default.fileExists(atPath: "\(archive).parity"))
        let trust = ["--trust", "\(keyring)/signing.pub"]
        #expect(try CLI.run(["parity", "check", archive] + trust).status == 0)
        try flipBit(archive, at: 300_000)
        try flipBit(archive, at: 1_500_000)
        let check = try CLI.run(["parity", "check", archive] + trust)
        #expect(check.status == 1 && check.stdout.contains("DAMAGED") && check.stdout.contains("recoverable: coldarchive repair"), "\(check.stdout)")
        let repair = try CLI.run(["repair", archive, "--parity"] + trust)
        #expect(repair.status == 0, "\(repair.stderr)")
        #expect(repair.stdout.contains("REPAIRED \(archive): 2 slices"), "\(repair.stdout)")
        #expect(try CLI.run(["verify", archive] + trust).status == 0)
        // Damage beyond the budget: exit 1, named, nothing changed.
        try ParityTests.Protected.overwrite(archive, at: 0, count: 1_000_000)
        let before = try Protected.bytes(archive)
        let beyond = try CLI.run(["repair", archive, "--parity"] + trust)
        #expect(beyond.status == 1 && beyond.stderr.contains("beyond what the parity can recover"), "\(beyond.stderr)")
        #expect(try Protected.bytes(archive) == before)
        // A bad share is a usage error.
        let bad = try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("b.car"), "--parity", "0.1%", source])
        #expect(bad.status == 2 && bad.stderr.contains("--parity takes a share"), "\(bad.stderr)")
    }

    @Test func pushCarriesTheParityAndRewrapMakesItAgain() throws {
        let p = try Protected(dataBytes: 1_000_000)
        // The copy on another disk gets the parity, read back byte for byte, and can be mended by it alone.
        let pushed = try Push.push(p.path, to: p.scratch.sub("usb"), trusting: p.trusted)
        #expect(pushed.parityCopied)
        #expect(try Protected.bytes(pushed.copy + ".parity") == Protected.bytes(Parity.sidecarPath(for: p.path)))
        try flipBit(pushed.copy, at: 5000)
        _ = try Parity.repair(pushed.copy, trusting: p.trusted)
        #expect(try Protected.bytes(pushed.copy) == p.original)
        // A rewrap changes the bytes; the parity is made again at the same share and mends the new bytes.
        let extra = try TestKeys(in: p.scratch, name: "escrow")
        _ = try p.keys.keyring.addRecipient(publicKeyFile: "\(extra.directory)/encryption/\(extra.keyring.activeEncryptionKeyID).pub", label: "escrow")
        _ = try Rewrapper.rewrap(path: p.path, keyring: p.keys.keyring)
        let remade = try #require(try Parity.remake(for: p.path, signingKey: p.keys.signer, trusting: p.trusted))
        #expect(remade.parityColumns == p.made.parityColumns)
        let rewrapped = try Protected.bytes(p.path)
        try flipBit(p.path, at: 300)
        _ = try Parity.repair(p.path, trusting: p.trusted)
        #expect(try Protected.bytes(p.path) == rewrapped)
    }

    @Test func theGeometryKeepsEveryStripeWithin255Rows() throws {
        for (size, largest, bp) in [(UInt64(1) << 40, UInt64(4 << 20), 500), (4096, 4096, 10_000), (1 << 30, 4 << 20, 100),
                                    (5_000_000, 65_552, 500), (UInt64(3) << 32, 16 << 20, 2_000)] {
            let g = Parity.geometry(size: size, largest: largest, basisPoints: bp)
            let index = ParityIndex(archiveDigest: [UInt8](repeating: 0, count: 32), archiveSize: size, sliceSize: g.sliceSize,
                                    parityCount: g.parity, columnLength: g.columnLength, columnCount: g.columns,
                                    stripeCount: g.stripes, signer: [UInt8](repeating: 0, count: 32), dataHashes: [], parityHashes: [], signature: [])
            try index.checkGeometry()
            #expect(g.parity * g.stripes >= g.columns * bp / 10_000, "\(size) \(bp): \(g)")
        }
    }
}
