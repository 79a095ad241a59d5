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
