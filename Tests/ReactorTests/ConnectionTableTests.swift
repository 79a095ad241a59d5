import Glibc
import Testing
@testable import Reactor

@Suite("Connection table")
struct ConnectionTableTests {
    @Test("a reused slot has a new generation, so a stale epoll token cannot match it")
    func generationOnReuse() {
        var table = ConnectionTable(capacity: 4)
        let first = table.allocate()!
        table.slots[Int(first)].fd = 7
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
        for (time, slot) in slots.enumerated() { table.touch(slot, .idle, now: Int64(time)) }
        #expect(table.head(.idle) == slots[0])
        table.touch(slots[0], .idle, now: 10)
        #expect(table.head(.idle) == slots[1])
        table.unlink(slots[1])
        #expect(table.head(.idle) == slots[2])
        table.unlink(slots[2])
        #expect(table.head(.idle) == slots[0])
        table.unlink(slots[0])
        #expect(table.head(.idle) == nil)
    }

    @Test("moving a connection to the linger list takes it off the idle list")
    func lingerList() {
        var table = ConnectionTable(capacity: 8)
        let a = table.allocate()!, b = table.allocate()!
        table.touch(a, .idle, now: 1)
        table.touch(b, .idle, now: 2)
        table.touch(a, .linger, now: 3)
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
        let a = pool.take(), b = pool.take()
        #expect(pool.inUse == 2)
        pool.give(a)
        pool.give(b)
        #expect(pool.inUse == 0)
        #expect(pool.cached == 1)
        let c = pool.take()
        #expect(c == a)
        pool.give(c)
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
