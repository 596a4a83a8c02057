import ColdArchive
#if canImport(Glibc)
import Glibc
#endif

/// Prompts on the controlling terminal (never on stdin, which may carry data).
enum Terminal {
    /// Reads a line from /dev/tty with echo off; nil when there is no terminal.
    static func askPassphrase(_ prompt: String) throws -> Passphrase? {
        guard var bytes = readLine(prompt, echo: false) else { return nil }
        return try Passphrase(bytes: &bytes)
    }

    /// Asks twice, for a new passphrase; nil when there is no terminal.
    static func askNewPassphrase() throws -> Passphrase? {
        guard var first = readLine("New passphrase: ", echo: false) else { return nil }
        guard var second = readLine("Repeat the passphrase: ", echo: false) else { return nil }
        defer { for i in second.indices { second[i] = 0 } }
        guard first == second else {
            for i in first.indices { first[i] = 0 }
            throw ValidationFailure("the two passphrases differ")
        }
        return try Passphrase(bytes: &first)
    }

    /// Reads a line from /dev/tty (with echo), for typed confirmations; nil without a terminal.
    static func ask(_ prompt: String) -> String? {
        readLine(prompt, echo: true).map { String(decoding: $0, as: UTF8.self) }
    }

    private static func readLine(_ prompt: String, echo: Bool) -> [UInt8]? {
        let fd = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        _ = prompt.withCString { write(fd, $0, strlen($0)) }
        var saved = termios()
        let haveTermios = tcgetattr(fd, &saved) == 0
        if haveTermios && !echo {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(fd, TCSAFLUSH, &quiet)
        }
        defer {
            if haveTermios && !echo {
                tcsetattr(fd, TCSAFLUSH, &saved)
                _ = write(fd, "\n", 1)
            }
        }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1 && byte != 0x0A {
            if line.count < 4096 { line.append(byte) }
        }
        if line.last == 0x0D { line.removeLast() }
        return line
    }
}

/// A usage-level failure raised by the command line itself (exit code 2).
struct ValidationFailure: ColdArchiveError {
    let message: String
    init(_ message: String) { self.message = message }
    var kind: FailureKind { .usage }
    var description: String { message }
}
