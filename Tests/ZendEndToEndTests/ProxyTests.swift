import Glibc
import LinuxIO
import Testing
import TestSupport

/// Where Debian's haproxy package puts the binary (scripts/setup installs it).
let haproxyPath = "/usr/sbin/haproxy"
let haveHAProxy = access(haproxyPath, X_OK) == 0

/// A real HAProxy in front of zend: one frontend relaying with `send-proxy` (v1), one
/// with `send-proxy-v2`, both on ports of their own; stopped by its PID.
final class HAProxy {
    let process: ChildProcess
    let directory: String
    let v1Port: UInt16
    let v2Port: UInt16

    init(backendPort: UInt16) throws {
        directory = Paths.scratchDirectory("haproxy")
        v1Port = try freePort()
        v2Port = try freePort()
        let configuration = """
        global
            maxconn 4096
        defaults
            mode tcp
            timeout connect 5s
            timeout client 60s
            timeout server 60s
        frontend v1
            bind 127.0.0.1:\(v1Port)
            default_backend zend_v1
        backend zend_v1
            server zend 127.0.0.1:\(backendPort) send-proxy
        frontend v2
            bind 127.0.0.1:\(v2Port)
            default_backend zend_v2
        backend zend_v2
            server zend 127.0.0.1:\(backendPort) send-proxy-v2

        """
        Paths.write(configuration, to: directory + "/haproxy.cfg")
        process = try ChildProcess(haproxyPath, ["-db", "-f", directory + "/haproxy.cfg"],
                                   stdout: directory + "/haproxy.log", stderr: directory + "/haproxy.log")
        for port in [v1Port, v2Port] {
            _ = try TestClient.connecting(port: port)
        }
    }

    deinit {
        process.stop()
        Paths.remove(directory)
    }
}

extension EndToEnd {
    @Suite("PROXY protocol listeners")
    struct ProxyTests {
        private func stats(_ control: String) throws -> [String: String] {
            statsFields(try runCommand(Paths.product("zen"), ["stats", "--control", control]).output)
        }

        /// The questions to pipeline after a header, and the answers they must get.
        private static func pipelined(_ count: Int) -> (questions: String, answers: [UInt8]) {
            (String(repeating: "Beautiful is better than?", count: count), Array(String(repeating: "Ugly.", count: count).utf8))
        }

        @Test("behind a real HAProxy (send-proxy and send-proxy-v2): answers arrive, pipelined requests after the header too, and the log names the real client and the balancer",
              .enabled(if: haveHAProxy, "needs /usr/sbin/haproxy (scripts/setup installs it)"))
        func behindHAProxy() throws {
            let zend = try ZendServer(["--log-level", "debug", "--log-target", "console"], listen: ["proxy:127.0.0.1:0"])
            let haproxy = try HAProxy(backendPort: zend.port)
            for (version, port) in [("1", haproxy.v1Port), ("2", haproxy.v2Port)] {
                let client = try TestClient.connecting(port: port)
                let local = try #require(try client.fd.localAddress())
                let (questions, answers) = Self.pipelined(1000)
                client.send(questions)
                let got = client.receive(count: answers.count)
                #expect(got.count == answers.count && got == answers,
                        "v\(version): \(got.count) of \(answers.count) bytes; first difference: \(firstDifference(got, answers) ?? "none")")
                client.close()
                // The header's client is this test's own socket; the balancer is HAProxy's.
                try zend.waitForLog("msg=\"PROXY header accepted\" client_address=\(local)")
                let line = zend.log.split(separator: "\n").first { $0.contains("client_address=\(local) ") } ?? ""
                #expect(line.contains("proxy_address=127.0.0.1:") && line.contains("proxy_version=\(version)"), "\(line)")
            }
            #expect(zend.process.isRunning)
        }

        @Test("a header dribbled one byte at a time, then 10,000 pipelined requests in the same write as the header's end")
        func dribbledAndPipelined() throws {
            let directory = Paths.scratchDirectory("proxy")
            defer { Paths.remove(directory) }
            let zend = try ZendServer(["--control", directory + "/c", "--log-level", "debug"], listen: ["proxy:127.0.0.1:0"])
            let header = Array("PROXY TCP4 192.0.2.7 127.0.0.1 5555 1060\r\n".utf8)
            let client = try zend.connect()
            for byte in header.dropLast() {
                client.send([byte])
                usleep(2_000)
            }
            // Nothing is answered before the header is whole.
            #expect(client.receive(count: 1, timeout: .milliseconds(100)).isEmpty)
            let (questions, answers) = Self.pipelined(10_000)
            client.send([header.last!] + Array(questions.utf8))
            let got = client.receive(count: answers.count)
            #expect(got == answers, "\(got.count) of \(answers.count) bytes; first difference: \(firstDifference(got, answers) ?? "none")")
            try zend.waitForLog("client_address=192.0.2.7:5555")
            let figures = try stats(directory + "/c")
            #expect(figures["proxy_headers_accepted"] == "1")
            #expect(figures["requests_answered"] == "10000")
        }

        @Test("v2 over a direct connection from loopback (trusted by default): IPv6 client, LOCAL keeps the peer")
        func version2() throws {
            let zend = try ZendServer(["--log-level", "debug"], listen: ["proxy:127.0.0.1:0"])
            let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
            var addresses = [UInt8](repeating: 0, count: 36)
            addresses[0] = 0x20; addresses[1] = 0x01; addresses[2] = 0x0D; addresses[3] = 0xB8; addresses[15] = 1  // 2001:db8::1
            addresses[31] = 1  // ::1
            addresses[32] = 0x0F; addresses[33] = 0xA0  // port 4000
            addresses[34] = 0x04; addresses[35] = 0x24
            let proxy = signature + [0x21, 0x21, 0, 36] + addresses
            // Bytes, not text: the header holds bytes that are not UTF-8.
            let client = try zend.connect()
            client.send(proxy + Array("Simple is better than?".utf8))
            #expect(client.receiveText(count: 8) == "Complex.")
            try zend.waitForLog("client_address=[2001:db8::1]:4000")
            let local = try zend.connect()
            let localAddress = try #require(try local.fd.localAddress())
            local.send(signature + [0x20, 0x00, 0, 0] + Array("Beautiful is better than?".utf8))
            #expect(local.receiveText(count: 5) == "Ugly.")
            local.close()
            try zend.waitForLog("msg=\"connection closed\"")
            let closed = zend.log.split(separator: "\n").filter { $0.contains("msg=\"connection closed\"") }
            #expect(closed.contains { $0.contains("client_address=\(localAddress) ") && !$0.contains("proxy_address=") },
                    "LOCAL: the connection's own peer stays the client: \(closed)")
        }

        @Test("once its header is whole a connection is the client's: the per-client limit counts that client and frees its place at close, and the close names client and balancer")
        func connectionBecomesTheClients() throws {
            let zend = try ZendServer(["--log-level", "debug", "--max-connections-per-client", "1"], listen: ["proxy:127.0.0.1:0"])
            func connect(as client: String) throws -> TestClient {
                let connection = try zend.connect()
                connection.send("PROXY TCP4 \(client) 127.0.0.1 5555 1060\r\n")
                return connection
            }
            let first = try connect(as: "192.0.2.7")
            #expect(first.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            // One balancer, another client: within that client's own limit.
            #expect(try connect(as: "192.0.2.8").ask("Explicit is better than?", expecting: "Implicit.") == "Implicit.")
            #expect(try connect(as: "192.0.2.7").isClosedUnanswered(after: "Simple is better than?"),
                    "a second connection of 192.0.2.7 was served")
            first.close()
            func closeLine() -> Substring? {
                zend.log.split(separator: "\n").first {
                    $0.contains("msg=\"connection closed\"") && $0.contains("client_address=192.0.2.7:5555 ")
                }
            }
            let deadline = ContinuousClock.now + .seconds(5)
            while closeLine() == nil, ContinuousClock.now < deadline { usleep(10_000) }
            let closed = try #require(closeLine(), "no close logged for 192.0.2.7:5555:\n\(zend.log)")
            #expect(closed.contains("proxy_address=127.0.0.1:"), "\(closed)")
            // Its place is free again.
            #expect(try connect(as: "192.0.2.7").ask("Beautiful is better than?", expecting: "Ugly.") == "Ugly.")
        }

        @Test("refused: an untrusted address, a malformed header, no header in time; each closed unanswered and counted")
        func refused() throws {
            let directory = Paths.scratchDirectory("proxy")
            defer { Paths.remove(directory) }
            // Only 192.0.2.0/24 may send headers: this test's loopback connection may not.
            let untrusted = try ZendServer(["--control", directory + "/u", "--proxy-from", "192.0.2.0/24"],
                                           listen: ["proxy:127.0.0.1:0", "127.0.0.1:0"])
            let direct = try TestClient.connecting(port: untrusted.port)
            #expect(direct.isClosedUnanswered(after: "PROXY TCP4 192.0.2.7 127.0.0.1 5555 1060\r\nSimple is better than?"))
            try untrusted.waitForLog("not in --proxy-from")
            #expect(try stats(directory + "/u")["proxy_rejected_untrusted"] == "1")
            // The plain listener beside it is unaffected.
            let plainPort = UInt16(untrusted.addresses[1].split(separator: ":").last ?? "") ?? 0
            let plain = try TestClient.connecting(port: plainPort)
            #expect(plain.ask("Simple is better than?", expecting: "Complex.") == "Complex.")

            let zend = try ZendServer(["--control", directory + "/c", "--proxy-timeout", "0.5"], listen: ["proxy:127.0.0.1:0"])
            let noHeader = try zend.connect()
            #expect(noHeader.isClosedUnanswered(after: "Beautiful is better than?"), "a request instead of a header")
            let badPort = try zend.connect()
            #expect(badPort.isClosedUnanswered(after: "PROXY TCP4 192.0.2.7 127.0.0.1 99999 1060\r\nSimple is better than?"))
            let silent = try zend.connect()
            let started = ContinuousClock.now
            let (bytes, end) = silent.receiveToEnd(timeout: .seconds(5))
            #expect(bytes.isEmpty && end == .endOfFile && ContinuousClock.now - started < .seconds(3), "closed after 0.5 s")
            let figures = try stats(directory + "/c")
            #expect(figures["proxy_rejected_not_proxy"] == "1")
            #expect(figures["proxy_rejected_v1_bad_port"] == "1")
            #expect(figures["proxy_rejected_timeout"] == "1")
            #expect(figures["proxy_headers_accepted"] == "0")
            #expect(figures["requests_answered"] == "0")
        }
    }
}
