import CZendShims
import Glibc
import LinuxIO
import LogEvents
import Logging
import Reactor
import SystemdSupport
import ZenProtocol

/// The main thread's loop: turns signals into drain and reload, keeps systemd informed
/// (status, watchdog), and exits when idle if asked to. Every input is an fd in one
/// epoll set: signals, the reactors' notifications, and one timerfd per duty.
struct Supervisor {
    let settings: DaemonSettings
    let group: ReactorGroup
    let logger: Logger
    let notifier: ServiceNotifier
    let listeners: [Listener]
    /// The control socket's server (`zen stats`), if zend has a control socket.
    let control: ControlServer?
    /// The log queue, for the count of entries it dropped.
    let logQueue: LogQueue
    /// Called once every reactor has let go of the listeners during a drain.
    let releaseListeners: () -> Void

    private let startedAt = MonotonicInstant.now()
    private var draining = false
    private var lastStatus = ""
    private var reloads: UInt64 = 0
    private var tableSize: Int
    private var reloadFailures: UInt64 = 0
    private var lastReloadFailure = ""
    /// Connections opened when the status line last asked the reactors for figures.
    private var statusConnectionsSeen: UInt64 = 0
    private var lastHeartbeats: [UInt64?] = []
    private var reportedStall = false
    private var idleSince: (opened: UInt64, at: MonotonicInstant)?

    private enum Token: UInt64 {
        case signals, reactors, status, watchdog, idle, control
    }

    init(settings: DaemonSettings, group: ReactorGroup, logger: Logger, notifier: ServiceNotifier,
         listeners: [Listener], control: ControlServer?, logQueue: LogQueue,
         releaseListeners: @escaping () -> Void) {
        self.settings = settings
        tableSize = settings.table.count
        self.group = group
        self.logger = logger
        self.notifier = notifier
        self.listeners = listeners
        self.control = control
        self.logQueue = logQueue
        self.releaseListeners = releaseListeners
    }

    mutating func run() -> Int32 {
        do {
            return try loop()
        } catch {
            logger.critical("supervisor failed: \(error)")
            group.stop()
            return ExitCodes.software
        }
    }

    private mutating func loop() throws(SystemError) -> Int32 {
        let epoll = try Epoll()
        let signals = try SignalFD([SIGINT, SIGTERM, SIGHUP])
        let statusTimer = try TimerFD()
        let watchdogTimer = try TimerFD()
        let idleTimer = try TimerFD()
        try epoll.add(signals.fd, events: .input, data: Token.signals.rawValue)
        try epoll.add(group.notifications, events: .input, data: Token.reactors.rawValue)
        try epoll.add(statusTimer.fd, events: .input, data: Token.status.rawValue)
        try epoll.add(watchdogTimer.fd, events: .input, data: Token.watchdog.rawValue)
        try epoll.add(idleTimer.fd, events: .input, data: Token.idle.rawValue)
        if let control {
            try epoll.add(control.fd, events: .input, data: Token.control.rawValue)
        }
        defer { control?.close() }

        // Every listener is open and every reactor watches it: ready.
        lastStatus = statusLine()
        notifier.ready(status: lastStatus)
        logger.info("ready", metadata: LifecycleEvent.ready.metadata.merging([
            "listeners": "\(listeners.count)",
            "aphorisms": "\(settings.table.count)",
            "threads": "\(group.count)",
            "max_connections": "\(settings.reactor.maxConnections)",
        ]) { $1 })
        if notifier.isEnabled {
            try statusTimer.arm(at: .now().advanced(by: .seconds(1)))
        }
        let watchdogPeriod = ServiceNotifier.watchdogTimeout().map { $0 / 2 }
        if let watchdogPeriod {
            notifier.watchdog()
            lastHeartbeats = group.heartbeats
            group.ping()
            try watchdogTimer.arm(at: .now().advanced(by: watchdogPeriod))
        }
        try noteIdleness(idleTimer)

        while true {
            for (token, _) in try epoll.wait(timeout: -1) {
                switch Token(rawValue: token) {
                case .signals:
                    while let signal = signals.next() { handle(signal) }
                case .reactors:
                    group.acknowledgeNotification()
                    try noteIdleness(idleTimer)
                    control?.progress(group: group, facts: facts)
                case .control:
                    control?.handleEvents(group: group, facts: facts)
                case .status:
                    statusTimer.acknowledge()
                    let line = statusLine()
                    if line != lastStatus {
                        notifier.status(line)
                        lastStatus = line
                    }
                    refreshStatusFigures()
                    try statusTimer.arm(at: .now().advanced(by: .seconds(1)))
                case .watchdog:
                    watchdogTimer.acknowledge()
                    keepWatchdogAlive()
                    if let watchdogPeriod { try watchdogTimer.arm(at: .now().advanced(by: watchdogPeriod)) }
                case .idle:
                    idleTimer.acknowledge()
                    try checkIdleExit(idleTimer)
                case nil:
                    break
                }
            }
            if draining, group.listenersReleased {
                releaseListeners()
            }
            if group.isFinished {
                let errors = group.errors
                for error in errors { logger.critical("reactor failed: \(error)") }
                guard errors.isEmpty else { return ExitCodes.software }
                // Each reactor published its final figures as its loop ended.
                let perReactor = group.latestStats
                logger.info("stopped", metadata: [
                    "requests": "\(perReactor.reduce(0) { $0 + $1.requests })",
                    "accepted_per_reactor": "\(perReactor.map { String($0.connectionsServed) }.joined(separator: ","))",
                    "requests_per_reactor": "\(perReactor.map { String($0.requests) }.joined(separator: ","))",
                ])
                return 0
            }
            if !draining, !group.errors.isEmpty {
                // One reactor died: the process cannot serve reliably; stop and let the
                // service manager restart it.
                for error in group.errors { logger.critical("reactor failed: \(error)") }
                notifier.stopping(status: "A reactor failed; stopping")
                group.stop()
                draining = true
            }
        }
    }

    // MARK: Signals

    private mutating func handle(_ signal: Int32) {
        switch signal {
        case SIGHUP:
            if draining {
                logger.notice("SIGHUP while stopping: not reloading")
            } else {
                reload()
            }
        case SIGTERM, SIGINT:
            let name = signal == SIGTERM ? "SIGTERM" : "SIGINT"
            if draining {
                logger.warning("\(name) again: closing every connection now")
                group.stop()
            } else {
                beginDrain(reason: "\(name): draining")
            }
        default:
            break
        }
    }

    private mutating func beginDrain(reason: String) {
        draining = true
        let connections = group.openConnections
        notifier.stopping(status: "Stopping: draining \(connections) connection(s)")
        logger.info("\(reason)", metadata: LifecycleEvent.stopping.metadata.merging([
            "connections": "\(connections)",
            "drain_timeout_s": "\(settings.reactor.drainTimeout.components.seconds)",
        ]) { $1 })
        group.drain()
    }

    private mutating func reload() {
        guard let path = settings.aphorismPath else {
            logger.info("reload: no aphorism file configured; keeping the built-in table")
            return
        }
        notifier.reloading()
        logger.info("reloading the aphorism file", metadata: LifecycleEvent.reloading.metadata.merging([
            "file": "\(path)",
        ]) { $1 })
        do {
            let fresh = try DaemonSettings.loadTable(path, maxBytes: settings.maxAphorismFileBytes)
            settings.warnAboutUnreachableQuestions(fresh, logger: logger)
            group.replaceService(settings.service(fresh))
            tableSize = fresh.count
            reloads += 1
            logger.info("reloaded the aphorism file", metadata: ["file": "\(path)", "aphorisms": "\(fresh.count)"])
            lastStatus = statusLine()
            notifier.ready(status: lastStatus)
        } catch {
            reloadFailures += 1
            lastReloadFailure = error.description
            logger.error("reload failed; keeping the previous table", metadata: LifecycleEvent.reloadFailed.metadata.merging([
                "error": "\(error)",
            ]) { $1 })
            lastStatus = "Reload failed, serving the previous table: \(error)"
            notifier.ready(status: lastStatus)
        }
    }

    // MARK: systemd duties

    /// `STATUS=`: what a person checking `systemctl status zend` wants to know. The request
    /// count is the reactors' last published figure (asked for each second while clients come).
    private func statusLine() -> String {
        let listening = listeners.isEmpty ? "one passed connection"
            : listeners.map(\.address).joined(separator: ", ")
        let state = draining ? "Draining" : "Serving"
        let requests = group.latestStats.reduce(0) { $0 + $1.requests }
        return "\(state) on \(listening): \(group.openConnections) connection(s), \(requests) request(s) answered"
    }

    /// Asks the reactors for fresh figures for the next status line, unless nothing can have
    /// changed (no connection open or opened since): an idle zend's reactors stay asleep.
    private mutating func refreshStatusFigures() {
        let opened = group.connectionsOpened
        guard group.openConnections > 0 || opened != statusConnectionsSeen else { return }
        statusConnectionsSeen = opened
        _ = group.requestStats()
    }

    /// What `zen stats` reports besides the reactors' counters.
    private func facts() -> ServerFacts {
        let listening = listeners.isEmpty ? ["one passed connection"] : listeners.map(\.description)
        return ServerFacts(
            version: ZendVersion.string, pid: getpid(),
            uptimeSeconds: MonotonicInstant.now().duration(since: startedAt).components.seconds,
            threads: group.count, listeners: listening, aphorismFile: settings.aphorismPath, aphorisms: tableSize,
            reloads: reloads, reloadFailures: reloadFailures, lastReloadFailure: lastReloadFailure,
            logEntriesDropped: logQueue.droppedTotal)
    }

    /// Pings systemd only if every reactor answered the previous ping: a reactor stuck in
    /// a loop stops the keep-alives, so systemd restarts the service.
    private mutating func keepWatchdogAlive() {
        let beats = group.heartbeats
        let stalled = beats.indices.filter { beats[$0] != nil && beats[$0] == lastHeartbeats[$0] }
        if stalled.isEmpty {
            notifier.watchdog()
            reportedStall = false
        } else if !reportedStall {
            logger.error("reactor(s) \(stalled) made no progress; withholding the watchdog keep-alive")
            reportedStall = true
        }
        lastHeartbeats = beats
        group.ping()
    }

    /// With `--exit-when-idle N`: each time the last connection closes (and at start),
    /// count N seconds from now.
    private mutating func noteIdleness(_ timer: borrowing TimerFD) throws(SystemError) {
        guard let limit = settings.exitWhenIdle, !draining, group.openConnections == 0 else { return }
        let now = MonotonicInstant.now()
        idleSince = (group.connectionsOpened, now)
        try timer.arm(at: now.advanced(by: limit))
    }

    /// Exits if nobody connected since the count started; otherwise the next time the
    /// last connection closes starts it again. The listening socket stays with systemd,
    /// which starts zend again on the next connection.
    private mutating func checkIdleExit(_ timer: borrowing TimerFD) throws(SystemError) {
        guard let limit = settings.exitWhenIdle, let since = idleSince, !draining else { return }
        idleSince = nil
        if group.openConnections == 0 && group.connectionsOpened == since.opened {
            beginDrain(reason: "no connection for \(Self.seconds(limit)) s: exiting")
        } else {
            try noteIdleness(timer)
        }
    }

    private static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let tenths = attoseconds / 100_000_000_000_000_000
        return tenths == 0 ? "\(seconds)" : "\(seconds).\(tenths)"
    }
}
