import Glibc
import LinuxIO
import Testing
import TestSupport

/// End-to-end tests: the built `zend` on an ephemeral port, real sockets.
///
/// Serialized: several tests put real load on a 2-core machine, and a test that
/// measures latency or CPU must not share it with another.
@Suite("zend end to end", .serialized, .timeLimit(.minutes(3)))
struct EndToEnd {}

/// The book's table, as the tests expect it.
let bookAnswers: [(question: String, answer: String)] = [
    ("Beautiful is better than?", "Ugly."),
    ("Explicit is better than?", "Implicit."),
    ("Simple is better than?", "Complex."),
]
let unknownAnswer = "Error: unknown aphorism."
let tooLongAnswer = "Error: request too long."

extension TestClient {
    /// Sends `question` and reads exactly as many bytes as `expected` has.
    func ask(_ question: String, expecting expected: String, timeout: Duration = .seconds(10)) -> String {
        send(question)
        return receiveText(count: expected.utf8.count, timeout: timeout)
    }

    /// Sends `text` and reports whether zend closed the connection without a byte of
    /// answer (a refused connection: end of file or reset within 2 s).
    func isClosedUnanswered(after text: String) -> Bool {
        send(text)
        let (bytes, end) = receiveToEnd(timeout: .seconds(2))
        return bytes.isEmpty && (end == .endOfFile || end == .reset)
    }

    /// Asks the book's questions in turn, `rounds` times, checking every answer; the time
    /// each answer took, in milliseconds (for tests of what other clients cost this one).
    func answerTimes(rounds: Int) -> [Double] {
        (0 ..< rounds).map { round in
            let (question, expected) = bookAnswers[round % 3]
            var answer = ""
            let elapsed = milliseconds { answer = ask(question, expecting: expected, timeout: .seconds(5)) }
            #expect(answer == expected, "answer \(round + 1)")
            return elapsed
        }
    }
}

/// Runs a command to completion; returns its exit code and combined output.
func runCommand(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                timeout: Duration = .seconds(30)) throws -> (code: Int32?, output: String) {
    let directory = Paths.scratchDirectory("cmd")
    defer { Paths.remove(directory) }
    let output = directory + "/output"
    let child = try ChildProcess(executable, arguments, environment: environment, stdout: output, stderr: output)
    defer { child.stop() }
    child.wait(timeout: timeout)
    return (child.exitCode, Paths.read(output))
}

/// A TCP port that was free a moment ago (for options that take a fixed port).
func freePort() throws -> UInt16 {
    let probe = try Socket.listen(on: .ipv4(address: 0x7f00_0001, port: 0))
    defer { probe.close() }
    return try probe.localAddress()?.port ?? 0
}

/// Milliseconds elapsed while running `body`.
func milliseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}

/// `rounds` short connections, one question each; the slowest round trip in
/// milliseconds and how many answers were wrong or missing.
func shortConnections(port: UInt16, rounds: Int) throws -> (worst: Double, wrong: Int) {
    var worst = 0.0
    var wrong = 0
    for round in 0 ..< rounds {
        let client = try TestClient(port: port)
        let (question, expected) = bookAnswers[round % 3]
        var answer = ""
        worst = max(worst, milliseconds { answer = client.ask(question, expecting: expected, timeout: .seconds(5)) })
        if answer != expected { wrong += 1 }
    }
    return (worst, wrong)
}

/// The `key: value` lines of a `zen stats` report (section headers and reactor lines left out).
func statsFields(_ report: String) -> [String: String] {
    var fields: [String: String] = [:]
    for line in report.split(separator: "\n") where !line.hasPrefix("#") {
        guard let colon = line.firstIndex(of: ":"), !line.hasPrefix("reactor") || line.hasPrefix("reactor_") else { continue }
        fields[String(line[..<colon])] = String(line[line.index(after: colon)...].dropFirst())
    }
    return fields
}
