import Glibc
import Testing
import LinuxIO
@testable import Reactor

private func instant(_ milliseconds: Int) -> MonotonicInstant { MonotonicInstant(nanoseconds: Int64(milliseconds) * 1_000_000) }

@Suite("Connection table")
struct ConnectionTableTests {
    @Test("a reused slot has a new generation, so a stale epoll token cannot match it")
    func generationOnReuse() {
        var table = ConnectionTable(capacity: 4)
        let first = table.allocate()!
        table.slots[Int(first)].fd = FileDescriptor(rawValue: 7)
        let staleGeneration = table.slots[Int(first)].generation
        table.release(first)
        let second = table.allocate()!
        #expect(second == first)
        #expect(table.slots[Int(second)].generation != staleGeneration)
        #expect(!table.slots[Int(second)].isOpen)
    }

    @Test("the table refuses connections beyond its capacity and counts open ones")
    func capacity() {
        var table = ConnectionTable(capacity: 2)
        let a = table.allocate(), b = table.allocate()
        #expect(a != nil && b != nil)
        #expect(table.allocate() == nil)
        #expect(table.count == 2)
        table.release(a!)
        #expect(table.count == 1)
        #expect(table.allocate() == a)
    }

    @Test("the idle list is ordered by last activity: a touch moves a connection to the tail")
    func idleOrder() {
        var table = ConnectionTable(capacity: 8)
        let slots = (0 ..< 3).map { _ in table.allocate()! }
        for (time, slot) in slots.enumerated() { table.wait(slot, for: .idle, now: instant(time)) }
        #expect(table.head(.idle) == slots[0])
        table.touch(slots[0], now: instant(10))
        #expect(table.head(.idle) == slots[1])
        table.unlink(slots[1])
        #expect(table.head(.idle) == slots[2])
        table.unlink(slots[2])
        #expect(table.head(.idle) == slots[0])
        table.unlink(slots[0])
        #expect(table.head(.idle) == nil)
    }

    @Test("activity within the timer resolution of the last is not recorded again; later activity is")
    func resolution() {
        var table = ConnectionTable(capacity: 4)
        let a = table.allocate()!, b = table.allocate()!
        table.wait(a, for: .idle, now: instant(1))
        table.wait(b, for: .idle, now: instant(2))
        table.touch(a, now: MonotonicInstant(nanoseconds: 1_500_000))
        #expect(table.head(.idle) == a && table.slots[Int(a)].lastActive == instant(1))
        table.touch(a, now: instant(3))
        #expect(table.head(.idle) == b && table.slots[Int(a)].lastActive == instant(3))
    }

    @Test("a partial request's deadline counts from its first byte: activity does not move it")
    func requestList() {
        var table = ConnectionTable(capacity: 8)
        let a = table.allocate()!, b = table.allocate()!
        table.wait(a, for: .idle, now: instant(1))
        table.wait(a, for: .request, now: instant(1))
        table.wait(b, for: .request, now: instant(2))
        table.touch(a, now: instant(50))
        #expect(table.head(.request) == a && table.slots[Int(a)].requestSince == instant(1))
        #expect(table.head(.idle) == a && table.slots[Int(a)].lastActive == instant(50),
                "the idle deadline still moves with activity")
        table.endRequest(a)
        #expect(table.head(.request) == b && table.head(.idle) == a)
        table.unlink(b)
        #expect(table.head(.request) == nil)
    }

    @Test("moving a connection to the linger list takes it off the idle list")
    func lingerList() {
        var table = ConnectionTable(capacity: 8)
        let a = table.allocate()!, b = table.allocate()!
        table.wait(a, for: .idle, now: instant(1))
        table.wait(b, for: .idle, now: instant(2))
        table.wait(a, for: .linger, now: instant(3))
        #expect(table.head(.idle) == b)
        #expect(table.head(.linger) == a)
        #expect(table.slots[Int(a)].timeout == .linger)
    }
}

@Suite("Buffer pool")
struct BufferPoolTests {
    @Test("returned buffers are reused, and only up to the cache size is kept")
    func reuse() {
        var pool = BufferPool(bufferSize: 64, keep: 1)
        let a = pool.take()!, b = pool.take()!
        #expect(pool.inUse == 2)
        pool.give(a)
        pool.give(b)
        #expect(pool.inUse == 0)
        #expect(pool.cached == 1)
        let c = pool.take()!
        #expect(c == a)
        pool.give(c)
    }
}

@Suite("Buffer budget")
struct BufferBudgetTests {
    @Test("buffers handed out count against the budget; one past it is refused, and a buffer given back frees its share")
    func budget() {
        let budget = BufferBudget(limit: 128)
        var pool = BufferPool(bufferSize: 64, keep: 4, budget: budget)
        let a = pool.take(), b = pool.take()
        #expect(a != nil && b != nil && budget.inUse == 128)
        #expect(pool.take() == nil, "a third 64-byte buffer passes 128 bytes")
        #expect(budget.inUse == 128 && pool.inUse == 2)
        pool.give(a!)
        let c = pool.take()
        #expect(c != nil && budget.inUse == 128)
        pool.give(b!)
        pool.give(c!)
        #expect(budget.inUse == 0)
    }
}

@Suite("Buffer window")
struct BufferWindowTests {
    @Test("a window holds no buffer until bytes are written, and gives it back once they are consumed")
    func takeAndRelease() {
        var pool = BufferPool(bufferSize: 64, keep: 4)
        var window = BufferWindow()
        #expect(window.buffer == nil && window.count == 0)
        let space = window.reserve(from: &pool, minimumSpace: 16)!
        #expect(space.count == 64 && pool.inUse == 1)
        space.copyBytes(from: Array("Simple?".utf8))
        window.commit(7)
        window.consume(3)
        #expect(Array(window.bytes) == Array("ple?".utf8))
        window.releaseIfEmpty(to: &pool)
        #expect(pool.inUse == 1, "bytes still wait: the buffer stays")
        window.consume(4)
        window.releaseIfEmpty(to: &pool)
        #expect(window.buffer == nil && pool.inUse == 0)
    }

    @Test("waiting bytes move to the front only when the free space falls below the minimum")
    func compaction() {
        var pool = BufferPool(bufferSize: 64, keep: 4)
        var window = BufferWindow()
        _ = window.reserve(from: &pool, minimumSpace: 16)
        window.commit(60)
        window.consume(58)
        let roomy = window.reserve(from: &pool, minimumSpace: 4)
        #expect(roomy?.count == 4, "4 bytes free is enough: nothing moves")
        let compacted = window.reserve(from: &pool, minimumSpace: 16)
        #expect(compacted?.count == 62 && window.count == 2)
        window.release(to: &pool)
        #expect(pool.inUse == 0)
    }
}

@Suite("Peer addresses")
struct PeerAddressTests {
    private func describe(_ text: String, port: UInt16) -> String {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            var v6 = sockaddr_in6()
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            inet_pton(AF_INET6, text, &v6.sin6_addr)
            withUnsafeBytes(of: v6) { raw.copyMemory(from: $0) }
        }
        return PeerAddress(&storage).description
    }

    @Test("IPv4 clients of a dual-stack listener are shown as IPv4")
    func mapped() {
        #expect(describe("::ffff:127.0.0.1", port: 5000) == "127.0.0.1:5000")
        #expect(describe("::1", port: 5000) == "[::1]:5000")
        #expect(describe("2001:db8::ffff:0:1", port: 7) == "[2001:db8::ffff:0:1]:7")
    }
}

@Suite("Shared counters")
struct SharedCountersTests {
    @Test("the connection limit admits exactly the limit: a reservation past it is refused and counts nothing")
    func limit() {
        let shared = SharedCounters(maxConnections: 3)
        #expect((0 ..< 3).allSatisfy { _ in shared.reserveConnection() })
        #expect(!shared.reserveConnection())
        #expect(shared.connections.load(ordering: .relaxed) == 3)
        #expect(shared.releaseConnection() == 2)
        #expect(shared.reserveConnection())
        #expect(!shared.reserveConnection())
    }
}
