import Glibc
import LinuxIO
import LogEvents
import Logging
import Reactor
import SystemdSupport
import ZenProtocol

/// The running daemon: takes passed sockets or opens listeners, starts the reactors,
/// tells systemd it is ready, and hands over to the `Supervisor` until it stops.
struct Daemon {
    let settings: DaemonSettings
    let logger: Logger
    let notifier: ServiceNotifier
    let logQueue: LogQueue

    /// The `FileDescriptorName=` of a passed socket that is the control socket, not a listener.
    static let controlSocketName = "control"
    /// The `FileDescriptorName=` of a passed listener whose connections start with a PROXY header.
    static let proxySocketName = "proxy"

    func run() -> Int32 {
        logger.info("starting", metadata: LifecycleEvent.started.metadata.merging([
            "version": "\(ZendVersion.string)",
        ]) { $1 })

        let endpoints: Endpoints
        do {
            endpoints = try openEndpoints()
        } catch {
            logger.critical("\(error.message)", metadata: LifecycleEvent.startFailed.metadata)
            notifier.failed(status: error.message, errno: error.errno)
            return error.code
        }
        var listenersOpen = true
        let closeListeners = { [logger] in
            if listenersOpen { endpoints.closeListeners(logger: logger) }
            listenersOpen = false
        }
        defer { closeListeners() }

        var configuration = settings.reactor
        var threads = settings.threads
        if !endpoints.connections.isEmpty && endpoints.listeners.isEmpty {
            // Accept=yes: systemd passed one client; serve it, then exit (inetd "nowait").
            configuration.exitWhenNoConnections = true
            threads = 1
        }
        let group: ReactorGroup
        do {
            group = try ReactorGroup(count: threads, listeners: endpoints.listeners,
                                     adopting: endpoints.connections,
                                     service: settings.service(settings.table),
                                     configuration: configuration, logger: logger)
        } catch {
            logger.critical("cannot start reactors: \(error)", metadata: LifecycleEvent.startFailed.metadata)
            notifier.failed(status: "Cannot start reactors: \(error.reason)", errno: error.errno)
            return ExitCodes.software
        }
        for listener in endpoints.listeners {
            logger.info("listening on \(listener)")
        }
        if !endpoints.connections.isEmpty {
            logger.debug("serving connections passed by systemd", metadata: ["connections": "\(endpoints.connections.count)"])
        }
        var control: ControlServer?
        if !endpoints.controls.isEmpty {
            do {
                control = try ControlServer(listeners: endpoints.controls.map(\.fd), logger: logger)
            } catch {
                logger.critical("cannot serve the control socket", metadata: LifecycleEvent.startFailed.metadata.merging([
                    "error": "\(error)",
                ]) { $1 })
                notifier.failed(status: "Cannot serve the control socket: \(error.reason)", errno: error.errno)
                group.stop()
                group.join()
                return ExitCodes.software
            }
            for socket in endpoints.controls {
                logger.info("control socket on \(socket)")
            }
        }
        var supervisor = Supervisor(settings: settings, group: group, logger: logger, notifier: notifier,
                                    listeners: endpoints.listeners, control: control, logQueue: logQueue,
                                    releaseListeners: closeListeners)
        let code = supervisor.run()
        group.join()
        return code
    }

    /// A start-up failure: the log line, the errno for systemd, and the exit code.
    struct StartError: Error {
        var message: String
        var errno: Int32?
        var code: Int32
    }

    /// The listeners and passed connections zend will serve.
    struct Endpoints {
        var listeners: [Listener] = []
        var connections: [FileDescriptor] = []
        /// Control sockets (`zen stats`): passed with the name `control`, or `--control PATH`.
        var controls: [Listener] = []
        /// Unix socket files zend created itself (never systemd's), removed at exit if the
        /// path still holds that very socket (same device and inode): a file put there since,
        /// or the socket of a newer zend that took the path over, stays.
        var ownedFiles: [UnixSocketFile] = []

        /// Removes the owned socket files, then closes the listeners (so the path never
        /// points at a socket that refuses connections while it is still ours).
        func closeListeners(logger: Logger? = nil) {
            for file in ownedFiles {
                let outcome = file.remove()
                switch outcome {
                case .removed:
                    logger?.debug("removed socket file \(file.path)")
                case .missing, .replaced:
                    logger?.info("socket file \(file.path) \(outcome)")
                case .failed:
                    logger?.warning("socket file \(file.path) \(outcome)")
                }
            }
            for listener in listeners + controls { listener.fd.close() }
        }
    }

    private func openEndpoints() throws(StartError) -> Endpoints {
        var endpoints = Endpoints()
        let passed: [PassedSocket]
        do {
            passed = try SocketActivation.takePassedSockets()
        } catch {
            throw StartError(message: error.description, errno: ENOTSOCK, code: ExitCodes.config)
        }
        for socket in passed {
            switch socket.kind {
            case .listening:
                let address = socket.address.map { "\($0)" } ?? "fd \(socket.fd.rawValue)"
                let listener = Listener(fd: socket.fd, address: address, passedName: socket.name,
                                        expectsProxyHeader: socket.name == Self.proxySocketName)
                if socket.name == Self.controlSocketName {
                    endpoints.controls.append(listener)
                } else {
                    endpoints.listeners.append(listener)
                }
            case .connection:
                endpoints.connections.append(socket.fd)
            }
        }
        // Passed sockets and --listen addresses are all served; the default address only
        // when neither gives zend anything to serve.
        var addresses = settings.addresses
        if addresses.isEmpty && endpoints.listeners.isEmpty && endpoints.connections.isEmpty {
            addresses = [ListenAddress(address: DaemonSettings.defaultAddress, proxied: false)]
        }
        do {
            for address in addresses {
                var listener = try open(address.address, into: &endpoints)
                listener.expectsProxyHeader = address.proxied
                endpoints.listeners.append(listener)
            }
            if let path = settings.controlPath {
                endpoints.controls.append(try open(.unix(path: path, mode: 0o600), into: &endpoints))
            }
        } catch {
            endpoints.closeListeners(logger: logger)
            throw error
        }
        return endpoints
    }

    /// Opens a listening socket zend owns (a unix socket's file is removed at exit).
    private func open(_ address: SocketAddress, into endpoints: inout Endpoints) throws(StartError) -> Listener {
        let opened: ListeningSocket
        do {
            opened = try Socket.openListener(on: address)
        } catch {
            throw StartError(message: "cannot listen on \(address): \(error)", errno: error.errno,
                             code: ExitCodes.unavailable)
        }
        // Port 0 asks the kernel for a free port: report the one it chose.
        let bound = (try? opened.fd.localAddress()).flatMap { $0 } ?? address
        if let file = opened.file {
            endpoints.ownedFiles.append(file)
            if case .unix(_, let mode) = address {
                let shown = SocketAddress.modeText(mode ?? Socket.defaultUnixSocketMode)
                logger.debug("created socket file \(file), mode \(shown)")
            }
        }
        return Listener(fd: opened.fd, address: bound.description, passedName: nil)
    }
}
