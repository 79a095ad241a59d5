import Glibc
import LinuxIO
import Synchronization
import Testing
import TestSupport

extension EndToEnd {
    @Suite("load, fairness and memory")
    struct LoadTests {
        @Test("2,000 concurrent connections are all answered")
        func twoThousandConcurrent() throws {
            let zend = try ZendServer()
            var clients: [TestClient] = []
            for _ in 0 ..< 2000 { clients.append(try zend.connect()) }
            for (index, client) in clients.enumerated() { client.send(bookAnswers[index % 3].question) }
            var wrong = 0
            for (index, client) in clients.enumerated() {
                let answer = bookAnswers[index % 3].answer
                if client.receiveText(count: answer.utf8.count) != answer { wrong += 1 }
            }
            #expect(wrong == 0)
        }

        @Test("300 slow clients trickling partial requests do not delay a normal client")
        func slowClientsDoNotDelayOthers() throws {
            let zend = try ZendServer()
            let slow = try (0 ..< 300).map { _ in try zend.connect() }
            let question = Array("Explicit is better than?".utf8)
            let normal = try zend.connect()
            var worst = 0.0
            // Round by round, every slow client sends one more byte of its request and the
            // normal client asks a question in between: its answers must not wait for them.
            for (round, byte) in question.enumerated() {
                for client in slow { client.send([byte]) }
                let (q, a) = bookAnswers[round % 3]
                var answer = ""
                let elapsed = milliseconds { answer = normal.ask(q, expecting: a) }
                #expect(answer == a)
                worst = max(worst, elapsed)
                if round < question.count - 1 {
                    #expect(slow[round].receive(count: 1, timeout: .milliseconds(1)).isEmpty)
                }
            }
            // Generous bound for a noisy 2-core machine: the point is that no answer waits
            // for a slow client (that would take the idle timeout: a minute).
            #expect(worst < 500, "slowest answer took \(worst) ms")
            var answered = 0
            for client in slow where client.receiveText(count: 9) == "Implicit." { answered += 1 }
            #expect(answered == 300)
        }

        @Test("a client pushing hundreds of MB without reading: zend's memory stays bounded, others are served")
        func floodWithoutReading() throws {
            let zend = try ZendServer(["--threads", "1"])
            let before = try #require(zend.residentBytes)
            let flooder = try zend.connect(receiveBuffer: 4096)
            let chunk = Array(String(repeating: "Beautiful is better than?", count: 2600).utf8)  // ~64 KiB
            let pushed = Atomic<Int>(0)
            let box = UncheckedBox(flooder)
            let pusher = try PosixThread.spawn(name: "flood") {
                // Up to 300 MB, but the kernel buffers fill once zend stops reading.
                for _ in 0 ..< 4700 {
                    guard box.value.send(chunk, timeout: .seconds(2)) else { return }
                    pushed.wrappingAdd(chunk.count, ordering: .relaxed)
                }
            }
            // Meanwhile another client is served normally.
            let other = try zend.connect()
            for round in 0 ..< 20 {
                let (q, a) = bookAnswers[round % 3]
                #expect(other.ask(q, expecting: a, timeout: .seconds(2)) == a)
            }
            pusher.join()
            let after = try #require(zend.residentBytes)
            let growth = after - before
            // Backpressure: zend stopped reading, so the client could push only what
            // socket buffers hold, not 300 MB, and zend's own memory barely moved.
            #expect(pushed.load(ordering: .relaxed) < 64 << 20, "client pushed \(pushed.load(ordering: .relaxed)) bytes")
            #expect(growth < 16 << 20, "zend grew by \(growth) bytes")
            flooder.close()
            #expect(other.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
        }

        @Test("a client streaming garbage without '?' is cut off; zend's memory stays bounded")
        func garbageFlood() throws {
            let zend = try ZendServer(["--threads", "1"])
            let before = try #require(zend.residentBytes)
            let flooder = try zend.connect()
            let chunk = [UInt8](repeating: 0x41, count: 1 << 16)
            var sent = 0
            while sent < 300 << 20, flooder.send(chunk, timeout: .seconds(3)) { sent += chunk.count }
            // The error answer was sent before zend shut its write side.
            let (bytes, _) = flooder.receiveToEnd()
            #expect(String(decoding: bytes, as: UTF8.self) == tooLongAnswer)
            // zend answered the error and closed after the linger timeout (or at EOF).
            let other = try zend.connect()
            #expect(other.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            let growth = try #require(zend.residentBytes) - before
            #expect(growth < 16 << 20, "zend grew by \(growth) bytes")
        }

        @Test("connection churn never applies a closed connection's event to its successor")
        func churn() throws {
            let zend = try ZendServer(["--threads", "1"])
            let failures = Atomic<Int>(0)
            let rounds = Atomic<Int>(0)
            let port = zend.port
            var workers: [PosixThread] = []
            for worker in 0 ..< 4 {
                workers.append(try PosixThread.spawn(name: "churn\(worker)") {
                    let deadline = ContinuousClock.now + .seconds(2)
                    var round = 0
                    while ContinuousClock.now < deadline {
                        guard let client = try? TestClient(port: port) else {
                            failures.wrappingAdd(1, ordering: .relaxed)
                            continue
                        }
                        let (q, a) = bookAnswers[(worker + round) % 3]
                        if round % 2 == 0 {
                            // Close right after asking, with the answer still in flight.
                            client.send(q)
                            if round % 4 == 0 { client.resetOnClose() }
                        } else if client.ask(q, expecting: a, timeout: .seconds(2)) != a {
                            failures.wrappingAdd(1, ordering: .relaxed)
                        }
                        client.close()
                        round += 1
                        rounds.wrappingAdd(1, ordering: .relaxed)
                    }
                })
            }
            // A long-lived client keeps asking throughout; it must never stall.
            let steady = try zend.connect()
            var steadyRounds = 0
            while workers.count == 4, rounds.load(ordering: .relaxed) < 200 || steadyRounds < 50 {
                let (q, a) = bookAnswers[steadyRounds % 3]
                #expect(steady.ask(q, expecting: a, timeout: .seconds(2)) == a)
                steadyRounds += 1
                if steadyRounds > 5000 { break }
            }
            for worker in workers { worker.join() }
            #expect(failures.load(ordering: .relaxed) == 0)
            #expect(rounds.load(ordering: .relaxed) > 200)
        }

        /// A one-reactor zend that has answered once, and its resident memory then: the
        /// allocator and pools are warm, so what follows measures connections, not start-up.
        private func warmedUpZend() throws -> (ZendServer, Int) {
            let zend = try ZendServer(["--threads", "1"])
            do {
                let warm = try zend.connect()
                _ = warm.ask("Simple is better than?", expecting: "Complex.")
            }
            usleep(100_000)
            return (zend, try #require(zend.residentBytes))
        }

        @Test("10,000 idle connections: resident memory per connection is small")
        func idleConnectionMemory() throws {
            let (zend, before) = try warmedUpZend()
            var clients: [TestClient] = []
            clients.reserveCapacity(10_000)
            for _ in 0 ..< 10_000 { clients.append(try zend.connect()) }
            // Every connection is accepted and registered once one round trip on the last works.
            #expect(clients.last!.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            let after = try #require(zend.residentBytes)
            let perConnection = Double(after - before) / 10_000
            print("zend RSS with 10,000 idle connections: \(after) bytes (\(before) before; \(perConnection) bytes per connection)")
            #expect(zend.openDescriptors >= 10_000)
            if Sanitizer.checks("resident bytes per idle connection <= 200", distortedBy: ["address", "thread"],
                                because: "the sanitizer's shadow memory and allocator inflate RSS") {
                #expect(perConnection <= 200, "\(perConnection) bytes per idle connection")
            }
        }

        @Test("memory is given back after load: 10,000 connections holding partial requests close, RSS returns")
        func memoryReturnedAfterLoad() throws {
            let (zend, before) = try warmedUpZend()
            var clients: [TestClient] = []
            clients.reserveCapacity(10_000)
            // Each holds a partial request, so each takes a receive buffer.
            for _ in 0 ..< 10_000 {
                let client = try zend.connect()
                client.send("Beautiful is")
                clients.append(client)
            }
            #expect(clients.last!.ask(" better than?", expecting: "Ugly.") == "Ugly.")
            let loaded = try #require(zend.residentBytes)
            clients.removeAll()
            // The allocator is trimmed a second after a wave of closes.
            var after = loaded
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline {
                usleep(200_000)
                after = try #require(zend.residentBytes)
                if after - before < 8 << 20 { break }
            }
            #expect(loaded - before > 20 << 20, "the load took only \((loaded - before) >> 20) MiB: it proves nothing")
            if Sanitizer.checks("RSS back within 8 MiB of the start after the load", distortedBy: ["address", "thread"],
                                because: "the sanitizer's allocator keeps freed memory (quarantine, its own caches)") {
                #expect(after - before < 8 << 20, "RSS \(before >> 20) MiB before, \(loaded >> 20) MiB loaded, \(after >> 20) MiB after")
            }
        }
    }
}

/// Hands a non-Sendable value to a helper thread the test joins before touching it again.
final class UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
