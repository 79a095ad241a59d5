// Microbenchmarks of the pure protocol: the framer (`ZenService.serve`), the
// aphorism table and the aphorism-file parser.
//
// Every figure is per request (per line for the parser): each benchmark declares
// how many requests one iteration handles through `scalingFactor`, and the tool
// divides by it. Buffers are built in each benchmark's `setup` and measurement
// starts after them, so the malloc counts show what the protocol code itself
// allocates; on the hot path (everything but the parser) that should be zero.

import Benchmark
import ZenProtocol

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        scalingFactor: .kilo,
        // Time bounds each benchmark; the iteration cap is only a backstop.
        maxDuration: .seconds(1),
        maxIterations: 1_000_000
    )

    // MARK: The framer

    Benchmark("framer: one request per read") { (benchmark: Benchmark, fixture: FramerFixture) in
        let service = fixture.service, input = fixture.input.read, output = fixture.output.bytes
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(service.serve(input, into: output))
        }
    } setup: {
        let fixture = FramerFixture(input: Fixtures.request(0))
        fixture.expect(requests: 1)
        return fixture
    }

    // One read of a pipelining client: 625 whole requests (14,792 bytes, in a 16 KiB
    // receive buffer). 625 rather than the ~650 that would fill 16 KiB exactly, because
    // the scaling factor must be a power of 1,000: 1,600 reads of 625 requests = 10^6.
    Benchmark(
        "framer: 16 KiB pipelined read",
        configuration: .init(scalingFactor: .mega)
    ) { (benchmark: Benchmark, fixture: FramerFixture) in
        let service = fixture.service, input = fixture.input.read, output = fixture.output.bytes
        let reads = benchmark.scaledIterations.count / Fixtures.pipelinedRequests
        benchmark.startMeasurement()
        for _ in 0 ..< reads {
            blackHole(service.serve(input, into: output))
        }
    } setup: {
        let requests = (0 ..< Fixtures.pipelinedRequests).flatMap { Fixtures.request($0) }
        precondition(requests.count <= 16 * 1024, "the pipelined read must fit a 16 KiB buffer")
        precondition(ScalingFactor.mega % Fixtures.pipelinedRequests == 0, "whole reads per iteration")
        let fixture = FramerFixture(input: requests)
        fixture.expect(requests: Fixtures.pipelinedRequests)
        return fixture
    }

    // A request arriving one byte per read. The reactor hands `serve` everything
    // received and not yet consumed, so each call rescans the partial request from
    // its start: 25 calls per request, the last one answering.
    Benchmark("framer: one byte at a time") { (benchmark: Benchmark, fixture: FramerFixture) in
        let service = fixture.service, input = fixture.input.read, output = fixture.output.bytes
        let base = input.baseAddress!, length = input.count
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for received in 1 ... length {
                blackHole(service.serve(UnsafeRawBufferPointer(start: base, count: received), into: output))
            }
        }
    } setup: {
        let fixture = FramerFixture(input: Fixtures.request(0))
        fixture.expectOneByteAtATime()
        return fixture
    }

    // MARK: The table

    for (name, key) in [("known key", Fixtures.questions[1]), ("unknown key", "Ugly is better than?")] {
        Benchmark("table lookup: \(name)") { (benchmark: Benchmark, fixture: LookupFixture) in
            let table = fixture.table, key = fixture.key.read
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(table.answer(for: key))
            }
        } setup: {
            let fixture = LookupFixture(key: key)
            precondition((fixture.table.answer(for: fixture.key.read) != nil) == (name == "known key"))
            return fixture
        }
    }

    // MARK: The aphorism file (reload path, not hot: allocations are expected)

    // One iteration parses the whole file; the scaling factor of 1,000 makes every
    // figure per line.
    Benchmark("aphorism file parse (per line)") { (benchmark: Benchmark, contents: [UInt8]) in
        benchmark.startMeasurement()
        blackHole(try! AphorismFile.parse(contents, name: "bench.aphorisms"))
    } setup: {
        let contents = Fixtures.aphorismFile(lines: ScalingFactor.kilo)
        let table = try AphorismFile.parse(contents, name: "bench.aphorisms")
        precondition(table.count == ScalingFactor.kilo)
        return contents
    }
}

/// The scaling factors as plain numbers, for arithmetic on request counts.
enum ScalingFactor {
    static let kilo = BenchmarkScalingFactor.kilo.rawValue
    static let mega = BenchmarkScalingFactor.mega.rawValue
}

/// The requests and files the benchmarks feed the protocol.
enum Fixtures {
    /// The book's three questions, cycled through by the pipelined read.
    static let questions = AphorismTable.defaultEntries.map(\.question)
    /// Whole requests in one pipelined read (see the benchmark for why 625).
    static let pipelinedRequests = 625

    /// The bytes of request number `index`, cycling through the book's questions.
    static func request(_ index: Int) -> [UInt8] {
        Array(questions[index % questions.count].utf8)
    }

    /// An aphorism file of `lines` distinct entries, one per line.
    static func aphorismFile(lines: Int) -> [UInt8] {
        var text = ""
        for index in 0 ..< lines {
            text += "Aphorism number \(index) is better than? Its answer, number \(index).\n"
        }
        return Array(text.utf8)
    }
}

/// Memory allocated once, before measurement, and freed with its owner.
final class Buffer {
    let bytes: UnsafeMutableRawBufferPointer

    var read: UnsafeRawBufferPointer { UnsafeRawBufferPointer(bytes) }

    init(zeroed count: Int) {
        bytes = .allocate(byteCount: count, alignment: 16)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
    }

    init(copying contents: [UInt8]) {
        bytes = .allocate(byteCount: contents.count, alignment: 16)
        bytes.copyBytes(from: contents)
    }

    deinit { bytes.deallocate() }
}

/// A service with an input read and an output buffer the size of a send buffer.
final class FramerFixture {
    let service = ZenService()
    let input: Buffer
    let output = Buffer(zeroed: 16 * 1024)

    init(input: [UInt8]) {
        self.input = Buffer(copying: input)
    }

    /// Checks, outside measurement, that `serve` answers all `requests` in the input.
    func expect(requests: Int) {
        let result = service.serve(input.read, into: output.bytes)
        precondition(result.requests == requests && result.consumed == input.bytes.count && result.stop == .needInput,
                     "unexpected serve result \(result)")
        let expected = (0 ..< requests).flatMap { Array(service.table.answer(for: Fixtures.questions[$0 % Fixtures.questions.count]).utf8) }
        precondition(Array(UnsafeRawBufferPointer(rebasing: output.read[..<result.produced])) == expected,
                     "wrong answers")
    }

    /// Checks that every prefix short of the `?` waits for input and the whole request is answered.
    func expectOneByteAtATime() {
        for received in 1 ... input.bytes.count {
            let result = service.serve(UnsafeRawBufferPointer(rebasing: input.read[..<received]), into: output.bytes)
            let complete = received == input.bytes.count
            precondition(result.requests == (complete ? 1 : 0) && result.consumed == (complete ? received : 0),
                         "unexpected serve result \(result) after \(received) bytes")
        }
    }
}

/// The default table and one key's bytes.
final class LookupFixture {
    let table = AphorismTable.default
    let key: Buffer

    init(key: String) {
        self.key = Buffer(copying: Array(key.utf8))
    }
}
