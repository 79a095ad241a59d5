import Glibc
import LinuxIO
import Logging
import Synchronization
import Testing
@testable import SystemdSupport

/// A backend that blocks until released, like journald while it is stopped.
private final class GatedBackend: LogBackend, Sendable {
    let open = Atomic<Bool>(false)
    let entered = Atomic<Bool>(false)
    let written = Lock<[String]>([])

    func write(_ record: LogRecord) {
        entered.store(true, ordering: .releasing)
        while !open.load(ordering: .acquiring) { usleep(1_000) }
        written.withLock { $0.append(record.message + (record["dropped"].map { " dropped=\($0)" } ?? "")) }
    }
}

@Suite("log queue")
struct LogQueueTests {
    @Test("appending never waits for a blocked writer; what does not fit is counted and reported later")
    func dropsAndReports() throws {
        let backend = GatedBackend()
        let queue = try LogQueue(capacity: 10, backend: backend)
        func entry(_ index: Int) -> LogRecord {
            LogRecord(level: .info, message: "entry \(index)", metadata: [], file: "", function: "", line: 0)
        }
        queue.append(entry(0))
        while !backend.entered.load(ordering: .acquiring) { usleep(1_000) }
        // The writer is stuck on entry 0: 10 more fit in the queue, the rest are dropped.
        let start = ContinuousClock.now
        for index in 1 ..< 100 { queue.append(entry(index)) }
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(queue.droppedCount == 89)
        backend.open.store(true, ordering: .releasing)
        queue.finish()
        let written = backend.written.withLock { $0 }
        #expect(written.count == 12)
        #expect(written.first == "entry 0")
        #expect(written.last == "log writer was blocked; log messages were dropped dropped=89")
        #expect(queue.droppedTotal == 89, "the total for zen stats is kept after the report")
    }

    @Test("records keep their order and metadata")
    func order() throws {
        let backend = GatedBackend()
        backend.open.store(true, ordering: .releasing)
        let queue = try LogQueue(backend: backend)
        let logger = Logger(label: "test") { _ in QueuedLogHandler(level: .info, queue: queue) }
        for index in 0 ..< 50 { logger.info("line \(index)") }
        logger.debug("not logged at info level")
        queue.finish()
        #expect(backend.written.withLock { $0 } == (0 ..< 50).map { "line \($0)" })
    }
}
