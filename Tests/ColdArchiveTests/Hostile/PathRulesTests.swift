import Testing
@testable import ColdArchive

/// The path rules work on UTF-8 bytes: a `/` followed by a combining mark is one Swift `Character`
/// but two things to the file system — a separator and the start of a name.
@Suite struct PathRulesTests {
    @Test(arguments: ["../\u{301}b", "a/..\u{301}/../b", "/\u{301}etc", "a//b", "a/./b", "a/", "", "a\u{0}b"])
    func unsafeArchivePathsAreRefused(path: String) {
        #expect(throws: IntegrityError.self) { try PathRules.components(of: path) }
    }

    @Test func componentsSplitAtEverySlashByte() throws {
        #expect(try PathRules.components(of: "crm/\u{301}x/Zürich–Straße.json") == ["crm", "\u{301}x", "Zürich–Straße.json"])
        #expect(try PathRules.components(of: "a/..\u{301}") == ["a", "..\u{301}"])  // a name, not '..'
        #expect(throws: IntegrityError.self) { try PathRules.components(of: String(repeating: "x", count: 256)) }
    }

    @Test func linkTargetsThatHideASeparatorBehindACombiningMarkEscape() {
        #expect(PathRules.symlinkEscapes(linkDepth: 1, target: "/\u{301}etc"))
        #expect(PathRules.symlinkEscapes(linkDepth: 2, target: "../../\u{301}x"))
        #expect(PathRules.symlinkEscapes(linkDepth: 3, target: "a/../../\u{301}x"))
        #expect(!PathRules.symlinkEscapes(linkDepth: 3, target: "../\u{301}x"))
        #expect(!PathRules.symlinkEscapes(linkDepth: 2, target: "./b/\u{301}c"))
    }
}
