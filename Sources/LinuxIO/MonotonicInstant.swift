import Glibc

/// A point on CLOCK_MONOTONIC, in nanoseconds.
public struct MonotonicInstant: Comparable, Hashable, Sendable {
    public var nanoseconds: Int64

    @inlinable
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// The clock's origin (boot), earlier than any reading.
    public static let zero = MonotonicInstant(nanoseconds: 0)
    /// Later than any reading: a deadline that never comes.
    public static let never = MonotonicInstant(nanoseconds: .max)

    /// Now, on CLOCK_MONOTONIC.
    @inline(__always)
    public static func now() -> MonotonicInstant {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return MonotonicInstant(nanoseconds: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }

    public static func < (a: Self, b: Self) -> Bool { a.nanoseconds < b.nanoseconds }

    /// The time from `earlier` to this instant.
    public func duration(since earlier: MonotonicInstant) -> Duration {
        .nanoseconds(nanoseconds &- earlier.nanoseconds)
    }

    /// This instant plus `duration`, saturating at the end of time instead of overflowing.
    public func advanced(by duration: Duration) -> MonotonicInstant {
        MonotonicInstant(nanoseconds: Self.deadline(nanoseconds, plus: duration))
    }

    /// This instant plus `nanoseconds`, saturating; for loops that convert their
    /// durations once (`Duration` arithmetic is 128-bit).
    @inlinable
    public func advanced(byNanoseconds nanoseconds: Int64) -> MonotonicInstant {
        let (sum, overflow) = self.nanoseconds.addingReportingOverflow(nanoseconds)
        return MonotonicInstant(nanoseconds: overflow ? .max : sum)
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
