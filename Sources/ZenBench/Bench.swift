import CZendShims
import Glibc
import Histogram
import LinuxIO
import Synchronization

/// One load run's settings (validated by the command line).
public struct BenchConfiguration: Sendable {
    /// When the run ends.
    public enum Length: Sendable, Equatable {
        /// After this many requests in all (warm-up included).
        case requests(Int)
        /// After this long, measured after the warm-up.
        case duration(Duration)
    }

    public var address: SocketAddress
    public var connections: Int
    public var pipeline: Int
    public var threads: Int
    public var length: Length
    public var warmup: Duration
    /// A connection with requests in flight and no answer for this long is an error.
    public var timeout: Duration
    /// Print a progress line to stderr every second.
    public var progress: Bool
    public var workload: Workload

    public init(address: SocketAddress, connections: Int, pipeline: Int, threads: Int, length: Length,
                warmup: Duration, timeout: Duration = .seconds(5), progress: Bool = false,
                workload: Workload = .book) {
        self.address = address
        self.connections = connections
        self.pipeline = pipeline
        self.threads = threads
        self.length = length
        self.warmup = warmup
        self.timeout = timeout
        self.progress = progress
        self.workload = workload
    }
}

/// What a run measured.
public struct BenchReport: Sendable {
    /// Requests answered correctly after the warm-up.
    public var requests: Int
    /// Connections that failed: refused, reset, closed early, or stalled.
    public var errors: Int
    /// Answers that differed from what was owed, byte for byte.
    public var mismatches: Int
    /// Seconds the measured requests took.
    public var seconds: Double
    /// Latency of each measured request, in microseconds.
    public var latency: Histogram<UInt64>
    /// CPU time of this process over the run, in percent of one core.
    public var clientCPUPercent: Double
    /// The first error or mismatch, described, if any.
    public var firstProblem: String?

    /// Requests per second.
    public var requestsPerSecond: Double { seconds > 0 ? Double(requests) / seconds : 0 }
    /// True when nothing went wrong.
    public var isClean: Bool { errors == 0 && mismatches == 0 && requests > 0 }
}

/// Runs the load: one epoll loop per thread, each driving its share of the connections.
public enum Bench {
    public static func run(_ configuration: BenchConfiguration) -> BenchReport {
        let shared = SharedProgress()
        var shares: [(connections: Int, requests: Int?)] = []
        for index in 0 ..< configuration.threads {
            let connections = configuration.connections / configuration.threads
                + (index < configuration.connections % configuration.threads ? 1 : 0)
            var requests: Int?
            if case .requests(let total) = configuration.length {
                requests = total / configuration.threads + (index < total % configuration.threads ? 1 : 0)
            }
            shares.append((connections, requests))
        }
        let results = Lock<[WorkerResult]>([])
        let cpuBefore = cpuSeconds()
        var threads: [PosixThread] = []
        for (index, share) in shares.enumerated() {
            let thread = try? PosixThread.spawn(name: "zen-bench-\(index)") {
                let result: WorkerResult
                do {
                    let worker = try Worker(configuration: configuration, connections: share.connections,
                                            requestBudget: share.requests, shared: shared)
                    result = worker.run()
                } catch {
                    shared.connected.wrappingAdd(1, ordering: .releasing)
                    shared.finished.wrappingAdd(1, ordering: .releasing)
                    result = WorkerResult(errors: 1, latency: Worker.makeHistogram(), firstProblem: "\(error)")
                }
                results.withLock { $0.append(result) }
            }
            if let thread { threads.append(thread) }
        }
        // Start together once every worker has connected, so nobody measures alone.
        while shared.connected.load(ordering: .acquiring) < threads.count { usleep(1_000) }
        let start = MonotonicInstant.now()
        shared.start.store(start.nanoseconds, ordering: .releasing)
        if configuration.progress { reportProgress(shared, threads: threads.count, start: start, configuration) }
        for thread in threads { thread.join() }
        let cpu = cpuSeconds() - cpuBefore

        var report = BenchReport(requests: 0, errors: threads.count < configuration.threads ? 1 : 0, mismatches: 0,
                                 seconds: 0, latency: Worker.makeHistogram(), clientCPUPercent: 0, firstProblem: nil)
        var first = Int64.max, last = Int64.min
        for result in results.withLock({ $0 }) {
            report.requests += result.requests
            report.errors += result.errors
            report.mismatches += result.mismatches
            report.latency.add(result.latency)
            report.firstProblem = report.firstProblem ?? result.firstProblem
            if result.requests > 0 {
                first = min(first, result.measuredFrom)
                last = max(last, result.measuredUntil)
            }
        }
        if case .duration(let duration) = configuration.length {
            report.seconds = Double(duration.nanoseconds) / 1e9
        } else if last > first {
            report.seconds = Double(last - first) / 1e9
        }
        let wall = Double(MonotonicInstant.now().nanoseconds - start.nanoseconds) / 1e9
        report.clientCPUPercent = wall > 0 ? cpu / wall * 100 : 0
        return report
    }

    /// One line a second on stderr while the run lasts.
    private static func reportProgress(_ shared: SharedProgress, threads: Int, start: MonotonicInstant,
                                       _ configuration: BenchConfiguration) {
        var previous = 0
        var tick = 1
        while shared.finished.load(ordering: .acquiring) < threads {
            let deadline = start.nanoseconds + Int64(tick) * 1_000_000_000
            while MonotonicInstant.now().nanoseconds < deadline, shared.finished.load(ordering: .acquiring) < threads {
                usleep(20_000)
            }
            guard shared.finished.load(ordering: .acquiring) < threads else { break }
            let answered = shared.totalAnswered
            FileDescriptor(rawValue: 2).writeAllIgnoringErrors(
                "zen bench: \(tick) s: \(answered) answers, \(answered - previous) in the last second\n")
            previous = answered
            tick += 1
        }
    }

    private static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}

/// Counters the workers publish for the coordinator (start barrier, progress).
final class SharedProgress: Sendable {
    let connected = Atomic<Int>(0)
    let finished = Atomic<Int>(0)
    /// Monotonic start in nanoseconds; 0 until every worker has connected.
    let start = Atomic<Int64>(0)
    private let answered = Atomic<Int>(0)

    func add(answered count: Int) {
        answered.wrappingAdd(count, ordering: .relaxed)
    }

    var totalAnswered: Int { answered.load(ordering: .relaxed) }
}

struct WorkerResult: Sendable {
    var requests = 0
    var errors = 0
    var mismatches = 0
    var latency: Histogram<UInt64>
    var measuredFrom: Int64 = .max
    var measuredUntil: Int64 = .min
    var firstProblem: String?
}
