import Glibc
import LinuxIO
import LogEvents
import Logging

/// Where the log writer thread sends records.
public protocol LogBackend: Sendable {
    /// Writes one record; may block (that is why it runs on the writer thread).
    func write(_ record: LogRecord)
}

/// A bounded queue of log records and the one thread that writes them out.
///
/// Logging must never stall a reactor, yet journald's socket blocks while journald is
/// stopped or slow and a full stderr pipe blocks a write. So callers only append
/// here (dropping, and counting, when full); the writer blocks instead, and reports
/// how many records were dropped once writing works again.
public final class LogQueue: Sendable {
    private struct State {
        var records: [LogRecord] = []
        var dropped = 0
        var droppedTotal: UInt64 = 0
        var finishing = false
    }

    private let state = Lock(State())
    private let capacity: Int
    private let backend: any LogBackend
    private let wakeup: EventFD
    private let finished: EventFD
    private let thread = Lock<PosixThread?>(nil)

    /// Starts the writer thread.
    public init(capacity: Int = 4096, backend: any LogBackend) throws(SystemError) {
        self.capacity = capacity
        self.backend = backend
        wakeup = try EventFD()
        finished = try EventFD()
        let queue = self
        let writer = try PosixThread.spawn(name: "zend-log") { queue.run() }
        thread.withLock { $0 = writer }
    }

    /// Queues a record; never blocks (beyond a short lock).
    public func append(_ record: LogRecord) {
        let wasEmpty: Bool? = state.withLock { state in
            guard !state.finishing, state.records.count < capacity else {
                state.dropped += 1
                state.droppedTotal += 1
                return nil
            }
            state.records.append(record)
            return state.records.count == 1
        }
        // The writer sleeps only when it found the queue empty: wake it on that edge alone.
        if wasEmpty == true { wakeup.signal() }
    }

    /// Records dropped so far because the queue was full (not yet reported).
    public var droppedCount: Int { state.withLock { $0.dropped } }

    /// Records dropped since start.
    public var droppedTotal: UInt64 { state.withLock { $0.droppedTotal } }

    /// Writes what is queued and stops the writer, waiting at most `timeout` (the
    /// backend may be blocked for good; exit must not hang on it).
    public func finish(timeout: Duration = .seconds(2)) {
        state.withLock { $0.finishing = true }
        wakeup.signal()
        var entry = pollfd(fd: finished.fd.rawValue, events: Int16(POLLIN), revents: 0)
        if poll(&entry, 1, timeout.milliseconds) > 0 {
            thread.withLock { $0 }?.join()
        }
    }

    private func run() {
        // Signals are for the supervisor's signalfd, never for this thread.
        Signals.block([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2])
        while true {
            var entry = pollfd(fd: wakeup.fd.rawValue, events: Int16(POLLIN), revents: 0)
            _ = poll(&entry, 1, -1)
            wakeup.drain()
            while true {
                let (batch, dropped, finishing) = state.withLock { state in
                    let taken = (state.records, state.dropped, state.finishing)
                    state.records.removeAll(keepingCapacity: true)
                    state.dropped = 0
                    return taken
                }
                for record in batch { backend.write(record) }
                if dropped > 0 {
                    backend.write(LogRecord(
                        level: .warning,
                        message: "log writer was blocked; log messages were dropped",
                        metadata: [("dropped", "\(dropped)"), (LifecycleEvent.metadataKey, LifecycleEvent.logsDropped.rawValue)],
                        file: #fileID, function: #function, line: #line))
                }
                if batch.isEmpty && dropped == 0 {
                    if finishing {
                        finished.signal()
                        return
                    }
                    break
                }
            }
        }
    }
}

/// A swift-log handler that captures records and hands them to a `LogQueue`.
public struct QueuedLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let queue: LogQueue

    public init(level: Logger.Level, queue: LogQueue) {
        self.logLevel = level
        self.queue = queue
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        if let error = event.error { merged["error"] = "\(error)" }
        let flattened = merged.map { (key: $0.key, value: Self.text($0.value)) }.sorted { $0.key < $1.key }
        queue.append(LogRecord(level: event.level, message: event.message.description, metadata: flattened,
                               file: event.file, function: event.function, line: event.line))
    }

    private static func text(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): return text
        case .stringConvertible(let value): return value.description
        case .array(let values): return "[" + values.map(text).joined(separator: ", ") + "]"
        case .dictionary(let values):
            return "[" + values.sorted { $0.key < $1.key }.map { "\($0.key): \(text($0.value))" }.joined(separator: ", ") + "]"
        }
    }
}
