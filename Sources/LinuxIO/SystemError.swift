import Glibc

/// A failed system call: which call, and the errno it set.
public struct SystemError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The call that failed, e.g. `"accept4"`.
    public var call: String
    /// The errno value.
    public var errno: Int32

    @inlinable
    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// `strerror` text for the errno, e.g. "Too many open files".
    public var reason: String { String(cString: strerror(errno)) }

    public var description: String { "\(call): \(reason) (errno \(errno))" }

    /// The peer reset the connection (`ECONNRESET`, or `EPIPE` on a send after it).
    public var isReset: Bool { errno == ECONNRESET || errno == EPIPE }
}

/// The outcome of a non-blocking operation: done, or it would have blocked (`EAGAIN`).
@frozen
public enum IOResult<Value> {
    case processed(Value)
    case wouldBlock
}

/// Runs `body` until it stops failing with `EINTR`; turns -1 into a `SystemError` named `call`.
@inline(__always)
@discardableResult
func retryingInterrupts<T: FixedWidthInteger>(_ call: String, _ body: () -> T) throws(SystemError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = Glibc.errno
        if code == EINTR { continue }
        throw SystemError(call, errno: code)
    }
}

/// Like `retryingInterrupts`, but `EAGAIN`/`EWOULDBLOCK` become `.wouldBlock`.
/// Inlinable, as are the hot-path calls built on it: a call across modules per read and
/// per send would cost more than the wrapper does.
@inlinable @inline(__always)
func nonBlocking<T: FixedWidthInteger>(_ call: String, _ body: () -> T) throws(SystemError) -> IOResult<T> {
    while true {
        let result = body()
        if result != -1 { return .processed(result) }
        let code = Glibc.errno
        if code == EINTR { continue }
        if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
        throw SystemError(call, errno: code)
    }
}
