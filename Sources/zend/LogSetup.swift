import Glibc
import LinuxIO
import Logging
import SystemdSupport

/// The swift-log backend, chosen once at start: the journal when stderr is the
/// journal (or `--log-target journal`), readable lines on stderr otherwise; both
/// written through a bounded queue by a thread of their own.
struct LogSetup {
    let logger: Logger
    let queue: LogQueue

    static func start(level: Logger.Level, target: LogTargetOption) -> LogSetup {
        var journal = (LogTarget(rawValue: target.rawValue) ?? .auto).usesJournal
        if journal && !JournalBackend.isAvailable {
            // sd_journal_send would drop every entry without a word.
            FileDescriptor(rawValue: 2).writeAllIgnoringErrors(
                "zend: journald's socket \(JournalBackend.socketPath) is missing; logging to stderr\n")
            journal = false
        }
        let backend: any LogBackend = journal ? JournalBackend() : ConsoleBackend()
        let queue: LogQueue
        do {
            queue = try LogQueue(backend: backend)
        } catch {
            FileDescriptor(rawValue: 2).writeAllIgnoringErrors("zend: cannot start the log writer: \(error)\n")
            exit(ExitCodes.osError)
        }
        LoggingSystem.bootstrap { _ in QueuedLogHandler(level: level, queue: queue) }
        return LogSetup(logger: Logger(label: "zend"), queue: queue)
    }

    /// Writes out what is queued (bounded wait) before the process exits.
    func finish() {
        queue.finish()
    }
}
