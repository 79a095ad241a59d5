import CZendShims
import Glibc

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
