import ArgumentParser
import ColdArchive
#if canImport(Glibc)
import Glibc
#endif

/// Exit codes are part of the interface: 0 ok, 1 integrity failure, 2 usage, 3 any other error.
let command: ParsableCommand
do {
    command = try ColdArchiveCommand.parseAsRoot()
} catch {
    let code = ColdArchiveCommand.exitCode(for: error)
    if code == .success {
        print(ColdArchiveCommand.fullMessage(for: error))
        exit(0)
    }
    Output.error(ColdArchiveCommand.fullMessage(for: error))
    exit(FailureKind.usage.rawValue)
}
do {
    var runnable = command
    try runnable.run()
    exit(0)
} catch let error as ColdArchiveError {
    Output.error(error.description)
    exit(error.kind.rawValue)
} catch let code as ExitCode {
    exit(code.rawValue)
} catch let error as ValidationError {
    Output.error(error.message)
    exit(FailureKind.usage.rawValue)
} catch {
    Output.error("\(error)")
    exit(FailureKind.other.rawValue)
}
