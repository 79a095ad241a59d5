import LinuxIO

/// A connection's readiness and lifecycle flags: the state machine as data you can print.
struct ConnectionState: OptionSet, CustomStringConvertible {
    let rawValue: UInt16

    /// The kernel may hold unread bytes (an input edge arrived and no read has come up short since).
    static let readable = ConnectionState(rawValue: 1 << 0)
    /// The kernel may take more bytes (no `EAGAIN` on send since the last output edge).
    static let writable = ConnectionState(rawValue: 1 << 1)
    /// `EPOLLRDHUP` seen: once a read comes up short, no more bytes will arrive.
    static let peerClosed = ConnectionState(rawValue: 1 << 2)
    /// All input has been read; answer what is owed, then close.
    static let endOfInput = ConnectionState(rawValue: 1 << 3)
    /// `EPOLLOUT` is in the epoll mask (armed after the first `EAGAIN` on send).
    static let outputArmed = ConnectionState(rawValue: 1 << 4)
    /// The send buffer cannot take the next answer: neither answer nor read until it drains.
    static let paused = ConnectionState(rawValue: 1 << 5)
    /// On the ready list, to be served again after the others.
    static let queued = ConnectionState(rawValue: 1 << 6)
    /// A final error answer is being flushed; then the write side is shut.
    static let closing = ConnectionState(rawValue: 1 << 7)
    /// Write side shut after an error; input is discarded until EOF or the linger timeout,
    /// so closing with unread input does not turn into a reset that destroys the error answer.
    static let lingering = ConnectionState(rawValue: 1 << 8)

    var description: String {
        let names = ["readable", "writable", "peerClosed", "endOfInput", "outputArmed",
                     "paused", "queued", "closing", "lingering"]
        let set = names.indices.filter { rawValue & (1 << $0) != 0 }.map { names[$0] }
        return "[" + set.joined(separator: ",") + "]"
    }
}

/// Which timeout a connection is waiting on.
enum TimeoutKind: UInt8 {
    case none = 0
    /// The idle timeout (during a drain: the quiet grace).
    case idle = 1
    /// The linger timeout after an error answer.
    case linger = 2
}

/// One slot of the connection table: everything zend knows about one client.
///
/// Plain data (no references), so slots live in one raw array and the hot path
/// touches them in place without reference counting.
struct Connection {
    /// The socket; `FileDescriptor.closed` marks a free slot.
    var fd = FileDescriptor.closed
    /// Bumped at every close; epoll tokens carry it, so an event for a closed
    /// connection is never applied to a new one that reused the fd or the slot.
    var generation: UInt32 = 0
    var state: ConnectionState = []
    var timeout: TimeoutKind = .none
    var id: UInt64 = 0

    /// Received bytes not yet answered.
    var input = BufferWindow()
    /// Answers not yet sent.
    var output = BufferWindow()

    var requests: UInt64 = 0
    var bytesReceived: UInt64 = 0
    var bytesSent: UInt64 = 0
    /// The last byte in or out (for the idle timeout).
    var lastActive = MonotonicInstant.zero
    var opened = MonotonicInstant.zero

    // Links of the timeout list this connection is on.
    var previous: Int32 = -1
    var next: Int32 = -1

    var peer = PeerAddress()

    var isOpen: Bool { fd.rawValue >= 0 }
}

/// The connection table: slots for up to `capacity` connections, reused through a free
/// list, plus the timeout lists threaded through them.
///
/// The two timeout lists are ordered by last activity (every touch moves a connection
/// to the tail), so the head is always the next to expire and the loop needs one
/// timer per list, not one per connection.
struct ConnectionTable: ~Copyable {
    let capacity: Int
    /// The slots; index with `slots[i]` to touch a connection in place.
    let slots: UnsafeMutablePointer<Connection>
    private var initialized = 0
    private var freeSlots: [Int32] = []
    /// Open connections.
    private(set) var count = 0

    private var heads: (idle: Int32, linger: Int32) = (-1, -1)
    private var tails: (idle: Int32, linger: Int32) = (-1, -1)

    init(capacity: Int, resolution: Int64 = 1_000_000) {
        self.capacity = max(capacity, 1)
        self.resolution = resolution
        // Virtual memory only: pages are touched as slots are first used.
        slots = .allocate(capacity: self.capacity)
    }

    deinit {
        slots.deinitialize(count: initialized)
        slots.deallocate()
    }

    /// A free slot, with its generation already advanced past any earlier use; nil when full.
    mutating func allocate() -> Int32? {
        let index: Int32
        if let reused = freeSlots.popLast() {
            index = reused
        } else if initialized < capacity {
            index = Int32(initialized)
            (slots + initialized).initialize(to: Connection())
            initialized += 1
        } else {
            return nil
        }
        count += 1
        return index
    }

    /// Returns a closed connection's slot; its buffers must already be released.
    mutating func release(_ index: Int32) {
        precondition(slots[Int(index)].timeout == .none, "remove from its timeout list first")
        let generation = slots[Int(index)].generation &+ 1
        slots[Int(index)] = Connection()
        slots[Int(index)].generation = generation
        freeSlots.append(index)
        count -= 1
    }

    /// The first connection on a timeout list (the one idle longest), or nil.
    func head(_ kind: TimeoutKind) -> Int32? {
        let index = kind == .linger ? heads.linger : heads.idle
        return index >= 0 ? index : nil
    }

    /// Puts the connection at the tail of `kind`'s list with `now` as its last activity,
    /// taking it off whatever list it was on.
    ///
    /// Activity within `resolution` of the last recorded one is not recorded again: a busy
    /// connection then costs one comparison per read instead of a move to the tail, and a
    /// timeout still fires within `resolution` of exact (never late, at most that early).
    @inline(__always)
    mutating func touch(_ index: Int32, _ kind: TimeoutKind, now: MonotonicInstant) {
        let slot = slots + Int(index)
        if slot.pointee.timeout == kind, now.nanoseconds &- slot.pointee.lastActive.nanoseconds < resolution {
            return
        }
        slot.pointee.lastActive = now
        if slot.pointee.timeout == kind, tail(kind) == index { return }
        unlink(index)
        slot.pointee.timeout = kind
        let last = tail(kind)
        slot.pointee.previous = last
        slot.pointee.next = -1
        if last >= 0 {
            slots[Int(last)].next = index
        } else {
            setHead(kind, index)
        }
        setTail(kind, index)
    }

    /// How close two activities may be to count as one, in nanoseconds.
    let resolution: Int64

    /// The resolution for an idle timeout: a thousandth of it, from 1 to 10 ms (a 60 s
    /// timeout may fire 10 ms early, a 0.3 s one 1 ms early; the drain's quiet grace and
    /// the linger timeout share it).
    static func resolution(for idleTimeout: Duration) -> Int64 {
        min(max(idleTimeout.nanoseconds / 1000, 1_000_000), 10_000_000)
    }

    /// Takes the connection off its timeout list, if any.
    @inline(__always)
    mutating func unlink(_ index: Int32) {
        let slot = slots + Int(index)
        let kind = slot.pointee.timeout
        guard kind != .none else { return }
        let previous = slot.pointee.previous, next = slot.pointee.next
        if previous >= 0 { slots[Int(previous)].next = next } else { setHead(kind, next) }
        if next >= 0 { slots[Int(next)].previous = previous } else { setTail(kind, previous) }
        slot.pointee.previous = -1
        slot.pointee.next = -1
        slot.pointee.timeout = .none
    }

    private func tail(_ kind: TimeoutKind) -> Int32 { kind == .linger ? tails.linger : tails.idle }
    private mutating func setHead(_ kind: TimeoutKind, _ index: Int32) {
        if kind == .linger { heads.linger = index } else { heads.idle = index }
    }
    private mutating func setTail(_ kind: TimeoutKind, _ index: Int32) {
        if kind == .linger { tails.linger = index } else { tails.idle = index }
    }

    /// Indices of every open connection (for drains and shutdown; not a hot path).
    var openIndices: [Int32] {
        (0 ..< initialized).compactMap { slots[$0].isOpen ? Int32($0) : nil }
    }
}
