import ArgumentParser
import Glibc
import LinuxIO
import LogEvents
import Logging
import Reactor
import SystemdSupport
import ZenProtocol

/// The `zend` command line: the book's `zend [HOST] [-p PORT]` and the daemon's options.
@main
struct ZendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zend",
        abstract: "Answer Zen-of-Python questions from an edge-triggered epoll reactor.",
        discussion: """
        With no arguments zend serves the default table on 127.0.0.1:1060 in the \
        foreground. Under systemd it uses the sockets passed in (socket activation), \
        reports readiness and status with sd_notify, and logs to the journal.
        Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP re-reads the aphorism file.
        """,
        version: "zend \(ZendVersion.string)"
    )

    @Argument(help: "Host or address to listen on, as in the book (empty or '*': all IPv4 interfaces).")
    var host: String?

    @Option(name: [.short, .long], help: "Port for HOST.")
    var port: UInt16?

    @Option(name: .long, help: ArgumentHelp(
        "Listen on ADDR: 127.0.0.1:1060, [::1]:1060, *:1060 or unix:/run/zend.sock[,mode=0660] (repeatable).",
        valueName: "ADDR"))
    var listen: [String] = []

    @Option(name: .long, help: ArgumentHelp("Aphorism file: one 'question? answer' per line.", valueName: "FILE"))
    var aphorisms: String?

    @Option(name: .long, help: ArgumentHelp("Largest aphorism file read (a regular file only).", valueName: "BYTES"))
    var maxAphorismFileBytes: Int = DaemonSettings.defaultMaxAphorismFileBytes

    @Option(name: .long, help: "Reactor threads (default: the CPUs this process may use).")
    var threads: Int?

    @Option(name: .long, help: ArgumentHelp("Longest request in bytes, '?' included.", valueName: "N"))
    var maxRequestBytes: Int = ZenService.defaultMaxRequestBytes

    @Option(name: .long, help: ArgumentHelp("Close connections idle this long (0: never).", valueName: "SECONDS"))
    var idleTimeout: Double = 60

    @Option(name: .long, help: ArgumentHelp(
        "Close a connection whose partial request is not complete this long after its first byte (0: never).",
        valueName: "SECONDS"))
    var requestTimeout: Double = 10

    @Option(name: .long, help: ArgumentHelp("Most open connections (default: from RLIMIT_NOFILE).", valueName: "N"))
    var maxConnections: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Most open connections from one client address (default: no limit of its own).", valueName: "N"))
    var maxConnectionsPerClient: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Kernel send buffer of each TCP connection, SO_SNDBUF (0: the kernel's autotuning).", valueName: "BYTES"))
    var sendQueueBytes: Int = 65536

    @Option(name: .long, help: ArgumentHelp("On SIGTERM, close what is still open after this long.", valueName: "SECONDS"))
    var drainTimeout: Double = 5

    @Option(name: .long, help: ArgumentHelp(
        "Exit after this long with no connection (socket activation starts zend again).", valueName: "SECONDS"))
    var exitWhenIdle: Double?

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: LogLevelOption = .info

    @Option(name: .long, help: "auto (journal when stderr is the journal), journal or console.")
    var logTarget: LogTargetOption = .auto

    @Flag(name: .long, help: "Check the configuration and exit (like nginx -t).")
    var check = false

    func validate() throws {
        let year = 365.0 * 86400
        if let threads, !(1 ... 1024).contains(threads) { throw ValidationError("--threads must be from 1 to 1024.") }
        if maxRequestBytes < 1 { throw ValidationError("--max-request-bytes must be at least 1.") }
        if maxRequestBytes > 16 << 20 { throw ValidationError("--max-request-bytes must be at most 16 MiB.") }
        if !(0 ... year).contains(idleTimeout) {
            throw ValidationError("--idle-timeout must be from 0 (never) to 31536000 seconds (a year).")
        }
        if !(1 ... 1 << 30).contains(maxAphorismFileBytes) {
            throw ValidationError("--max-aphorism-file-bytes must be from 1 to 1073741824.")
        }
        if !(0 ... year).contains(requestTimeout) {
            throw ValidationError("--request-timeout must be from 0 (never) to 31536000 seconds (a year).")
        }
        if let maxConnectionsPerClient, !(1 ... ReactorConfiguration.maxConnectionsLimit).contains(maxConnectionsPerClient) {
            throw ValidationError("--max-connections-per-client must be from 1 to \(ReactorConfiguration.maxConnectionsLimit).")
        }
        if sendQueueBytes != 0, !(4096 ... 64 << 20).contains(sendQueueBytes) {
            throw ValidationError("--send-queue-bytes must be 0 (autotuning) or from 4096 to 67108864.")
        }
        if !(0 ... 86400).contains(drainTimeout) {
            throw ValidationError("--drain-timeout must be from 0 to 86400 seconds.")
        }
        if let maxConnections, !(1 ... ReactorConfiguration.maxConnectionsLimit).contains(maxConnections) {
            throw ValidationError("--max-connections must be from 1 to \(ReactorConfiguration.maxConnectionsLimit).")
        }
        if let exitWhenIdle, !(exitWhenIdle > 0 && exitWhenIdle <= year) {
            throw ValidationError("--exit-when-idle must be more than 0 and at most 31536000 seconds.")
        }
    }

    func run() throws {
        // Before any thread exists (the log writer is the first), so every thread inherits
        // the mask and these signals arrive only through the supervisor's signalfd.
        Signals.block([SIGINT, SIGTERM, SIGHUP])
        Signals.ignoreBrokenPipe()
        let logging = LogSetup.start(level: logLevel.level, target: logTarget)
        defer { logging.finish() }
        let logger = logging.logger
        let notifier = ServiceNotifier()
        let settings: DaemonSettings
        do {
            settings = try DaemonSettings(self)
        } catch {
            logger.critical("configuration error: \(error)", metadata: LifecycleEvent.startFailed.metadata)
            notifier.failed(status: "Configuration error: \(error)", errno: error.errno)
            throw ExitCode(ExitCodes.config)
        }
        for question in settings.unreachableQuestions(settings.table) {
            logger.warning("the question \"\(question)\" is longer than --max-request-bytes \(settings.maxRequestBytes); no client can ask it")
        }
        if check {
            print("zend: configuration OK: \(settings.summary)")
            return
        }
        let code = Daemon(settings: settings, logger: logger, notifier: notifier).run()
        if code != 0 { throw ExitCode(code) }
    }
}

/// sysexits(3) codes zend exits with.
enum ExitCodes {
    /// Bad configuration: options, aphorism file, addresses.
    static let config: Int32 = 78
    /// A resource was unavailable at start: address in use, no permission.
    static let unavailable: Int32 = 69
    /// Something failed while running.
    static let software: Int32 = 70
    /// The operating system refused a resource zend cannot run without.
    static let osError: Int32 = 71
}

/// `--log-level` values.
enum LogLevelOption: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
    var level: Logger.Level { Logger.Level(rawValue: rawValue)! }
}

/// `--log-target` values.
enum LogTargetOption: String, ExpressibleByArgument, CaseIterable {
    case auto, journal, console
}
