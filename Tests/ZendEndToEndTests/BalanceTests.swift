import Glibc
import Testing
import TestSupport

extension EndToEnd {
    @Suite("balance across reactors")
    struct BalanceTests {
        /// The per-reactor figures of zend's last log line, after SIGTERM.
        private func perReactor(_ zend: ZendServer, _ key: String) throws -> [Int] {
            zend.process.signal(SIGTERM)
            #expect(zend.process.wait(timeout: .seconds(10)) == 0)
            guard let line = zend.log.split(separator: "\n").last(where: { $0.contains(" msg=stopped ") }),
                  let field = line.split(separator: " ").first(where: { $0.hasPrefix("\(key)=") }) else {
                throw Failure("no '\(key)=' in zend's stopped line:\n\(zend.log)")
            }
            return field.dropFirst(key.count + 1).split(separator: ",").compactMap { Int($0) }
        }

        // EPOLLEXCLUSIVE wakes the reactors sharing a listener in a fixed order: left alone,
        // the first idle one takes nearly every connection (95-99% at 50 clients). Clients
        // that connect one after another, each answered before the next, are the hardest
        // case: every connection finds both reactors idle.
        @Test("two reactors: connections opened one after another are shared evenly", arguments: [2, 8, 50])
        func connectionsSpreadEvenly(clients: Int) throws {
            let zend = try ZendServer(["--threads", "2", "--log-target", "console"])
            var open: [TestClient] = []
            for index in 0 ..< clients {
                let client = try zend.connect()
                let (question, answer) = bookAnswers[index % 3]
                #expect(client.ask(question, expecting: answer) == answer)
                open.append(client)
            }
            let accepted = try perReactor(zend, "accepted_per_reactor")
            #expect(accepted.count == 2 && accepted.reduce(0, +) == clients)
            #expect(accepted.allSatisfy { abs($0 - clients / 2) <= 1 }, "connections per reactor: \(accepted)")
        }

        @Test("two reactors: requests follow the connections (each reactor answers 35-65%)")
        func requestsSpreadEvenly() throws {
            let zend = try ZendServer(["--threads", "2", "--log-target", "console"])
            let clients = try (0 ..< 8).map { _ in try zend.connect() }
            for round in 0 ..< 200 {
                for (index, client) in clients.enumerated() {
                    let (question, answer) = bookAnswers[(index + round) % 3]
                    #expect(client.ask(question, expecting: answer) == answer)
                }
            }
            let requests = try perReactor(zend, "requests_per_reactor")
            let total = requests.reduce(0, +)
            #expect(total == 8 * 200)
            #expect(requests.allSatisfy { 35 * total <= 100 * $0 && 100 * $0 <= 65 * total }, "requests per reactor: \(requests)")
        }
    }
}
