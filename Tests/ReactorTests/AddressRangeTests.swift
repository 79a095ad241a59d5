import Glibc
import LinuxIO
import Testing
@testable import Reactor

/// `--proxy-from` ranges: which balancers' PROXY headers are believed.
@Suite("address ranges (--proxy-from)")
struct AddressRangeTests {
    private func peer(_ text: String) throws -> PeerAddress {
        let address = try #require(try SocketAddress.parse(text).first)
        var storage = sockaddr_storage()
        try address.withSockAddr { raw, length in
            withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: Int(length))) }
        }
        return PeerAddress(&storage)
    }

    @Test("the defaults are loopback: 127.0.0.0/8 and ::1/128")
    func defaults() throws {
        let ranges = AddressRange.loopback
        #expect(ranges.map(\.description) == ["127.0.0.0/8", "::1/128"])
        for inside in ["127.0.0.1:1", "127.255.0.9:2", "[::1]:3"] {
            #expect(ranges.contains { $0.contains(try! peer(inside)) }, "\(inside)")
        }
        for outside in ["10.0.0.1:1", "128.0.0.1:1", "[::2]:1", "[2001:db8::1]:1"] {
            #expect(!ranges.contains { $0.contains(try! peer(outside)) }, "\(outside)")
        }
    }

    @Test("a prefix matches its leading bits only; host bits past it are ignored")
    func prefixes() throws {
        let range = try #require(AddressRange("10.1.2.3/8"))
        #expect(range.contains(try peer("10.200.0.1:1")))
        #expect(!range.contains(try peer("11.0.0.1:1")))
        let single = try #require(AddressRange("192.0.2.7"))
        #expect(single.description == "192.0.2.7/32")
        #expect(try single.contains(peer("192.0.2.7:5")))
        #expect(try !single.contains(peer("192.0.2.8:5")))
        let v6 = try #require(AddressRange("2001:db8::/32"))
        #expect(try v6.contains(peer("[2001:db8:ffff::1]:1")))
        #expect(try !v6.contains(peer("[2001:db9::1]:1")))
        let everything = try #require(AddressRange("0.0.0.0/0"))
        #expect(try everything.contains(peer("203.0.113.9:1")))
        #expect(try !everything.contains(peer("[::1]:1")))
    }

    @Test("an IPv4 client seen on a dual-stack socket (::ffff:a.b.c.d) matches IPv4 ranges")
    func mappedIPv4() throws {
        let range = try #require(AddressRange("127.0.0.0/8"))
        #expect(range.contains(try peer("[::ffff:127.0.0.1]:80")))
    }

    @Test("malformed ranges are refused", arguments: ["", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/-1",
                                                       "10.0.0.0/8/8", "localhost", "10.0.0.0/ 8", "1.2.3/8"])
    func malformed(_ text: String) {
        #expect(AddressRange(text) == nil)
    }
}
