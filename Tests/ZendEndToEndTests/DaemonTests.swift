import Glibc
import LinuxIO
import Testing
import TestSupport

extension EndToEnd {
    @Suite("the daemon: options, start-up failures, signals")
    struct DaemonTests {
        @Test("--version prints the version")
        func version() throws {
            let result = try runCommand(Paths.product("zend"), ["--version"])
            #expect(result.code == 0)
            #expect(result.output == "zend 0.1.0\n")
        }

        @Test("a bad option is rejected with a usage error (EX_USAGE)")
        func badOption() throws {
            let unknown = try runCommand(Paths.product("zend"), ["--no-such-option"])
            #expect(unknown.code == 64)
            #expect(unknown.output.contains("Unknown option '--no-such-option'"))
            for (arguments, message) in [
                (["--threads", "0"], "--threads must be from 1 to 1024"),
                (["--idle-timeout", "1e10"], "--idle-timeout must be from 0 (never)"),
                (["--drain-timeout=-1"], "--drain-timeout must be from 0 to 86400 seconds"),
                (["--exit-when-idle", "1e10"], "--exit-when-idle must be more than 0"),
                (["--max-connections", "1500000000"], "--max-connections must be from 1 to"),
                (["--max-request-bytes", "0"], "--max-request-bytes must be at least 1"),
            ] {
                let invalid = try runCommand(Paths.product("zend"), arguments)
                #expect(invalid.code == 64, "\(arguments)")
                #expect(invalid.output.contains(message), "\(arguments): \(invalid.output)")
            }
            let badAddress = try runCommand(Paths.product("zend"), ["--listen", "127.0.0.1"])
            #expect(badAddress.code == 78)
            #expect(badAddress.output.contains("invalid address '127.0.0.1'"))
        }

        @Test("--check accepts a good aphorism file")
        func checkGood() throws {
            let directory = Paths.scratchDirectory("check")
            defer { Paths.remove(directory) }
            Paths.write("# mine\nIs this zen? Yes.\nWhy? Because.\n", to: directory + "/aphorisms.conf")
            let result = try runCommand(Paths.product("zend"), ["--check", "--aphorisms", directory + "/aphorisms.conf"])
            #expect(result.code == 0)
            #expect(result.output.contains("configuration OK"))
            #expect(result.output.contains("2 aphorisms"))
        }

        @Test("--check rejects a bad file naming file and line (EX_CONFIG), and zend will not start with it")
        func checkBad() throws {
            let directory = Paths.scratchDirectory("check")
            defer { Paths.remove(directory) }
            let file = directory + "/aphorisms.conf"
            Paths.write("Good? Yes.\nno question mark\n", to: file)
            let check = try runCommand(Paths.product("zend"), ["--check", "--aphorisms", file])
            #expect(check.code == 78)
            #expect(check.output.contains("\(file):2: expected 'question? answer'"))
            let start = try runCommand(Paths.product("zend"), ["--listen", "127.0.0.1:0", "--aphorisms", file])
            #expect(start.code == 78)
            #expect(start.output.contains("\(file):2:"))
            let missing = try runCommand(Paths.product("zend"), ["--check", "--aphorisms", directory + "/missing.conf"])
            #expect(missing.code == 78)
            #expect(missing.output.contains("No such file or directory"))
        }

        @Test("a port in use is a clear error and a non-zero exit")
        func portInUse() throws {
            let first = try ZendServer()
            let result = try runCommand(Paths.product("zend"), ["--listen", "127.0.0.1:\(first.port)"])
            #expect(result.code == 69)
            #expect(result.output.contains("cannot listen on 127.0.0.1:\(first.port): bind: Address already in use"))
            #expect(first.process.isRunning)
        }

        @Test("the book's command line: zend HOST -p PORT")
        func bookCommandLine() throws {
            let port = try freePort()
            let zend = try ZendServer(["127.0.0.1", "-p", "\(port)"], listen: [])
            #expect(zend.addresses == ["127.0.0.1:\(port)"])
            #expect(try zend.connect().ask("Simple is better than?", expecting: "Complex.") == "Complex.")
        }

        @Test("listens on IPv6 and unix sockets; zen ask talks to both")
        func ipv6AndUnix() throws {
            let directory = Paths.scratchDirectory("unix")
            defer { Paths.remove(directory) }
            let path = directory + "/zend.sock"
            let zend = try ZendServer([], listen: ["[::1]:0", "unix:\(path)"])
            #expect(zend.addresses.count == 2)
            let v6 = try #require(zend.addresses.first { $0.hasPrefix("[::1]:") })
            let port = String(v6.split(separator: ":").last!)
            let overIPv6 = try runCommand(Paths.product("zen"), ["ask", "--host", "::1", "--port", port,
                                                                  "Beautiful is better than?"])
            #expect(overIPv6.output == "Ugly.\n")
            let overUnix = try runCommand(Paths.product("zen"), ["ask", "--unix", path, "Explicit is better than?"])
            #expect(overUnix.output == "Implicit.\n")
            zend.stop()
            // The socket file zend created is removed at exit.
            #expect(access(path, F_OK) != 0)
        }

        @Test("zen ask prints each answer; a server that is down is a clear error")
        func zenAsk() throws {
            let zend = try ZendServer()
            let result = try runCommand(Paths.product("zen"), ["ask", "--port", "\(zend.port)",
                                                               "Beautiful is better than?", "Simple is better than?", "Who?"])
            #expect(result.code == 0)
            #expect(result.output == "Ugly.\nComplex.\nError: unknown aphorism.\n")
            let port = zend.port
            zend.stop()
            let down = try runCommand(Paths.product("zen"), ["ask", "--port", "\(port)", "Beautiful is better than?"])
            #expect(down.code == 69)
            #expect(down.output.contains("cannot connect to 127.0.0.1:\(port): Connection refused"))
        }

        @Test("--threads N runs N reactors that all serve")
        func threads() throws {
            let zend = try ZendServer(["--threads", "3"])
            #expect(zend.log.contains("threads=3"))
            let clients = try (0 ..< 30).map { _ in try zend.connect() }
            for client in clients {
                #expect(client.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            }
            let sanitizer = Sanitizer.runtimeThreads(of: zend.process.pid, for: "the count of zend's threads")
            let tasks = Paths.threads(of: zend.process.pid).filter { !sanitizer.contains($0.id) }
            #expect(tasks.count == 5, "\(tasks)")  // three reactors, the supervisor, the log writer
        }

        @Test("SIGHUP reloads the aphorism file; a bad file keeps the old table; no client is dropped")
        func reload() throws {
            let directory = Paths.scratchDirectory("reload")
            defer { Paths.remove(directory) }
            let file = directory + "/aphorisms.conf"
            Paths.write("Is it on? Yes.\n", to: file)
            let zend = try ZendServer(["--aphorisms", file])
            let client = try zend.connect()
            #expect(client.ask("Is it on?", expecting: "Yes.") == "Yes.")
            client.send("Is it")  // a partial request spans the reload
            Paths.write("Is it on? Still yes.\nNew? Here.\n", to: file)
            zend.process.signal(SIGHUP)
            try zend.waitForLog("msg=\"reloaded the aphorism file\" aphorisms=2 file=\(file)")
            client.send(" on?")
            #expect(client.receiveText(count: 10) == "Still yes.")
            Paths.write("Is it on? Broken\nbad line\n", to: file)
            zend.process.signal(SIGHUP)
            try zend.waitForLog("reload failed")
            #expect(zend.log.contains("\(file):2:"))
            #expect(client.ask("New?", expecting: "Here.") == "Here.")
            #expect(zend.process.isRunning)
        }

        @Test("SIGTERM with idle clients: they are closed after the grace and zend exits 0")
        func sigtermIdle() throws {
            let zend = try ZendServer()
            let clients = try (0 ..< 10).map { _ in try zend.connect() }
            #expect(clients[0].ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            var exitedAfter = 0.0
            exitedAfter = milliseconds {
                zend.process.signal(SIGTERM)
                zend.process.wait(timeout: .seconds(5))
            }
            #expect(zend.process.exitCode == 0)
            // Quiet connections cost only the grace (100 ms), not the drain timeout (5 s).
            #expect(exitedAfter < 2000, "exit took \(exitedAfter) ms")
            for client in clients { #expect(client.receiveToEnd(timeout: .seconds(1)).end == .endOfFile) }
            #expect(zend.log.contains("SIGTERM: draining"))
        }

        @Test("SIGTERM while a client streams 20,000 pipelined requests: every answer arrives, then exit 0")
        func sigtermMidStream() throws {
            let zend = try ZendServer()
            let client = try zend.connect()
            let batch = String(repeating: "Beautiful is better than?", count: 100)
            var received = 0
            let total = 20_000 * 5
            for round in 0 ..< 200 {
                client.send(batch)
                if round == 50 { zend.process.signal(SIGTERM) }
                received += client.receive(count: 500).count
                usleep(1_000)
            }
            received += client.receive(count: total - received).count
            #expect(received == total)
            client.shutdownWrite()
            #expect(client.receiveToEnd().end == .endOfFile)
            zend.process.wait(timeout: .seconds(5))
            #expect(zend.process.exitCode == 0)
        }

        @Test("SIGTERM stops accepting at once; a client that never reads is cut at the drain timeout")
        func sigtermDrainTimeout() throws {
            let zend = try ZendServer(["--drain-timeout", "0.5"])
            let port = zend.port
            let stuck = try zend.connect(receiveBuffer: 4096)
            // Each '?' is an unknown question with a 24-byte answer: far more answers
            // than socket buffers hold, so zend still owes some when SIGTERM comes.
            stuck.send(String(repeating: "?", count: 1 << 20), timeout: .seconds(2))
            usleep(50_000)
            let elapsed = milliseconds {
                zend.process.signal(SIGTERM)
                usleep(100_000)
                #expect(throws: SystemError.self) { _ = try TestClient(port: port) }
                zend.process.wait(timeout: .seconds(5))
            }
            #expect(zend.process.exitCode == 0)
            #expect(elapsed >= 400 && elapsed < 3000, "exit after \(elapsed) ms")
            #expect(zend.log.contains("drain timeout"))
        }

        @Test("a second SIGINT during a drain closes everything at once")
        func secondInterrupt() throws {
            let zend = try ZendServer(["--drain-timeout", "30"])
            let stuck = try zend.connect(receiveBuffer: 4096)
            stuck.send(String(repeating: "?", count: 1 << 20), timeout: .seconds(2))
            zend.process.signal(SIGINT)
            try zend.waitForLog("SIGINT: draining")
            zend.process.signal(SIGINT)
            zend.process.wait(timeout: .seconds(5))
            #expect(zend.process.exitCode == 0)
            #expect(zend.log.contains("closing every connection now"))
        }
    }
}

extension EndToEnd.DaemonTests {
    @Test("the zend(8) man page describes every option of zend --help")
    func manPageCoversOptions() throws {
        let help = try runCommand(Paths.product("zend"), ["--help"]).output
        let options = Set(help.split(whereSeparator: { " ,\n[]".contains($0) })
            .filter { $0.hasPrefix("--") && $0.count > 2 }
            .map { String($0.dropFirst(2).prefix { $0 != "=" && $0 != "<" }) })
        #expect(options.count >= 14, "\(options)")
        let page = Paths.read(Paths.repository + "/packaging/zend.8")
        for option in options.sorted() {
            #expect(page.contains("Fl \\-\(option)"), "zend.8 does not describe --\(option)")
        }
    }
}
