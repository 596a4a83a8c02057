import ArgumentParser
import ColdArchive
#if canImport(Glibc)
import Glibc
#endif

/// Exit codes are part of the interface: 0 ok, 1 integrity failure, 2 usage, 3 any other error, 4 the
/// archive is complete and valid but some sources could not be archived exactly (create).

// A write past a file-size limit (ulimit -f) must fail with EFBIG and a clear message, not kill us.
signal(SIGXFSZ, SIG_IGN)

// The walker keeps one descriptor per directory level it is in; allow what the hard limit allows
// (deep trees would otherwise hit the usual soft limit of 1024).
var fileLimit = rlimit()
if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &fileLimit) == 0 && fileLimit.rlim_cur < min(fileLimit.rlim_max, 1 << 16) {
    fileLimit.rlim_cur = min(fileLimit.rlim_max, 1 << 16)
    _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &fileLimit)
}

// Arguments are bytes: a path that is not valid UTF-8 (a Latin-1 directory name) is taken exactly
// (NameCodec), not with U+FFFD as Swift's CommandLine.arguments would give it.
let arguments = (1..<Int(CommandLine.argc)).map { i in
    NameCodec.decode(UnsafeRawBufferPointer(start: CommandLine.unsafeArgv[i]!, count: strlen(CommandLine.unsafeArgv[i]!)))
}

do {
    var command = try ColdArchiveCommand.parseAsRoot(arguments)
    try command.run()
    exit(0)
} catch let code as ExitCode {
    // A command that chose its status (after saying why on stderr).
    exit(code.rawValue)
} catch let error as ColdArchiveError {
    Output.error(error.description)
    exit(error.kind.rawValue)
} catch {
    // What is left comes from the argument parser (help, bad options) or is unexpected.
    switch ColdArchiveCommand.exitCode(for: error) {
    case .success:
        print(ColdArchiveCommand.fullMessage(for: error))
        exit(0)
    case .validationFailure:
        // The parser's message starts with its own "Error: "; ours already says "error:".
        var message = ColdArchiveCommand.fullMessage(for: error)
        if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
        Output.error(message)
        exit(FailureKind.usage.rawValue)
    default:
        Output.error("\(error)")
        exit(FailureKind.other.rawValue)
    }
}
