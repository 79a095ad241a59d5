import Glibc
import LinuxIO
import Synchronization
import Testing
import TestSupport

/// True when the tests run as root (mount namespaces, ptrace of a sibling process).
let runningAsRoot = getuid() == 0

extension EndToEnd {
    @Suite("systemd integration without systemd: sd_notify, passed sockets, logging")
    struct SystemdTests {
        @Test("sd_notify: READY with STATUS, STATUS updates, RELOADING with MONOTONIC_USEC then READY, WATCHDOG cadence, STOPPING")
        func notifySequence() throws {
            let directory = Paths.scratchDirectory("notify")
            defer { Paths.remove(directory) }
            let file = directory + "/aphorisms.conf"
            Paths.write("Beautiful is better than? Ugly.\n", to: file)
            let notify = try NotifyListener(directory: directory)
            let zend = try ZendServer(["--aphorisms", file], environment: ZendServer.environment([
                "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "300000",
            ]))
            let ready = try #require(notify.waitFor("READY=1"))
            #expect(ready.contains("STATUS=Serving on 127.0.0.1:\(zend.port): 0 connection(s), 0 request(s) answered"))

            // A status update follows activity, at most about a second later.
            let client = try zend.connect()
            #expect(client.ask("Beautiful is better than?", expecting: "Ugly.") == "Ugly.")
            #expect(notify.waitFor("STATUS=Serving on 127.0.0.1:\(zend.port): 1 connection(s), 1 request(s) answered",
                                   timeout: .seconds(3)) != nil)

            // The watchdog is pinged at half of WATCHDOG_USEC: about 6-7 times a second.
            let before = notify.count("WATCHDOG=1")
            usleep(1_000_000)
            let pings = notify.count("WATCHDOG=1") - before
            #expect(pings >= 4 && pings <= 12, "\(pings) WATCHDOG=1 in one second")

            // Reload: RELOADING=1 with the monotonic clock, then READY=1 again.
            let mark = notify.messages.count
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let nowMicroseconds = Int(now.tv_sec) * 1_000_000 + now.tv_nsec / 1000
            zend.process.signal(SIGHUP)
            let reloading = try #require(notify.waitFor("RELOADING=1", after: mark))
            let stamp = reloading.split(separator: "\n").first { $0.hasPrefix("MONOTONIC_USEC=") }
                .flatMap { Int($0.dropFirst("MONOTONIC_USEC=".count)) } ?? 0
            #expect(stamp >= nowMicroseconds && stamp < nowMicroseconds + 5_000_000)
            let reloadIndex = notify.messages.firstIndex { $0.contains("RELOADING=1") }!
            #expect(notify.waitFor("READY=1", after: reloadIndex + 1) != nil)

            let stopMark = notify.messages.count
            zend.process.signal(SIGTERM)
            #expect(notify.waitFor("STOPPING=1", after: stopMark)?.contains("STATUS=Stopping") == true)
            zend.process.wait(timeout: .seconds(5))
            #expect(zend.process.exitCode == 0)
            // Every message went to our socket in the expected order.
            let order = notify.messages.compactMap { message -> String? in
                for key in ["READY=1", "RELOADING=1", "STOPPING=1"] where message.contains(key) { return key }
                return nil
            }
            #expect(order == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"])
        }

        @Test("a failure at start tells systemd why: STATUS= and ERRNO=")
        func notifyStartFailure() throws {
            let directory = Paths.scratchDirectory("notify")
            defer { Paths.remove(directory) }
            let notify = try NotifyListener(directory: directory)
            let occupied = try Socket.listen(on: .ipv4(address: 0x7f00_0001, port: 0))
            defer { occupied.close() }
            let port = try #require(try occupied.localAddress()?.port)
            let result = try runCommand(Paths.product("zend"), ["--listen", "127.0.0.1:\(port)"],
                                        environment: ZendServer.environment(["NOTIFY_SOCKET": notify.path]))
            #expect(result.code == 69)
            let message = try #require(notify.waitFor("ERRNO=", timeout: .seconds(2)))
            #expect(message.contains("ERRNO=\(EADDRINUSE)"))
            #expect(message.contains("STATUS=cannot listen on 127.0.0.1:\(port): bind: Address already in use"))
            #expect(!notify.messages.contains { $0.contains("READY=1") })
        }

        @Test("socket activation with systemd-socket-activate: the first connect starts zend, which serves the passed listener")
        func systemdSocketActivate() throws {
            let port = try freePort()
            let zend = try ZendServer([], listen: [], environment: ZendServer.environment(),
                                      launcher: ["/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:\(port)", "--fdname=zen"],
                                      expectListening: false)
            let first = try TestClient.connecting(port: port)
            // The connection that woke the activator is answered by the zend it started.
            #expect(first.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            try zend.waitForLog("listening on 127.0.0.1:\(port) (zen, from systemd)")
            #expect(try TestClient(port: port).ask("Explicit is better than?", expecting: "Implicit.") == "Implicit.")
        }

        @Test("Accept=yes with systemd-socket-activate --accept: one zend per connection, serving it then exiting")
        func acceptMode() throws {
            let port = try freePort()
            let activator = try ZendServer([], listen: [], environment: ZendServer.environment(),
                                           launcher: ["/usr/bin/systemd-socket-activate", "--accept", "-l", "127.0.0.1:\(port)"],
                                           expectListening: false)
            let connection = try TestClient.connecting(port: port)
            #expect(connection.ask("Beautiful is better than?", expecting: "Ugly.") == "Ugly.")
            connection.send("Explicit is better than?Simple is better than?")
            connection.shutdownWrite()
            let (bytes, end) = connection.receiveToEnd()
            #expect(String(decoding: bytes, as: UTF8.self) == "Implicit.Complex.")
            #expect(end == .endOfFile)
            // The instance logs its clean exit once the client has gone.
            try activator.waitForLog("stopped")
            #expect(!activator.log.contains("listening on"))
            // A second connection gets a fresh instance.
            let second = try TestClient(port: port)
            #expect(second.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
        }

        @Test("Accept=yes: a passed client that never sends a byte is closed at the idle timeout")
        func acceptModeSilentClient() throws {
            let port = try freePort()
            let activator = try ZendServer(["--idle-timeout", "0.5"], listen: [], environment: ZendServer.environment(),
                                           launcher: ["/usr/bin/systemd-socket-activate", "--accept", "-l", "127.0.0.1:\(port)"],
                                           expectListening: false)
            let silent = try TestClient.connecting(port: port)
            var end: TestClient.ReadEnd = .timeout
            let elapsed = milliseconds { end = silent.receiveToEnd(timeout: .seconds(5)).end }
            #expect(end == .endOfFile)
            #expect(elapsed >= 300 && elapsed < 3000, "closed after \(elapsed) ms")
            try activator.waitForLog("stopped")
        }

        @Test("during a drain the watchdog keeps being pinged (finished reactors are not stuck) and SIGHUP does not reload")
        func watchdogAndReloadDuringDrain() throws {
            let directory = Paths.scratchDirectory("notify")
            defer { Paths.remove(directory) }
            let file = directory + "/aphorisms.conf"
            Paths.write("Beautiful is better than? Ugly.\n", to: file)
            let notify = try NotifyListener(directory: directory)
            let zend = try ZendServer(["--threads", "2", "--drain-timeout", "3", "--aphorisms", file],
                                      environment: ZendServer.environment(["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "300000"]))
            #expect(notify.waitFor("READY=1") != nil)
            // A client that never reads keeps one reactor busy for the whole drain.
            let stuck = try zend.connect(receiveBuffer: 4096)
            stuck.send(String(repeating: "?", count: 1 << 20), timeout: .seconds(2))
            let mark = notify.messages.count
            zend.process.signal(SIGTERM)
            #expect(notify.waitFor("STOPPING=1", after: mark) != nil)
            zend.process.signal(SIGHUP)
            let pingsBefore = notify.count("WATCHDOG=1")
            usleep(1_200_000)
            #expect(notify.count("WATCHDOG=1") - pingsBefore >= 4, "keep-alives stopped during the drain")
            #expect(notify.count("RELOADING=1", after: mark) == 0)
            #expect(!zend.log.contains("made no progress"))
            // Keep reading as systemd does: a full notify socket would block sd_notify.
            let deadline = ContinuousClock.now + .seconds(10)
            while zend.process.isRunning, ContinuousClock.now < deadline {
                notify.collect()
                usleep(10_000)
            }
            #expect(zend.process.exitCode == 0, "\(zend.log)")
        }

        @Test("passed IPv4, IPv6 and unix listeners are all served; zend leaves the passed unix socket file alone")
        func passedListeners() throws {
            let directory = Paths.scratchDirectory("passed")
            defer { Paths.remove(directory) }
            let path = directory + "/zend.sock"
            let v4 = try Socket.listen(on: .ipv4(address: 0x7f00_0001, port: 0))
            let v6 = try Socket.listen(on: try SocketAddress.parse("[::1]:0")[0])
            let unix = try Socket.listen(on: .unix(path: path))
            defer { v4.close(); v6.close(); unix.close() }
            let zend = try ZendServer([], listen: [],
                                      environment: ZendServer.socketActivationEnvironment(["v4", "v6", "local"]),
                                      passing: [v4, v6, unix], launcher: ZendServer.socketActivationLauncher)
            #expect(zend.addresses.count == 3)
            let v4Client = try TestClient(connectingTo: try #require(try v4.localAddress()))
            let v6Client = try TestClient(connectingTo: try #require(try v6.localAddress()))
            let unixClient = try TestClient(connectingTo: .unix(path: path))
            #expect(v4Client.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            #expect(v6Client.ask("Explicit is better than?", expecting: "Implicit.") == "Implicit.")
            #expect(unixClient.ask("Beautiful is better than?", expecting: "Ugly.") == "Ugly.")
            zend.stop()
            #expect(access(path, F_OK) == 0)
        }

        @Test("a passed descriptor that is not a stream socket is refused with a clear error")
        func passedDatagramSocket() throws {
            let raw = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            let datagram = FileDescriptor(rawValue: raw)
            defer { datagram.close() }
            let zend = try ZendServer([], listen: [], environment: ZendServer.socketActivationEnvironment(["udp"]),
                                      passing: [datagram], launcher: ZendServer.socketActivationLauncher,
                                      expectListening: false)
            zend.process.wait(timeout: .seconds(10))
            #expect(zend.process.exitCode == 78)
            #expect(zend.log.contains("passed file descriptor 3 (udp) is not a stream socket"))
        }

        @Test("--exit-when-idle: exits 0 after the idle time, not while a client is connected; the socket stays usable")
        func exitWhenIdle() throws {
            let listener = try Socket.listen(on: .ipv4(address: 0x7f00_0001, port: 0))
            defer { listener.close() }
            let address = try #require(try listener.localAddress())
            let first = try ZendServer(["--exit-when-idle", "0.5"], listen: [],
                                       environment: ZendServer.socketActivationEnvironment(["zend"]),
                                       passing: [listener], launcher: ZendServer.socketActivationLauncher)
            let client = try TestClient(connectingTo: address)
            for round in 0 ..< 10 {
                let (q, a) = bookAnswers[round % 3]
                #expect(client.ask(q, expecting: a) == a)
                usleep(100_000)
            }
            #expect(first.process.isRunning, "exited while a client was connected")
            client.close()
            let idleExit = milliseconds { first.process.wait(timeout: .seconds(5)) }
            #expect(first.process.exitCode == 0)
            #expect(idleExit >= 300 && idleExit < 3000, "exited \(idleExit) ms after the last client left")
            #expect(first.log.contains("no connection for"))
            // The listener is still ours (systemd's, in production): a client connecting
            // now waits in its backlog and is served by the next activation.
            let waiting = try TestClient(connectingTo: address)
            waiting.send("Simple is better than?")
            let second = try ZendServer([], listen: [], environment: ZendServer.socketActivationEnvironment(["zend"]),
                                        passing: [listener], launcher: ZendServer.socketActivationLauncher)
            #expect(waiting.receiveText(count: 8) == "Complex.")
            second.stop()
        }

        @Test("console logging never stalls the reactor: a stderr pipe nobody reads is not waited for")
        func blockedStderr() throws {
            var ends: [Int32] = [0, 0]
            #expect(pipe(&ends) == 0)
            let reader = FileDescriptor(rawValue: ends[0]), writer = FileDescriptor(rawValue: ends[1])
            try reader.setCloseOnExec(true)
            try writer.setCloseOnExec(true)
            defer { reader.close() }
            let directory = Paths.scratchDirectory("stderr")
            defer { Paths.remove(directory) }
            let port = try freePort()
            let child = try ChildProcess(Paths.product("zend"), ["--listen", "127.0.0.1:\(port)", "--log-level", "debug"],
                                         environment: ZendServer.environment(), stderrDescriptor: writer)
            writer.close()
            defer { child.stop() }
            _ = try TestClient.connecting(port: port)
            // Each connection logs two debug lines: far more than the 64 KiB pipe and the
            // log queue (4,096 entries) hold together.
            let (worst, wrong) = try shortConnections(port: port, rounds: 3000)
            #expect(wrong == 0)
            #expect(worst < 500, "slowest answer took \(worst) ms with stderr blocked")
            // Draining the pipe lets the writer go on, and it reports what it dropped.
            try reader.setNonBlocking(true)
            var text = ""
            var chunk = [UInt8](repeating: 0, count: 65536)
            let drainDeadline = ContinuousClock.now + .seconds(10)
            while !text.contains("log messages were dropped"), ContinuousClock.now < drainDeadline {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(reader.rawValue, $0.baseAddress, $0.count) }
                if count > 0 { text += String(decoding: chunk[0 ..< count], as: UTF8.self) } else { usleep(10_000) }
                if text.count > 1 << 20 { text = String(text.suffix(1 << 16)) }
            }
            #expect(text.contains("log messages were dropped"))
        }

        @Test("JOURNAL_STREAM matching stderr selects the journal (falling back to stderr, saying so, when there is none); another device or file does not",
              .enabled(if: access("/run/systemd/journal/socket", F_OK) != 0, "a journald runs here: entries would go to it"))
        func journalStreamDetection() throws {
            let directory = Paths.scratchDirectory("journalstream")
            defer { Paths.remove(directory) }
            let matchingLog = directory + "/matching.log", otherLog = directory + "/other.log"
            let sameDeviceLog = directory + "/same-device.log"
            for log in [matchingLog, otherLog, sameDeviceLog] { Paths.write("", to: log) }
            var info = stat()
            stat(matchingLog, &info)
            let matching = "\(info.st_dev):\(info.st_ino)"
            // stderr's device but another file: not the journal either.
            stat(sameDeviceLog, &info)
            let sameDevice = "\(info.st_dev):\(info.st_ino + 1)"
            for (stream, log, expectConsole) in [(matching, matchingLog, false), ("1:2", otherLog, true),
                                                 (sameDevice, sameDeviceLog, true)] {
                let port = try freePort()
                let child = try ChildProcess(Paths.product("zend"), ["--listen", "127.0.0.1:\(port)"],
                                             environment: ZendServer.environment(["JOURNAL_STREAM": stream]), stderr: log)
                defer { child.stop() }
                let client = try TestClient.connecting(port: port)
                #expect(client.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
                usleep(100_000)
                let text = Paths.read(log)
                #expect(text.contains("listening on"), "JOURNAL_STREAM=\(stream)")
                #expect(text.contains("journald's socket /run/systemd/journal/socket is missing") != expectConsole,
                        "JOURNAL_STREAM=\(stream)")
                child.stop()
            }
        }
    }
}
