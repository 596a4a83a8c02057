import Foundation

/// Runs the built `coldarchive` binary, as a user would.
struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum CLI {
    /// The `coldarchive` executable next to the test bundle (SwiftPM builds it for the tests).
    static let executable: String = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("coldarchive").path,
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("coldarchive").path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/debug/coldarchive").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[2]
    }()

    /// Where the command line's change indexes go during the tests (one directory per test process).
    static let stateDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("coldarchive-test-state-\(getpid())").path

    @discardableResult
    static func run(_ arguments: [String], environment: [String: String] = [:], executable: String = CLI.executable,
                    in directory: String? = nil) throws -> CLIResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["COLDARCHIVE_KEYRING"] = nil
        // Change indexes of the tests' vaults go to a scratch directory, never into the user's home.
        env["COLDARCHIVE_STATE"] = CLI.stateDirectory
        for (k, v) in environment { env[k] = v }
        process.environment = env
        // Standard error goes to a file, not a second pipe: reading one pipe to its end while the child
        // blocks on a full other one (64 KiB) would hang both.
        let errPath = FileManager.default.temporaryDirectory.appendingPathComponent("coldarchive-stderr-\(UUID().uuidString)").path
        guard FileManager.default.createFile(atPath: errPath, contents: nil), let err = FileHandle(forWritingAtPath: errPath) else {
            throw CocoaError(.fileWriteUnknown)
        }
        defer { try? FileManager.default.removeItem(atPath: errPath) }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        try err.close()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errData = try Data(contentsOf: URL(fileURLWithPath: errPath))
        return CLIResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
    }
}
