import CZendShims
import Glibc

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
