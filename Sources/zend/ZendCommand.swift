import ArgumentParser
import Glibc
import LinuxIO
import LogEvents
import Logging
import Reactor
import SystemdSupport
import ZenProtocol

/// The `zend` command line: the book's `zend [HOST] [-p PORT]` and the daemon's options.
/// `ZendMain` reads the common command lines itself and hands every other one (help,
/// completion scripts, errors) to this parser; both end in `ZendOptions.run()`.
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

    @Argument(help: ArgumentHelp(
        "Host or address to listen on, as in the book (empty or '*': all IPv4 interfaces).", valueName: "HOST"))
    var host: String?

    @Option(name: [.short, .long], help: ArgumentHelp("Port for HOST.", valueName: "PORT"))
    var port: UInt16?

    @Option(name: .long, help: ArgumentHelp(
        "Listen on ADDR: 127.0.0.1:1060, [::1]:1060, *:1060 or unix:/run/zend.sock[,mode=0660]; proxy:ADDR expects a PROXY header (repeatable).",
        valueName: "ADDR"))
    var listen: [String] = []

    @Option(name: .long, help: ArgumentHelp("Aphorism file: one 'question? answer' per line.", valueName: "FILE"),
            completion: .file())
    var aphorisms: String?

    @Option(name: .long, help: ArgumentHelp("Largest aphorism file read (a regular file only).", valueName: "BYTES"))
    var maxAphorismFileBytes: Int = ZendOptions().maxAphorismFileBytes

    @Option(name: .long, help: ArgumentHelp("Reactor threads. (default: the CPUs this process may use)", valueName: "N"))
    var threads: Int?

    @Option(name: .long, help: ArgumentHelp("Longest request in bytes, '?' included.", valueName: "N"))
    var maxRequestBytes: Int = ZendOptions().maxRequestBytes

    @Option(name: .long, help: ArgumentHelp("Close connections idle this long (0: never).", valueName: "SECONDS"))
    var idleTimeout: Double = ZendOptions().idleTimeout

    @Option(name: .long, help: ArgumentHelp(
        "Close a connection whose partial request is not complete this long after its first byte (0: never).",
        valueName: "SECONDS"))
    var requestTimeout: Double = ZendOptions().requestTimeout

    @Option(name: .long, help: ArgumentHelp("Most open connections. (default: from RLIMIT_NOFILE)", valueName: "N"))
    var maxConnections: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Most open connections from one client address. (default: no limit of its own)", valueName: "N"))
    var maxConnectionsPerClient: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Memory all connections' buffers may hold together; a connection needing more is closed.", valueName: "BYTES"))
    var maxBufferMemory: Int = ZendOptions().maxBufferMemory

    @Option(name: .long, help: ArgumentHelp(
        "Kernel send buffer of each TCP connection, SO_SNDBUF (0: the kernel's autotuning).", valueName: "BYTES"))
    var sendQueueBytes: Int = ZendOptions().sendQueueBytes

    @Option(name: .long, help: ArgumentHelp("On SIGTERM, close what is still open after this long.", valueName: "SECONDS"))
    var drainTimeout: Double = ZendOptions().drainTimeout

    @Option(name: .long, help: ArgumentHelp(
        "Exit after this long with no connection (socket activation starts zend again).", valueName: "SECONDS"))
    var exitWhenIdle: Double?

    @Option(name: .long, help: ArgumentHelp(
        "Answer `zen stats` on a unix socket at PATH (mode 0600; under systemd, a socket named 'control').",
        valueName: "PATH"), completion: .file())
    var control: String?

    @Option(name: .long, help: ArgumentHelp(
        "Believe PROXY headers only from this balancer address or range (repeatable). (default: 127.0.0.0/8 and ::1/128)",
        valueName: "CIDR"))
    var proxyFrom: [String] = []

    @Option(name: .long, help: ArgumentHelp(
        "Close a connection to a proxy: listener whose PROXY header is not whole this long after it opened.",
        valueName: "SECONDS"))
    var proxyTimeout: Double = ZendOptions().proxyTimeout

    @Option(name: .long, help: ArgumentHelp("The least severe messages logged.", valueName: "LEVEL"))
    var logLevel: LogLevelOption = ZendOptions().logLevel

    @Option(name: .long, help: ArgumentHelp(
        "Where logs go; auto: the journal when stderr is the journal, else the console.", valueName: "TARGET"))
    var logTarget: LogTargetOption = ZendOptions().logTarget

    @Flag(name: .long, help: "Check the configuration and exit (like nginx -t).")
    var check = false

    /// The parsed values.
    var options: ZendOptions {
        ZendOptions(host: host, port: port, listen: listen, aphorisms: aphorisms,
                    maxAphorismFileBytes: maxAphorismFileBytes, threads: threads,
                    maxRequestBytes: maxRequestBytes, idleTimeout: idleTimeout, requestTimeout: requestTimeout,
                    maxConnections: maxConnections, maxConnectionsPerClient: maxConnectionsPerClient,
                    maxBufferMemory: maxBufferMemory, sendQueueBytes: sendQueueBytes, drainTimeout: drainTimeout,
                    exitWhenIdle: exitWhenIdle, control: control, proxyFrom: proxyFrom, proxyTimeout: proxyTimeout,
                    logLevel: logLevel, logTarget: logTarget, check: check)
    }

    func validate() throws {
        if let problem = options.problem { throw ValidationError(problem) }
    }

    func run() throws {
        let code = options.run()
        if code != 0 { throw ExitCode(code) }
    }
}

/// What the command line asks for, however it was read (`ZendCommand` or `ZendMain`).
struct ZendOptions {
    var host: String?
    var port: UInt16?
    var listen: [String] = []
    var aphorisms: String?
    var maxAphorismFileBytes: Int = DaemonSettings.defaultMaxAphorismFileBytes
    var threads: Int?
    var maxRequestBytes: Int = ZenService.defaultMaxRequestBytes
    var idleTimeout: Double = 60
    var requestTimeout: Double = 10
    var maxConnections: Int?
    var maxConnectionsPerClient: Int?
    var maxBufferMemory: Int = 1 << 30
    var sendQueueBytes: Int = 65536
    var drainTimeout: Double = 5
    var exitWhenIdle: Double?
    var control: String?
    var proxyFrom: [String] = []
    var proxyTimeout: Double = 3
    var logLevel: LogLevelOption = .info
    var logTarget: LogTargetOption = .auto
    var check = false

    /// What is wrong with these values, as the usage error says it; nil if nothing.
    var problem: String? {
        let year = 365.0 * 86400
        if let threads, !(1 ... 1024).contains(threads) { return "--threads must be from 1 to 1024." }
        if maxRequestBytes < 1 { return "--max-request-bytes must be at least 1." }
        if maxRequestBytes > 16 << 20 { return "--max-request-bytes must be at most 16 MiB." }
        if !(0 ... year).contains(idleTimeout) {
            return "--idle-timeout must be from 0 (never) to 31536000 seconds (a year)."
        }
        if !(1 ... 1 << 30).contains(maxAphorismFileBytes) {
            return "--max-aphorism-file-bytes must be from 1 to 1073741824."
        }
        if !(0 ... year).contains(requestTimeout) {
            return "--request-timeout must be from 0 (never) to 31536000 seconds (a year)."
        }
        if let maxConnectionsPerClient, !(1 ... ReactorConfiguration.maxConnectionsLimit).contains(maxConnectionsPerClient) {
            return "--max-connections-per-client must be from 1 to \(ReactorConfiguration.maxConnectionsLimit)."
        }
        if !(65536 ... 1 << 40).contains(maxBufferMemory) {
            return "--max-buffer-memory must be from 65536 to 1099511627776."
        }
        if sendQueueBytes != 0, !(4096 ... 64 << 20).contains(sendQueueBytes) {
            return "--send-queue-bytes must be 0 (autotuning) or from 4096 to 67108864."
        }
        if !(0 ... 86400).contains(drainTimeout) {
            return "--drain-timeout must be from 0 to 86400 seconds."
        }
        if let maxConnections, !(1 ... ReactorConfiguration.maxConnectionsLimit).contains(maxConnections) {
            return "--max-connections must be from 1 to \(ReactorConfiguration.maxConnectionsLimit)."
        }
        if let exitWhenIdle, !(exitWhenIdle > 0 && exitWhenIdle <= year) {
            return "--exit-when-idle must be more than 0 and at most 31536000 seconds."
        }
        if let control, control.isEmpty || control.utf8.count > 107 {
            return "--control must be a path of 1 to 107 bytes."
        }
        if !(proxyTimeout > 0 && proxyTimeout <= 3600) {
            return "--proxy-timeout must be more than 0 and at most 3600 seconds."
        }
        return nil
    }

    /// Checks the configuration or runs the daemon; returns the exit code.
    func run() -> Int32 {
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
            if check {
                // As nginx -t: the failure on stderr, the way success is printed.
                FileDescriptor.standardError.writeAllIgnoringErrors("zend: \(error)\n")
            } else {
                logger.critical("configuration error", metadata: LifecycleEvent.startFailed.metadata.merging([
                    "error": "\(error)",
                ]) { $1 })
                notifier.failed(status: "Configuration error: \(error)", errno: error.errno)
            }
            return ExitCodes.config
        }
        settings.warnAboutUnreachableQuestions(settings.table, logger: logger)
        if check {
            print("zend: configuration OK: \(settings.summary)")
            return 0
        }
        return Daemon(settings: settings, logger: logger, notifier: notifier, logQueue: logging.queue).run()
    }
}

/// sysexits(3) codes zend exits with (64, bad usage, is the argument parser's).
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
