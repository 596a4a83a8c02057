import ArgumentParser
import ColdArchive
#if canImport(Glibc)
import Glibc
#endif

/// Exit codes are part of the interface: 0 ok, 1 integrity failure, 2 usage, 3 any other error.

// A write past a file-size limit (ulimit -f) must fail with EFBIG and a clear message, not kill us.
signal(SIGXFSZ, SIG_IGN)

do {
    var command = try ColdArchiveCommand.parseAsRoot()
    try command.run()
    exit(0)
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
        Output.error(ColdArchiveCommand.fullMessage(for: error))
        exit(FailureKind.usage.rawValue)
    default:
        Output.error("\(error)")
        exit(FailureKind.other.rawValue)
    }
}
