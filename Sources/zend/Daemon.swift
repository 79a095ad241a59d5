import CZendShims
import Glibc
import LinuxIO
import Logging
import Reactor
import SystemdSupport
import ZenProtocol

/// The running daemon: opens the listeners, starts the reactors and supervises them
/// from the main thread (signals, reload, drain), then exits with a status code.
struct Daemon {
    let settings: DaemonSettings
    let logger: Logger

    func run() -> Int32 {
        // Before any thread exists, so every reactor thread inherits the mask and the
        // signals arrive only through the supervisor's signalfd.
        Signals.block([SIGINT, SIGTERM, SIGHUP])
        Signals.ignoreBrokenPipe()

        let listeners: [Listener]
        do {
            listeners = try openListeners()
        } catch {
            logger.critical("\(error.message)")
            return error.code
        }
        var listenersOpen = true
        let closeOnce = { (listeners: [Listener]) in
            if listenersOpen { Self.closeListeners(listeners) }
            listenersOpen = false
        }
        defer { closeOnce(listeners) }

        let group: ReactorGroup
        do {
            group = try ReactorGroup(count: settings.threads, listeners: listeners,
                                     service: settings.service(settings.table),
                                     configuration: settings.reactor, logger: logger)
        } catch {
            logger.critical("cannot start reactors: \(error)")
            return ExitCodes.software
        }
        for listener in listeners {
            logger.info("listening on \(listener.address)")
        }
        logger.info("zend \(ZendVersion.string) ready", metadata: [
            "aphorisms": "\(settings.table.count)",
            "threads": "\(settings.threads)",
            "max_connections": "\(settings.reactor.maxConnections)",
        ])
        var supervisor = Supervisor(settings: settings, group: group, logger: logger) {
            // Draining reactors no longer watch the listeners: close them so new
            // clients are refused now instead of waiting in a backlog nobody accepts from.
            closeOnce(listeners)
        }
        let code = supervisor.run()
        group.join()
        return code
    }

    /// A start-up failure: the log line and the exit code.
    struct StartError: Error {
        var message: String
        var code: Int32
    }

    private func openListeners() throws(StartError) -> [Listener] {
        var opened: [Listener] = []
        for address in settings.addresses {
            do {
                let fd = try Socket.listen(on: address)
                // Port 0 asks the kernel for a free port: log the one it chose.
                let bound = (try? fd.localAddress()).flatMap { $0 } ?? address
                opened.append(Listener(fd: fd, address: bound.description))
            } catch {
                Self.closeListeners(opened)
                throw StartError(message: "cannot listen on \(address): \(error)", code: ExitCodes.unavailable)
            }
        }
        return opened
    }

    private static func closeListeners(_ listeners: [Listener]) {
        for listener in listeners {
            listener.fd.close()
            if listener.address.hasPrefix("unix:") {
                _ = unlink(String(listener.address.dropFirst(5)))
            }
        }
    }
}

/// The main thread's loop: turns signals into drain and reload, and watches the reactors.
struct Supervisor {
    let settings: DaemonSettings
    let group: ReactorGroup
    let logger: Logger
    /// Called once every reactor has let go of the listeners during a drain.
    let releaseListeners: () -> Void
    private var table: AphorismTable
    private var draining = false

    private enum Token {
        static let signals: UInt64 = 1
        static let reactors: UInt64 = 2
    }

    init(settings: DaemonSettings, group: ReactorGroup, logger: Logger, releaseListeners: @escaping () -> Void) {
        self.settings = settings
        self.group = group
        self.logger = logger
        self.releaseListeners = releaseListeners
        self.table = settings.table
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
        try epoll.add(signals.fd, events: .input, data: Token.signals)
        try epoll.add(group.notifications, events: .input, data: Token.reactors)
        let events = UnsafeMutableBufferPointer<epoll_event>.allocate(capacity: 8)
        defer { events.deallocate() }
        while true {
            let count = try epoll.wait(into: events, timeout: -1)
            for position in 0 ..< count {
                switch events[position].data.u64 {
                case Token.signals:
                    while let signal = signals.next() { handle(signal) }
                default:
                    group.acknowledgeNotification()
                }
            }
            if draining, group.listenersReleased {
                releaseListeners()
            }
            if group.isFinished {
                let errors = group.errors
                for error in errors { logger.critical("reactor failed: \(error)") }
                if errors.isEmpty {
                    logger.info("stopped", metadata: ["requests": "\(group.requestsServed)"])
                    return 0
                }
                return ExitCodes.software
            }
            if !draining, !group.errors.isEmpty {
                // One reactor died: the process cannot serve reliably; stop and let the
                // service manager restart it.
                for error in group.errors { logger.critical("reactor failed: \(error)") }
                group.stop()
                draining = true
            }
        }
    }

    private mutating func handle(_ signal: Int32) {
        switch signal {
        case SIGHUP:
            reload()
        case SIGTERM, SIGINT:
            let name = signal == SIGTERM ? "SIGTERM" : "SIGINT"
            if draining {
                logger.warning("\(name) again: closing every connection now")
                group.stop()
            } else {
                draining = true
                logger.info("\(name): draining", metadata: [
                    "connections": "\(group.openConnections)",
                    "drain_timeout_s": "\(settings.reactor.drainTimeout.components.seconds)",
                ])
                group.drain()
            }
        default:
            break
        }
    }

    private mutating func reload() {
        guard let path = settings.aphorismPath else {
            logger.info("reload: no aphorism file configured; keeping the built-in table")
            return
        }
        do {
            let fresh = try DaemonSettings.loadTable(path)
            table = fresh
            group.replaceService(settings.service(fresh))
            logger.info("reloaded \(fresh.count) aphorisms from \(path)")
        } catch {
            logger.error("reload failed; keeping the previous table: \(error)")
        }
    }
}
