import Glibc
import LinuxIO
import Testing
import TestSupport

extension EndToEnd {
    @Suite("limits")
    struct LimitTests {
        @Test("a connection idle longer than the idle timeout is closed; an active one is not")
        func idleTimeout() throws {
            let zend = try ZendServer(["--idle-timeout", "0.3"])
            let idle = try zend.connect()
            let active = try zend.connect()
            var closedAfter = 0.0
            let elapsed = milliseconds {
                for round in 0 ..< 8 {
                    let (q, a) = bookAnswers[round % 3]
                    #expect(active.ask(q, expecting: a) == a)
                    usleep(100_000)
                }
            }
            let (bytes, end) = idle.receiveToEnd(timeout: .seconds(1))
            closedAfter = elapsed
            #expect(bytes.isEmpty)
            #expect(end == .endOfFile, "idle connection still open after \(closedAfter) ms")
            // The active client spanned several idle timeouts and is still served.
            #expect(active.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
        }

        @Test("beyond --max-connections new connections are accepted and closed at once; existing ones are served")
        func maxConnections() throws {
            let zend = try ZendServer(["--max-connections", "5", "--threads", "1"])
            let admitted = try (0 ..< 5).map { _ in try zend.connect() }
            for client in admitted {
                #expect(client.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            }
            let ticksBefore = try #require(zend.cpuTicks)
            for _ in 0 ..< 20 {
                let extra = try zend.connect()
                extra.send("Simple is better than?")
                let (bytes, end) = extra.receiveToEnd(timeout: .seconds(2))
                #expect(bytes.isEmpty)
                #expect(end == .endOfFile || end == .reset)
            }
            try zend.waitForLog("connection limit reached")
            // Still served, and freeing a place admits a new client.
            #expect(admitted[0].ask("Explicit is better than?", expecting: "Implicit.") == "Implicit.")
            admitted[1].close()
            usleep(50_000)
            let next = try zend.connect()
            #expect(next.ask("Beautiful is better than?", expecting: "Ugly.") == "Ugly.")
            // Rejections cost no busy loop: well under a second of CPU for all of this.
            let ticksAfter = try #require(zend.cpuTicks)
            #expect(ticksAfter - ticksBefore < 50)
        }

        @Test("running out of file descriptors (EMFILE) closes new clients without spinning", arguments: [1, 2])
        func outOfDescriptors(threads: Int) throws {
            let directory = Paths.scratchDirectory("emfile")
            defer { Paths.remove(directory) }
            let log = directory + "/zend.log"
            let child = try ChildProcess("/usr/bin/prlimit", ["--nofile=32:32", Paths.product("zend"),
                                                             "--listen", "127.0.0.1:0", "--threads", "\(threads)",
                                                             "--max-connections", "1000"],
                                         stdout: log, stderr: log)
            defer { child.stop() }
            let deadline = ContinuousClock.now + .seconds(10)
            while !Paths.read(log).contains(" ready"), ContinuousClock.now < deadline { usleep(10_000) }
            let line = Paths.read(log).split(separator: "\n").first { $0.contains("listening on") } ?? ""
            let port = UInt16(line.split(separator: ":").last ?? "") ?? 0
            #expect(port != 0, "\(Paths.read(log))")
            var clients: [TestClient] = []
            var served = 0
            for _ in 0 ..< 40 {
                let client = try TestClient(port: port)
                if client.ask("Simple is better than?", expecting: "Complex.", timeout: .seconds(2)) == "Complex." {
                    served += 1
                }
                clients.append(client)
            }
            // Some fit under the limit; the rest were accepted and closed, not left hanging.
            #expect(served > 5)
            #expect(served < 40)
            let stat = Paths.read("/proc/\(child.pid)/stat")
            let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
            let ticks = (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
            #expect(ticks < 100, "zend used \(ticks) ticks of CPU")
            #expect(Paths.read(log).contains("out of file descriptors"))
            // Freeing descriptors lets new clients in again.
            clients.removeAll()
            usleep(100_000)
            let client = try TestClient(port: port)
            #expect(client.ask("Beautiful is better than?", expecting: "Ugly.") == "Ugly.")
        }
    }
}
