import Glibc
import LinuxIO
import LogEvents
import Logging
import Reactor

/// The control socket behind `zen stats`: a client sends `stats` or `stats json` (one
/// line, or the bytes before it shuts its side) and gets the report, then the connection
/// closes. Only root and zend's own user are answered (checked with `SO_PEERCRED`, on top
/// of the socket file's mode), so the figures are an admin's.
///
/// It runs on the supervisor's thread with an epoll set of its own, which the supervisor
/// watches as one descriptor. Counters come from the reactors a round at a time
/// (`ReactorGroup.requestStats`): a client is answered from a round asked for after its
/// request arrived, so what it did before asking is counted.
final class ControlServer {
    /// The report forms a client can ask for.
    enum Format {
        case text, json
    }

    private struct Client {
        var fd: FileDescriptor
        var request: [UInt8] = []
        var deadline: MonotonicInstant
        /// Why this client will be refused, once its request is read (reading it first
        /// means closing does not reset the connection before the client sees the reason).
        var refusal: String?
        /// Set once the request is read: the form asked for, and the last stats round
        /// begun before it (whose figures may predate the request).
        var waiting: (format: Format, after: UInt64)?
    }

    /// A client must send its request within this long.
    static let requestTimeout = Duration.seconds(2)
    /// A round of reactor figures waits at most this long for a stuck reactor.
    static let roundTimeout = Duration.seconds(1)
    /// Clients served at once; more are closed at once.
    static let maxClients = 16
    static let maxRequestBytes = 64

    private let poller: Epoll
    private let timer: TimerFD
    private let listeners: [FileDescriptor]
    private let logger: Logger
    private let ownUser = geteuid()
    private var clients: [Int32: Client] = [:]
    private var round: (number: UInt64, deadline: MonotonicInstant)?
    private var lastRound: UInt64 = 0
    private let peerStorage = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 1)

    private static let timerToken = UInt64.max
    private static let listenerBase: UInt64 = 1 << 32

    /// The descriptor the supervisor watches: readable when a listener or client is.
    var fd: FileDescriptor { poller.fd }

    init(listeners: [FileDescriptor], logger: Logger) throws(SystemError) {
        poller = try Epoll(capacity: 32)
        timer = try TimerFD()
        self.listeners = listeners
        self.logger = logger
        try poller.add(timer.fd, events: .input, data: Self.timerToken)
        for (index, listener) in listeners.enumerated() {
            try poller.add(listener, events: .input, data: Self.listenerBase + UInt64(index))
        }
    }

    deinit {
        for client in clients.values { client.fd.close() }
        peerStorage.deallocate()
    }

    /// Accepts, reads and answers what is ready; `facts` is asked only to build a report.
    func handleEvents(group: ReactorGroup, facts: () -> ServerFacts) {
        let now = MonotonicInstant.now()
        guard let events = try? poller.wait(timeout: 0) else { return }
        for (token, _) in events {
            if token == Self.timerToken {
                timer.acknowledge()
            } else if token >= Self.listenerBase {
                accept(from: listeners[Int(token - Self.listenerBase)], now: now)
            } else {
                read(Int32(truncatingIfNeeded: token))
            }
        }
        for (raw, client) in clients where client.waiting == nil && client.deadline <= now {
            reply(raw, client.refusal ?? "error: no request within \(Self.requestTimeout.components.seconds) s\n")
        }
        progress(group: group, facts: facts)
    }

    /// Answers the clients a finished stats round covers, and starts the next round when
    /// clients wait for one; call when the reactors have published (or time has passed).
    func progress(group: ReactorGroup, facts: () -> ServerFacts) {
        let now = MonotonicInstant.now()
        if let current = round, group.hasPublished(round: current.number) || current.deadline <= now {
            round = nil
            let stats = group.latestStats
            let stale = group.hasPublished(round: current.number) ? 0 : group.count
            var report: StatsReport?
            for (raw, client) in clients {
                guard let waiting = client.waiting, waiting.after < current.number else { continue }
                let built = report ?? StatsReport(facts: facts(), reactors: stats, staleReactors: stale)
                report = built
                reply(raw, waiting.format == .json ? built.json : built.text)
            }
        }
        if round == nil, clients.values.contains(where: { $0.waiting != nil }) {
            lastRound = group.requestStats()
            round = (lastRound, now.advanced(by: Self.roundTimeout))
        }
        var next = clients.values.filter { $0.waiting == nil }.map(\.deadline).min()
        if let round { next = min(next ?? round.deadline, round.deadline) }
        try? timer.arm(at: next)
    }

    private func accept(from listener: FileDescriptor, now: MonotonicInstant) {
        while case .processed(let client)? = try? listener.accept(peer: peerStorage) {
            guard clients.count < Self.maxClients else {
                client.close()
                logger.notice("control socket busy; closing a new client", metadata: ["clients": "\(clients.count)"])
                continue
            }
            var refusal: String?
            let peer = try? client.peerCredentials()
            if peer.map({ $0.uid != 0 && $0.uid != ownUser }) ?? true {
                refusal = "error: permission denied: the control socket answers root only\n"
                logger.notice("control socket: refused a client that is not root", metadata: [
                    "uid": "\(peer.map { String($0.uid) } ?? "unknown")",
                    "pid": "\(peer.map { String($0.pid) } ?? "unknown")",
                ])
            }
            do {
                try poller.add(client, events: [.input, .readHangup], data: UInt64(UInt32(bitPattern: client.rawValue)))
            } catch {
                client.close()
                continue
            }
            clients[client.rawValue] = Client(fd: client, deadline: now.advanced(by: Self.requestTimeout),
                                              refusal: refusal)
        }
    }

    private func read(_ raw: Int32) {
        guard var client = clients[raw], client.waiting == nil else { return }
        var buffer = [UInt8](repeating: 0, count: 256)
        var ended = false
        while true {
            let result = buffer.withUnsafeMutableBytes { try? client.fd.read(into: $0) }
            switch result {
            case .processed(let count)? where count > 0:
                client.request += buffer[..<count]
                if client.request.count > Self.maxRequestBytes {
                    reply(raw, "error: request too long\n")
                    return
                }
                continue
            case .processed?, nil:
                ended = true
            case .wouldBlock?:
                break
            }
            break
        }
        guard let end = client.request.firstIndex(of: UInt8(ascii: "\n")) ?? (ended ? client.request.endIndex : nil) else {
            clients[raw] = client
            return
        }
        if let refusal = client.refusal {
            reply(raw, refusal)
            return
        }
        var line = client.request[..<end]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        let command = String(decoding: line, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: true)
        switch command {
        case ["stats"]: client.waiting = (.text, lastRound)
        case ["stats", "json"]: client.waiting = (.json, lastRound)
        default:
            reply(raw, "error: unknown request \(TextEscaping.json(String(decoding: line.prefix(Self.maxRequestBytes), as: UTF8.self))); ask \"stats\" or \"stats json\"\n")
            return
        }
        clients[raw] = client
    }

    /// Sends `text` (the kernel's unix socket buffer holds a whole report) and closes.
    private func reply(_ raw: Int32, _ text: String) {
        guard let client = clients.removeValue(forKey: raw) else { return }
        Self.send(text, to: client.fd)
        try? poller.remove(client.fd)
        client.fd.close()
    }

    private static func send(_ text: String, to fd: FileDescriptor) {
        var text = text
        text.withUTF8 { bytes in _ = try? fd.send(UnsafeRawBufferPointer(bytes)) }
    }

    /// Closes every client and stops watching the listeners (they belong to the caller).
    func close() {
        for raw in Array(clients.keys) { reply(raw, "error: zend is stopping\n") }
        for listener in listeners { try? poller.remove(listener) }
    }
}
