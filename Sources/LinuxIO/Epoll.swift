import CZendShims
import Glibc

/// An epoll instance: the reactor's poller, behind a seam of four calls.
public struct Epoll: ~Copyable {
    /// Readiness and trigger flags for `epoll_ctl`, and the readiness reported back.
    /// Computed and inlinable, so the loop's flag tests compile to constants.
    public struct Events: OptionSet, Sendable {
        public let rawValue: UInt32
        @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

        @inlinable public static var input: Events { Events(rawValue: EPOLLIN.rawValue) }
        @inlinable public static var output: Events { Events(rawValue: EPOLLOUT.rawValue) }
        /// The peer shut down its write side (learned without a read).
        @inlinable public static var readHangup: Events { Events(rawValue: EPOLLRDHUP.rawValue) }
        @inlinable public static var hangup: Events { Events(rawValue: EPOLLHUP.rawValue) }
        @inlinable public static var error: Events { Events(rawValue: EPOLLERR.rawValue) }
        @inlinable public static var edgeTriggered: Events { Events(rawValue: EPOLLET.rawValue) }
        /// Wake only one of the epoll instances sharing this fd (listeners shared by reactors).
        @inlinable public static var exclusive: Events { Events(rawValue: EPOLLEXCLUSIVE.rawValue) }
    }

    /// The epoll descriptor.
    public let fd: FileDescriptor
    /// Where `epoll_wait` writes: owned here, so `epoll_event` never leaves this file.
    private let events: UnsafeMutableBufferPointer<epoll_event>

    /// A new epoll instance returning at most `capacity` events per `wait`.
    public init(capacity: Int = 256) throws(SystemError) {
        let raw = try retryingInterrupts("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        fd = FileDescriptor(rawValue: raw)
        events = .allocate(capacity: max(capacity, 1))
    }

    deinit {
        fd.close()
        events.deallocate()
    }

    /// Starts watching `target` for `events`; `data` comes back with each event.
    public func add(_ target: FileDescriptor, events: Events, data: UInt64) throws(SystemError) {
        try control(EPOLL_CTL_ADD, "epoll_ctl(ADD)", target, events, data)
    }

    /// Changes what `target` is watched for.
    public func modify(_ target: FileDescriptor, events: Events, data: UInt64) throws(SystemError) {
        try control(EPOLL_CTL_MOD, "epoll_ctl(MOD)", target, events, data)
    }

    /// Stops watching `target`.
    public func remove(_ target: FileDescriptor) throws(SystemError) {
        try control(EPOLL_CTL_DEL, "epoll_ctl(DEL)", target, [], 0)
    }

    private func control(_ operation: Int32, _ call: String, _ target: FileDescriptor,
                         _ events: Events, _ data: UInt64) throws(SystemError) {
        var event = epoll_event()
        event.events = events.rawValue
        event.data.u64 = data
        try retryingInterrupts(call) { epoll_ctl(fd.rawValue, operation, target.rawValue, &event) }
    }

    /// Waits up to `timeout` milliseconds (-1: forever) for events; `EINTR` is an empty result.
    /// The result reads this poller's own buffer, so it is valid until the next `wait`.
    @inline(__always)
    public func wait(timeout: Int32) throws(SystemError) -> ReadyEvents {
        let count = epoll_wait(fd.rawValue, events.baseAddress, Int32(events.count), timeout)
        if count == -1 {
            if errno == EINTR { return ReadyEvents() }
            throw SystemError("epoll_wait", errno: errno)
        }
        return ReadyEvents(base: events.baseAddress, count: Int(count))
    }

    /// The events one `wait` returned: each the `data` given at registration and what is ready.
    public struct ReadyEvents: RandomAccessCollection {
        @usableFromInline let base: UnsafeMutablePointer<epoll_event>?
        public let count: Int

        @usableFromInline init(base: UnsafeMutablePointer<epoll_event>?, count: Int) {
            self.base = base
            self.count = count
        }

        /// No events.
        public init() {
            self.init(base: nil, count: 0)
        }

        public var startIndex: Int { 0 }
        public var endIndex: Int { count }

        @inlinable
        public subscript(position: Int) -> (token: UInt64, events: Events) {
            (base![position].data.u64, Events(rawValue: base![position].events))
        }
    }
}
