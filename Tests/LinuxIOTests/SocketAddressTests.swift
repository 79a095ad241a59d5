import Glibc
import LinuxIO
import Testing

@Suite("Socket addresses")
struct SocketAddressTests {
    @Test("IPv4, IPv6 and unix addresses parse and print back")
    func roundTrip() throws {
        #expect(try SocketAddress.parse("127.0.0.1:1060").map(\.description) == ["127.0.0.1:1060"])
        #expect(try SocketAddress.parse("[::1]:1060").map(\.description) == ["[::1]:1060"])
        #expect(try SocketAddress.parse("*:80").map(\.description) == ["0.0.0.0:80"])
        #expect(try SocketAddress.parse("unix:/run/zend.sock").map(\.description) == ["unix:/run/zend.sock"])
    }

    @Test("names resolve to their addresses")
    func names() throws {
        let addresses = try SocketAddress.parse("localhost:1060")
        #expect(addresses.contains(.ipv4(address: 0x7f00_0001, port: 1060)))
    }

    @Test("bad addresses are rejected with a reason")
    func invalid() {
        for text in ["127.0.0.1", "127.0.0.1:port", "[::1:80", "127.0.0.1:70000", "unix:", "[::1]80"] {
            #expect(throws: SocketAddress.ParseError.self) { try SocketAddress.parse(text) }
        }
    }
}

@Suite("Sockets")
struct SocketTests {
    @Test("a listener on port 0 gets a port, and a second bind of it fails with EADDRINUSE")
    func addressInUse() throws {
        let listener = try Socket.listen(on: .ipv4(address: 0x7f00_0001, port: 0))
        defer { listener.close() }
        let bound = try #require(try listener.localAddress())
        #expect(bound.port != 0)
        #expect(throws: SystemError("bind", errno: EADDRINUSE)) { try Socket.listen(on: bound) }
    }

    @Test("a stale unix socket file is replaced; a live one is in use")
    func staleUnixSocket() throws {
        let path = "/tmp/zend-test-unix-\(getpid()).sock"
        defer { unlink(path) }
        let first = try Socket.listen(on: .unix(path: path))
        #expect(throws: SystemError("bind", errno: EADDRINUSE)) { try Socket.listen(on: .unix(path: path)) }
        first.close()  // the file stays behind, as after a crash
        let second = try Socket.listen(on: .unix(path: path))
        second.close()
    }

    @Test("errors name the call and the errno")
    func errorText() {
        let error = SystemError("accept4", errno: EMFILE)
        #expect(error.description == "accept4: Too many open files (errno 24)")
    }
}
