import ArgumentParser
import LinuxIO

/// zen's exit codes (sysexits(3) where one fits), as zen(1) and the README list them.
enum ZenExit {
    /// `zen bench` saw an error or a wrong answer, or `zen ask -e` got an error answer.
    static let failed: Int32 = 1
    /// A host name did not resolve (EX_NOHOST).
    static let noHost: Int32 = 68
    /// zend could not be reached: not running, no control socket (EX_UNAVAILABLE).
    static let unavailable: Int32 = 69
    /// A read or a write failed (EX_IOERR).
    static let ioError: Int32 = 74
    /// No answer within the timeout (EX_TEMPFAIL).
    static let timedOut: Int32 = 75
    /// zend closed without answering, or refused the request (EX_PROTOCOL).
    static let protocolError: Int32 = 76
    /// Permission denied: the control socket is root only (EX_NOPERM).
    static let noPermission: Int32 = 77

    /// Says `message` on stderr as `zen: message` (`zen SUBCOMMAND: message` when named),
    /// and returns the exit to throw.
    static func fail(_ message: String, code: Int32, command: String? = nil) -> ExitCode {
        FileDescriptor.standardError.writeAllIgnoringErrors("zen\(command.map { " \($0)" } ?? ""): \(message)\n")
        return ExitCode(code)
    }
}
