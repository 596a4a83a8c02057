import Foundation
import Testing
@testable import ColdArchive

/// Every input in the committed fuzzing corpus (Tests/Fuzz/corpus: the seeds, and any input that
/// ever crashed, kept as a regression) runs through the fuzzing harness without crashing.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus").path

    @Test func theCommittedCorpusReplaysWithoutACrash() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.corpus).sorted()
        #expect(names.count >= 4)
        for name in names {
            FuzzHarness.run(Array(try Data(contentsOf: URL(fileURLWithPath: "\(Self.corpus)/\(name)"))))
        }
    }

    @Test func theOpenPathSeedIsAValidArchive() throws {
        // The vector, through the open path, must verify and decrypt fully: the seed is meaningful.
        let archive = try ArchiveFile(path: "\(FuzzHarness.vectors)/vector-v1.car")
        let keyring = try #require(FuzzHarness.keyring)
        try archive.checkSignature(trusting: try keyring.trustedSigningKeys())
        let cipher = try archive.unlock(with: keyring)
        #expect(try archive.readPayload(cipher: cipher, workers: 1, sink: nil).entries == 11)
    }
}
