import ArgumentParser
import Glibc
import LinuxIO
import ZenBench

/// `zen bench`: a load generator in the spirit of redis-benchmark; every answer is verified.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load zend (or any server of the protocol) and measure requests/s and latency.",
        discussion: """
        Each connection keeps PIPELINE requests in flight, cycling through the book's three \
        questions, and checks every answer byte for byte: a server that frames pipelined \
        requests wrongly shows up as mismatches. Any error or mismatch makes the exit status 1.
        """
    )

    @Option(help: "Server host or address (default 127.0.0.1).")
    var host: String?

    @Option(help: "Server port (default 1060).")
    var port: UInt16?

    @Option(help: ArgumentHelp("Connect to a unix socket instead of host and port.", valueName: "PATH"))
    var unix: String?

    @Option(name: .customShort("c"), help: "Connections.")
    var connections: Int = 50

    @Option(name: .customShort("P"), help: "Requests in flight per connection (pipeline depth).")
    var pipeline: Int = 1

    @Option(name: .customShort("n"), help: "Total requests (default 100000 unless -d is given).")
    var requests: Int?

    @Option(name: .customShort("d"), help: ArgumentHelp("Measure for this long instead of -n.", valueName: "SECONDS"))
    var duration: Double?

    @Option(help: ArgumentHelp("Unmeasured load before measuring (default: 1 with -d, 0 with -n).", valueName: "SECONDS"))
    var warmup: Double?

    @Option(help: "Client threads (default: the CPUs this process may use, at most -c).")
    var threads: Int?

    @Option(help: ArgumentHelp("A connection owed answers that gets none this long is an error.", valueName: "SECONDS"))
    var timeout: Double = 5

    @Flag(help: "Print one JSON object as the last line of stdout.")
    var json = false

    func validate() throws {
        if connections < 1 { throw ValidationError("-c must be at least 1.") }
        if pipeline < 1 || pipeline > 65536 { throw ValidationError("-P must be from 1 to 65536.") }
        if requests != nil && duration != nil { throw ValidationError("Give -n or -d, not both.") }
        if let requests, requests < 1 { throw ValidationError("-n must be at least 1.") }
        if let duration, !(duration > 0 && duration.isFinite) { throw ValidationError("-d must be more than 0 seconds.") }
        if let warmup, !(warmup >= 0 && warmup.isFinite) { throw ValidationError("--warmup must be 0 or more seconds.") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        if !(timeout > 0 && timeout.isFinite) { throw ValidationError("--timeout must be more than 0 seconds.") }
        if unix != nil && (host != nil || port != nil) { throw ValidationError("Give --unix or --host/--port, not both.") }
    }

    func run() throws {
        let address: SocketAddress
        if let unix {
            address = .unix(path: unix)
        } else {
            do {
                address = try SocketAddress.resolve(host: host ?? "127.0.0.1", port: port ?? 1060)[0]
            } catch {
                throw ZenExit.fail("cannot resolve \(host ?? ""): \(error.reason)", code: ZenExit.noHost, command: "bench")
            }
        }
        let length: BenchConfiguration.Length = duration.map { .duration(.seconds($0)) } ?? .requests(requests ?? 100_000)
        let warm = warmup ?? (duration != nil ? 1 : 0)
        let threadCount = min(threads ?? ProcessFacts.availableCPUs, connections)
        let configuration = BenchConfiguration(
            address: address, connections: connections, pipeline: pipeline, threads: threadCount,
            length: length, warmup: .seconds(warm), timeout: .seconds(timeout),
            progress: (duration ?? 3) + warm >= 3)
        let lengthText = duration.map { "\($0) s" } ?? "\(requests ?? 100_000) requests"
        let header = "zen bench: \(address), \(connections) connections, pipeline \(pipeline), "
            + "\(threadCount) threads, \(lengthText) after \(warm) s warm-up\n"
        if json {
            FileDescriptor(rawValue: 2).writeAllIgnoringErrors(header)
        } else {
            print(header, terminator: "")
        }
        let report = Bench.run(configuration)
        if json {
            print(report.json(configuration))
        } else {
            print(report.humanReadable(configuration))
        }
        if !report.isClean {
            let problem = report.firstProblem ?? "no request was answered"
            FileDescriptor(rawValue: 2).writeAllIgnoringErrors(
                "zen bench: \(report.errors) errors, \(report.mismatches) mismatches; first: \(problem)\n")
            throw ExitCode(ZenExit.failed)
        }
    }
}
