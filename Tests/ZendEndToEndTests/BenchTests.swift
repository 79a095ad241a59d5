import Foundation
import Glibc
import LinuxIO
import Testing
import TestSupport

extension EndToEnd {
    @Suite("zen bench")
    struct BenchTests {
        private func bench(_ arguments: [String]) throws -> (code: Int32?, output: String) {
            try runCommand(Paths.product("zen"), ["bench"] + arguments, timeout: .seconds(60))
        }

        @Test("bad arguments are rejected with a usage error")
        func validation() throws {
            for (arguments, message) in [
                (["-c", "0"], "-c/--connections must be at least 1"),
                (["--connections", "0"], "-c/--connections must be at least 1"),
                (["-P", "0"], "-P/--pipeline must be from 1 to 65536"),
                (["--pipeline", "65537"], "-P/--pipeline must be from 1 to 65536"),
                (["-n", "10", "-d", "1"], "Give -n/--requests or -d/--duration, not both"),
                (["--requests", "10", "--duration", "1"], "Give -n/--requests or -d/--duration, not both"),
                (["-d", "0"], "-d/--duration must be more than 0 seconds"),
                (["--threads", "0"], "--threads must be at least 1"),
                (["--unix", "/tmp/x", "--port", "1"], "Give --unix or --host/--port, not both"),
                (["--warmup=-1"], "--warmup must be 0 or more seconds"),
            ] {
                let result = try bench(arguments)
                #expect(result.code == 64, "\(arguments)")
                #expect(result.output.contains(message), "\(arguments): \(result.output)")
            }
        }

        @Test("--json prints one object with requests, errors, mismatches, rps, latency and client CPU")
        func jsonShape() throws {
            let zend = try ZendServer()
            let result = try bench(["--port", "\(zend.port)", "-c", "4", "-P", "4", "-n", "2000", "--json"])
            #expect(result.code == 0, "\(result.output)")
            let last = try #require(result.output.split(separator: "\n").last)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
            #expect(object["requests"] as? Int == 2000)
            #expect(object["errors"] as? Int == 0)
            #expect(object["mismatches"] as? Int == 0)
            #expect((object["rps"] as? Double ?? 0) > 0)
            #expect((object["client_cpu_pct"] as? Double) != nil)
            let latency = try #require(object["latency_us"] as? [String: Any])
            for key in ["p50", "p90", "p99", "p999", "max"] {
                #expect(latency[key] as? Int != nil, "latency_us.\(key)")
            }
            #expect((latency["p50"] as? Int ?? 0) <= (latency["max"] as? Int ?? 0))
        }

        @Test("a wrong answer is caught: mismatches are reported and the exit status is 1")
        func wrongAnswer() throws {
            let directory = Paths.scratchDirectory("bench")
            defer { Paths.remove(directory) }
            Paths.write("Beautiful is better than? Ugly.\nExplicit is better than? Implicit!\nSimple is better than? Complex.\n",
                        to: directory + "/wrong.conf")
            let zend = try ZendServer(["--aphorisms", directory + "/wrong.conf"])
            let result = try bench(["--port", "\(zend.port)", "-c", "2", "-n", "100", "--json"])
            #expect(result.code == 1)
            #expect(result.output.contains("\"mismatches\":") && !result.output.contains("\"mismatches\":0"))
            #expect(result.output.contains("wrong answer"))
        }

        @Test("a server that mis-frames pipelined requests (like the book's srv_async.py) is flagged")
        func misframingServer() throws {
            let port = try freePort()
            // Answers each read as one request: right for one request per read, wrong for pipelines.
            let script = """
            import socket, select
            answers = {b'Beautiful is better than?': b'Ugly.', b'Explicit is better than?': b'Implicit.',
                       b'Simple is better than?': b'Complex.'}
            listener = socket.socket(); listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(('127.0.0.1', \(port))); listener.listen(64)
            poll = select.poll(); poll.register(listener, select.POLLIN); clients = {}
            while True:
                for fd, event in poll.poll():
                    if fd == listener.fileno():
                        sock, _ = listener.accept(); clients[sock.fileno()] = sock; poll.register(sock, select.POLLIN)
                        continue
                    sock = clients[fd]; data = sock.recv(4096)
                    if not data:
                        poll.unregister(fd); sock.close(); del clients[fd]; continue
                    if data.endswith(b'?'):
                        sock.sendall(answers.get(data, b'Error: unknown aphorism.'))
            """
            let directory = Paths.scratchDirectory("misframe")
            defer { Paths.remove(directory) }
            let server = try ChildProcess("/usr/bin/python3", ["-c", script], stderr: directory + "/err")
            defer { server.stop() }
            _ = try TestClient.connecting(port: port)
            let single = try bench(["--port", "\(port)", "-c", "2", "-P", "1", "-n", "200"])
            #expect(single.code == 0, "one request at a time works with this server: \(single.output)")
            let pipelined = try bench(["--port", "\(port)", "-c", "2", "-P", "16", "-n", "2000", "--timeout", "1"])
            #expect(pipelined.code == 1)
            #expect(pipelined.output.contains("does not frame pipelined requests"))
        }

        @Test("zen bench loads a unix socket and prints a readable report")
        func unixSocket() throws {
            let directory = Paths.scratchDirectory("benchunix")
            defer { Paths.remove(directory) }
            let path = directory + "/zend.sock"
            let zend = try ZendServer([], listen: ["unix:\(path)"])
            defer { zend.stop() }
            let result = try bench(["--unix", path, "-c", "3", "-P", "2", "-n", "3000", "--threads", "2"])
            #expect(result.code == 0, "\(result.output)")
            #expect(result.output.contains("zen bench: unix:\(path), 3 connections, pipeline 2, 2 threads"))
            #expect(result.output.contains("requests     3000 answered (0 errors, 0 mismatches)"))
            #expect(result.output.contains("latency µs   p50 "))
            #expect(result.output.contains("client CPU"))
        }

        @Test("a server that is down is an error, not a hang")
        func serverDown() throws {
            let port = try freePort()
            var result: (code: Int32?, output: String) = (nil, "")
            let elapsed = try milliseconds { result = try bench(["--port", "\(port)", "-c", "2", "-n", "10", "--timeout", "1"]) }
            #expect(elapsed < 10_000)
            #expect(result.code == 1)
            #expect(result.output.contains("cannot connect to 127.0.0.1:\(port)"))
        }
    }
}
