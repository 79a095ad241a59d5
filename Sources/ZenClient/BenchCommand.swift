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

    @Option(help: ArgumentHelp("Server host or address. (default: 127.0.0.1)", valueName: "HOST"))
    var host: String?

    @Option(help: ArgumentHelp("Server port. (default: 1060)", valueName: "PORT"))
    var port: UInt16?

    @Option(help: ArgumentHelp("Connect to a unix socket instead of host and port.", valueName: "PATH"),
            completion: .file())
    var unix: String?

    @Option(name: [.customShort("c"), .long], help: ArgumentHelp("Connections.", valueName: "N"))
    var connections: Int = 50

    @Option(name: [.customShort("P"), .long],
            help: ArgumentHelp("Requests in flight per connection (pipeline depth).", valueName: "N"))
    var pipeline: Int = 1

    @Option(name: [.customShort("n"), .long],
            help: ArgumentHelp("Total requests. (default: 100000 unless -d is given)", valueName: "N"))
    var requests: Int?

    @Option(name: [.customShort("d"), .long],
            help: ArgumentHelp("Measure for this long instead of -n.", valueName: "SECONDS"))
    var duration: Double?

    @Option(help: ArgumentHelp("Unmeasured load before measuring. (default: 1 with -d, 0 with -n)", valueName: "SECONDS"))
    var warmup: Double?

    @Option(help: ArgumentHelp("Client threads. (default: the CPUs this process may use, at most -c)", valueName: "N"))
    var threads: Int?

    @Option(help: ArgumentHelp("A connection owed answers that gets none this long is an error.", valueName: "SECONDS"))
    var timeout: Double = 5

    @Flag(help: "Print one JSON object as the last line of stdout.")
    var json = false

    func validate() throws {
        if connections < 1 { throw ValidationError("-c/--connections must be at least 1.") }
        if pipeline < 1 || pipeline > 65536 { throw ValidationError("-P/--pipeline must be from 1 to 65536.") }
        if requests != nil && duration != nil { throw ValidationError("Give -n/--requests or -d/--duration, not both.") }
        if let requests, requests < 1 { throw ValidationError("-n/--requests must be at least 1.") }
        if let duration, !(duration > 0 && duration.isFinite) { throw ValidationError("-d/--duration must be more than 0 seconds.") }
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
