import CSystemd
import Glibc
import LinuxIO

/// Tells the service manager how zend is doing (`sd_notify`): readiness, status,
/// reloads, shutdown, watchdog keep-alives. Does nothing outside systemd.
public struct ServiceNotifier: Sendable {
    /// True when systemd listens (`NOTIFY_SOCKET` is set).
    public let isEnabled: Bool

    public init() {
        isEnabled = getenv("NOTIFY_SOCKET") != nil
    }

    /// Sends newline-separated `KEY=value` assignments; returns false if it failed.
    @discardableResult
    public func send(_ assignments: [String]) -> Bool {
        guard isEnabled else { return false }
        return sd_notify(0, assignments.joined(separator: "\n")) > 0
    }

    /// `READY=1` with a status line: every listener is open and served.
    public func ready(status: String) {
        send(["READY=1", "STATUS=\(status)"])
    }

    /// A human-readable status line (`systemctl status` shows it).
    public func status(_ text: String) {
        send(["STATUS=\(text)"])
    }

    /// `RELOADING=1` with the monotonic time, as systemd wants before a reload.
    public func reloading() {
        send(["RELOADING=1", "MONOTONIC_USEC=\(MonotonicInstant.now().microseconds)", "STATUS=Reloading the aphorism file"])
    }

    /// `STOPPING=1`: shutdown has begun.
    public func stopping(status: String) {
        send(["STOPPING=1", "STATUS=\(status)"])
    }

    /// A failure at start: the errno (if any) and a status line explaining it.
    public func failed(status: String, errno code: Int32?) {
        var assignments = ["STATUS=\(status)"]
        if let code { assignments.append("ERRNO=\(code)") }
        send(assignments)
    }

    /// The keep-alive ping of the watchdog.
    public func watchdog() {
        send(["WATCHDOG=1"])
    }

    /// The watchdog timeout systemd expects pings within (`WATCHDOG_USEC`), if enabled
    /// for this process.
    public static func watchdogTimeout() -> Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(clamping: microseconds))
    }
}
