import LinuxIO
import LogEvents
import Logging

/// At most `perSecond` log lines a second for one kind of event; the lines beyond are
/// counted, and the count is reported once the next second begins, so one misbehaving
/// client cannot flood the journal (journald would then rate-limit the whole service and
/// hide the lines that matter).
struct LogRateLimit {
    let perSecond: Int
    private var windowStart = MonotonicInstant.zero
    private var loggedInWindow = 0
    /// Lines not logged since the last report.
    private(set) var suppressed = 0

    init(perSecond: Int) {
        self.perSecond = perSecond
    }

    /// Whether a line may be logged at `now`; if not, it is counted as suppressed.
    mutating func admit(now: MonotonicInstant) -> Bool {
        if now >= windowEnd {
            windowStart = now
            loggedInWindow = 0
        }
        guard loggedInWindow < perSecond else {
            suppressed += 1
            return false
        }
        loggedInWindow += 1
        return true
    }

    /// For lines that carry the count themselves: nil when this one must not be logged;
    /// else how many were not logged since the last (the count starts again).
    mutating func admitCounting(now: MonotonicInstant) -> Int? {
        guard admit(now: now) else { return nil }
        defer { suppressed = 0 }
        return suppressed
    }

    /// When the current second ends (the suppressed count is due then).
    var windowEnd: MonotonicInstant { windowStart.advanced(byNanoseconds: 1_000_000_000) }

    /// The suppressed count, if it is due at `now`; it is then reset.
    mutating func takeSuppressed(now: MonotonicInstant) -> Int? {
        guard suppressed > 0, now >= windowEnd else { return nil }
        defer { suppressed = 0 }
        return suppressed
    }
}

/// Problems of one client (too long, partial then closed, too slow): `notice` lines that
/// name the client, rate-limited across the reactor.
extension Reactor {
    mutating func reportClientProblem(_ message: Logger.Message, _ slot: Int32, _ details: Logger.Metadata) {
        guard clientProblems.admit(now: now) else { return }
        let connection = table.slots + Int(slot)
        var metadata = details
        metadata[LifecycleEvent.metadataKey] = .string(LifecycleEvent.clientError.rawValue)
        metadata["client_address"] = "\(connection.pointee.peer)"
        metadata["connection_id"] = "\(connection.pointee.id)"
        if connection.pointee.proxy.isSet { metadata["proxy_address"] = "\(connection.pointee.proxy)" }
        logger.notice(message, metadata: metadata)
    }

    /// Reports how many client problems were not logged, once their second is over.
    mutating func reportSuppressedClientProblems() {
        guard let count = clientProblems.takeSuppressed(now: now) else { return }
        logger.notice("more client problems were not logged", metadata: [
            "suppressed": "\(count)", "logged_per_second": "\(clientProblems.perSecond)",
        ])
    }
}
