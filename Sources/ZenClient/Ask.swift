import ArgumentParser
import Glibc
import LinuxIO

/// `zen ask`: sends each question and prints its answer, like the book's `client.py`.
struct Ask: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask zend one or more questions and print each answer on its own line.",
        discussion: """
        Each QUESTION is sent as it is, '?' included, on a connection of its own; for example:
          zen ask "Beautiful is better than?"
        An error answer ('Error: unknown aphorism.') is printed like any other; with -e \
        it also makes the exit status 1, as redis-cli -e does.
        """
    )

    @Option(help: ArgumentHelp("Server host or address.", valueName: "HOST"))
    var host: String = "127.0.0.1"

    @Option(help: ArgumentHelp("Server port.", valueName: "PORT"))
    var port: UInt16 = 1060

    @Option(help: ArgumentHelp("Connect to a unix socket instead of host and port.", valueName: "PATH"),
            completion: .file())
    var unix: String?

    @Option(help: ArgumentHelp("Give up waiting for an answer after this long.", valueName: "SECONDS"))
    var timeout: Double = 10

    @Flag(name: [.customShort("e"), .customLong("fail-on-error")],
          help: "Exit with status 1 if any answer is an error answer ('Error: ...'), after printing them all.")
    var failOnError = false

    @Argument(help: ArgumentHelp("Questions, each ending with '?'.", valueName: "QUESTION"))
    var questions: [String]

    func validate() throws {
        if questions.isEmpty { throw ValidationError("Give at least one QUESTION.") }
        for question in questions {
            guard question.hasSuffix("?"), question.utf8.filter({ $0 == UInt8(ascii: "?") }).count == 1 else {
                throw ValidationError("Each QUESTION must end with '?' and hold no other '?': \"\(question)\".")
            }
        }
        if !(timeout > 0) { throw ValidationError("--timeout must be more than 0 seconds.") }
    }

    func run() throws {
        var addresses: [SocketAddress] = []
        if let unix {
            addresses = [.unix(path: unix)]
        } else {
            do {
                addresses = try SocketAddress.resolve(host: host, port: port)
            } catch {
                throw fail("cannot resolve \(host): \(error.reason)", code: ZenExit.noHost)
            }
        }
        var sawErrorAnswer = false
        for question in questions {
            let answer = try ask(question, addresses)
            print(answer)
            if answer.hasPrefix(Self.errorAnswerPrefix) { sawErrorAnswer = true }
        }
        if failOnError && sawErrorAnswer { throw ExitCode(ZenExit.failed) }
    }

    /// How zend's error answers begin (`Error: unknown aphorism.`, `Error: request too long.`).
    static let errorAnswerPrefix = "Error: "

    /// One connection per question: send it, shut the write side, read to EOF. zend
    /// sends every owed answer before closing, so the answer needs no delimiter.
    private func ask(_ question: String, _ addresses: [SocketAddress]) throws -> String {
        var lastError: SystemError?
        for address in addresses {
            let fd: FileDescriptor
            do {
                fd = try Socket.connect(to: address)
            } catch {
                lastError = error
                continue
            }
            defer { fd.close() }
            do {
                try fd.setReceiveTimeout(seconds: timeout)
                try fd.sendAll(Array(question.utf8))
                try fd.shutdown(Int32(SHUT_WR))
                let answer = try fd.readToEnd()
                if answer.isEmpty {
                    throw fail("\(address) closed the connection without answering \"\(question)\"", code: ZenExit.protocolError)
                }
                return String(decoding: answer, as: UTF8.self)
            } catch let error as SystemError {
                if error.errno == EAGAIN {
                    throw fail("no answer from \(address) within \(timeout) s", code: ZenExit.timedOut)
                }
                throw fail("\(address): \(error)", code: ZenExit.ioError)
            }
        }
        let target = unix.map { "unix:\($0)" } ?? "\(host):\(port)"
        let reason = lastError.map { $0.reason } ?? "no address"
        throw fail("cannot connect to \(target): \(reason) (is zend running?)", code: ZenExit.unavailable)
    }

    private func fail(_ message: String, code: Int32) -> ExitCode {
        ZenExit.fail(message, code: code)
    }
}
