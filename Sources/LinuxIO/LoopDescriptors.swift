import CZendShims
import Glibc

/// An eventfd: a counter another thread bumps to wake a loop.
public struct EventFD: ~Copyable, Sendable {
    /// The descriptor to watch for readability.
    public let fd: FileDescriptor

    public init() throws(SystemError) {
        let raw = try retryingInterrupts("eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
        fd = FileDescriptor(rawValue: raw)
    }

    deinit { fd.close() }

    /// Wakes the loop watching this eventfd (safe from any thread).
    public func signal() {
        var one: UInt64 = 1
        _ = Glibc.write(fd.rawValue, &one, 8)
    }

    /// Resets the counter; returns how many signals were pending.
    @discardableResult
    public func drain() -> UInt64 {
        var value: UInt64 = 0
        return Glibc.read(fd.rawValue, &value, 8) == 8 ? value : 0
    }
}

/// A timerfd on CLOCK_MONOTONIC: timers become readable descriptors in the loop.
public struct TimerFD: ~Copyable {
    /// The descriptor to watch for readability.
    public let fd: FileDescriptor

    public init() throws(SystemError) {
        let raw = try retryingInterrupts("timerfd_create") {
            timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        }
        fd = FileDescriptor(rawValue: raw)
    }

    deinit { fd.close() }

    /// Fires once at the absolute monotonic `deadline`, or is disarmed when nil.
    public func arm(at deadline: MonotonicInstant?) throws(SystemError) {
        var spec = itimerspec()
        if let deadline {
            // A zero it_value would disarm; a deadline already past must still fire.
            let nanoseconds = max(deadline.nanoseconds, 1)
            spec.it_value.tv_sec = Int(nanoseconds / 1_000_000_000)
            spec.it_value.tv_nsec = Int(nanoseconds % 1_000_000_000)
        }
        try retryingInterrupts("timerfd_settime") {
            timerfd_settime(fd.rawValue, Int32(TFD_TIMER_ABSTIME), &spec, nil)
        }
    }

    /// Clears the expiry count after the timer fired.
    public func acknowledge() {
        var expirations: UInt64 = 0
        _ = Glibc.read(fd.rawValue, &expirations, 8)
    }
}

/// A signalfd: blocked signals become readable descriptors in the loop.
public struct SignalFD: ~Copyable {
    /// The descriptor to watch for readability.
    public let fd: FileDescriptor

    /// Watches `signals`; they must already be blocked in every thread (see `Signals.block`).
    public init(_ signals: [Int32]) throws(SystemError) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        let raw = try retryingInterrupts("signalfd") { signalfd(-1, &set, Int32(SFD_NONBLOCK | SFD_CLOEXEC)) }
        fd = FileDescriptor(rawValue: raw)
    }

    deinit { fd.close() }

    /// The next pending signal number, or nil when none is pending.
    public func next() -> Int32? {
        var info = signalfd_siginfo()
        let size = MemoryLayout<signalfd_siginfo>.size
        guard Glibc.read(fd.rawValue, &info, size) == size else { return nil }
        return Int32(info.ssi_signo)
    }
}

/// Process-wide signal dispositions.
public enum Signals {
    /// Blocks `signals` in the calling thread; threads created afterwards inherit the mask.
    public static func block(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Ignores `SIGPIPE`: a write to a reset peer must be an error, not death.
    public static func ignoreBrokenPipe() {
        signal(SIGPIPE, SIG_IGN)
    }
}

/// A point on CLOCK_MONOTONIC, in nanoseconds.
public struct MonotonicInstant: Comparable, Hashable, Sendable {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// Now, on CLOCK_MONOTONIC.
    @inline(__always)
    public static func now() -> MonotonicInstant {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return MonotonicInstant(nanoseconds: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }

    public static func < (a: Self, b: Self) -> Bool { a.nanoseconds < b.nanoseconds }

    /// This instant plus `duration`, saturating at the end of time instead of overflowing.
    public func advanced(by duration: Duration) -> MonotonicInstant {
        MonotonicInstant(nanoseconds: Self.deadline(nanoseconds, plus: duration))
    }

    /// `start` nanoseconds plus `duration`, saturating instead of overflowing.
    @inline(__always)
    public static func deadline(_ start: Int64, plus duration: Duration) -> Int64 {
        let (sum, overflow) = start.addingReportingOverflow(duration.nanoseconds)
        return overflow ? .max : sum
    }

    /// Microseconds since boot, as systemd's `MONOTONIC_USEC=` wants.
    public var microseconds: UInt64 { UInt64(nanoseconds / 1000) }
}

/// Facts about the running process.
public enum ProcessFacts {
    /// CPUs this process may run on (its affinity mask), at least 1.
    public static var availableCPUs: Int { max(Int(zend_available_cpus()), 1) }

    /// The soft and hard limits on open files.
    public static func openFileLimits() -> (soft: UInt64, hard: UInt64) {
        var limit = rlimit()
        getrlimit(RLIMIT_NOFILE_VALUE, &limit)
        return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
    }

    /// Raises the soft open-file limit to the hard limit (as systemd advises daemons to).
    @discardableResult
    public static func raiseOpenFileLimit() -> UInt64 {
        var limit = rlimit()
        getrlimit(RLIMIT_NOFILE_VALUE, &limit)
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(RLIMIT_NOFILE_VALUE, &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }

    /// This process's resident set size in bytes, from /proc/self/statm.
    public static func residentBytes(of pid: Int32? = nil) -> Int? {
        let path = pid.map { "/proc/\($0)/statm" } ?? "/proc/self/statm"
        guard let bytes = try? FileDescriptor.readFile(path) else { return nil }
        let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

extension Duration {
    /// Whole nanoseconds, saturating (monotonic deadlines are kept in nanoseconds).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (seconds < 0 ? .min : .max) : scaled.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }

    /// Whole milliseconds (for poll and epoll timeouts), clamped to `Int32`.
    public var milliseconds: Int32 { Int32(clamping: nanoseconds / 1_000_000) }
}

private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
