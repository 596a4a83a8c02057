import Foundation
import Testing
@testable import ColdArchive

/// A scratch directory removed when the test ends.
final class Scratch {
    let path: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.path
        path = "\(base)/coldarchive-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func sub(_ name: String) -> String { "\(path)/\(name)" }
}

/// A keyring made once per test, in its scratch directory.
struct TestKeys {
    let directory: String
    let keyring: Keyring
    let signer: SigningKey
    let recipients: [EncryptionPublicKey]

    init(in scratch: Scratch, name: String = "keys") throws {
        directory = scratch.sub(name)
        keyring = try Keyring.initialize(at: directory, passphrase: nil)
        signer = try keyring.signingKey()
        recipients = try keyring.recipientPublicKeys()
    }
}

/// Builds small CRM-like trees with every kind of entry the format carries.
enum TreeBuilder {
    static func write(_ path: String, _ text: String, mode: Int = 0o644) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    static func write(_ path: String, bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Deterministic pseudo-random bytes (incompressible, like attachments).
    static func noise(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &+ 0x9E3779B97F4A7C15
        var out = [UInt8]()
        out.reserveCapacity(count)
        while out.count < count {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            withUnsafeBytes(of: state) { out.append(contentsOf: $0.prefix(count - out.count)) }
        }
        return out
    }

    /// `root/crm` with CSV and JSON exports, a binary attachment, an empty file and directory,
    /// a symlink, a hardlink, a UTF-8 name, unusual modes and a nanosecond mtime.
    @discardableResult
    static func crmTree(at root: String, attachmentBytes: Int = 300_000) throws -> String {
        let crm = "\(root)/crm"
        let fm = FileManager.default
        for dir in ["", "/exports", "/tickets", "/attachments", "/empty-dir"] {
            try fm.createDirectory(atPath: crm + dir, withIntermediateDirectories: true)
        }
        var csv = "id,name,email,country\n"
        for i in 0..<2000 { csv += "\(i),Customer \(i),c\(i)@example.com,\(["DE", "FR", "US"][i % 3])\n" }
        try write("\(crm)/exports/customers.csv", csv)
        try write("\(crm)/tickets/T-1001.json", #"{"id":"T-1001","status":"open","subject":"Refund"}"#)
        try write("\(crm)/tickets/Zürich–Straße.json", #"{"id":"T-1002","note":"ümlaut ✓"}"#, mode: 0o600)
        try write("\(crm)/attachments/scan.pdf", bytes: noise(attachmentBytes, seed: 7))
        try write("\(crm)/empty.txt", "")
        try fm.createSymbolicLink(atPath: "\(crm)/tickets/latest.json", withDestinationPath: "T-1001.json")
        try fm.linkItem(atPath: "\(crm)/exports/customers.csv", toPath: "\(crm)/exports/customers-copy.csv")
        try fm.setAttributes([.posixPermissions: 0o750], ofItemAtPath: "\(crm)/attachments")
        var times = [timespec(tv_sec: 1_767_225_599, tv_nsec: 123_456_789), timespec(tv_sec: 1_767_225_599, tv_nsec: 123_456_789)]
        _ = utimensat(AT_FDCWD, "\(crm)/exports/customers.csv", &times, 0)
        return crm
    }
}

/// What a tree holds, for comparing an original with its restore.
struct TreeSnapshot: Equatable, CustomStringConvertible {
    struct Node: Equatable {
        var type: String
        var mode: UInt32
        var mtime: Int
        var mtimeNanoseconds: Int
        var content: Data?
        var link: String?
        var inodeGroup: Int?
    }
    /// Keyed by the path's UTF-8 bytes: names that Swift's `String` calls equal (canonically
    /// equivalent) are two files on disk and two nodes here.
    var nodes: [[UInt8]: Node] = [:]

    subscript(_ path: String) -> Node? { nodes[Array(path.utf8)] }

    var description: String {
        nodes.keys.sorted { $0.lexicographicallyPrecedes($1) }.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n")
    }

    /// The same tree with directory times cleared: a restore that was refused still creates and
    /// removes its staging directory, which touches the target directory's own mtime.
    var ignoringDirectoryTimes: TreeSnapshot {
        var copy = self
        for (path, node) in nodes where node.type == "dir" {
            copy.nodes[path]?.mtime = 0
            copy.nodes[path]?.mtimeNanoseconds = 0
        }
        return copy
    }

    init(_ root: String) throws {
        var inodes: [UInt64: Int] = [:]
        func visit(_ path: String, _ relative: String) throws {
            var st = stat()
            guard lstat(path, &st) == 0 else { throw SystemError(operation: "lstat", path: path, errno: errno) }
            var node = Node(type: "", mode: UInt32(st.st_mode) & 0o7777, mtime: st.st_mtim.tv_sec, mtimeNanoseconds: st.st_mtim.tv_nsec)
            switch UInt32(st.st_mode) & 0o170000 {
            case 0o040000:
                node.type = "dir"
                for child in try FileManager.default.contentsOfDirectory(atPath: path).sorted() {
                    try visit("\(path)/\(child)", relative.isEmpty ? child : "\(relative)/\(child)")
                }
            case 0o120000:
                node.type = "symlink"
                node.mode = 0
                node.link = try FileManager.default.destinationOfSymbolicLink(atPath: path)
            default:
                node.type = "file"
                node.content = try Data(contentsOf: URL(fileURLWithPath: path))
                if st.st_nlink > 1 {
                    node.inodeGroup = inodes[UInt64(st.st_ino)] ?? inodes.count
                    inodes[UInt64(st.st_ino)] = node.inodeGroup
                }
            }
            if node.type == "symlink" { node.mtime = 0; node.mtimeNanoseconds = 0 }
            nodes[Array(relative.utf8)] = node
        }
        try visit(root, "")
        nodes[[]] = nil
    }
}

/// The id of a process that has already ended: what a killed run's leftovers are named after.
func deadProcessID() throws -> Int32 {
    let finished = Process()
    finished.executableURL = URL(fileURLWithPath: "/bin/true")
    try finished.run()
    finished.waitUntilExit()
    return finished.processIdentifier
}

/// Flips one bit of a file in place.
func flipBit(_ path: String, at offset: UInt64) throws {
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: offset)
    let byte = try handle.read(upToCount: 1) ?? Data()
    try handle.seek(toOffset: offset)
    try handle.write(contentsOf: Data([byte[0] ^ 0x10]))
}

func fileSize(_ path: String) -> UInt64 {
    (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64) ?? 0
}

func copyFile(_ from: String, _ to: String) throws {
    try? FileManager.default.removeItem(atPath: to)
    try FileManager.default.copyItem(atPath: from, toPath: to)
}

/// Makes a small archive of a CRM tree in `scratch`, returning its path.
@discardableResult
func makeArchive(_ scratch: Scratch, keys: TestKeys, name: String = "a.car", chunkRawSize: UInt32 = FormatV1.defaultChunkRawSize,
                 attachmentBytes: Int = 300_000) throws -> String {
    let source = try TreeBuilder.crmTree(at: scratch.sub("src-\(name)"), attachmentBytes: attachmentBytes)
    var options = CreateOptions(sources: [source], output: scratch.sub(name), label: "test")
    options.chunkRawSize = chunkRawSize
    _ = try ArchiveCreator.create(options, signer: keys.signer, recipients: keys.recipients)
    return scratch.sub(name)
}

/// Asserts that `body` throws an `IntegrityError` for which `matches` holds: the specific reason, not
/// merely any error of the type.
func expectError(_ matches: (IntegrityError) -> Bool, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an integrity failure, got success. \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    } catch let error as IntegrityError {
        #expect(matches(error), "unexpected reason: \(error). \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected an integrity failure, got: \(error)", sourceLocation: sourceLocation)
    }
}

/// Asserts that `body` throws an error of kind `.integrity` (every such error is an `IntegrityError`),
/// whatever its reason: for campaigns over many damages, where the reason depends on the position.
func expectIntegrityFailure(_ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    expectError({ _ in true }, comment, sourceLocation: sourceLocation, body)
}
