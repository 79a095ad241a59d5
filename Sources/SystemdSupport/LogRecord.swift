import Glibc
import Logging

/// One log entry as captured on the logging thread: formatting happens later, on the writer.
public struct LogRecord: Sendable {
    public var level: Logger.Level
    public var message: String
    /// Metadata, flattened to text and sorted by key.
    public var metadata: [(key: String, value: String)]
    public var file: String
    public var function: String
    public var line: UInt
    /// Wall-clock time of the call (CLOCK_REALTIME).
    public var seconds: Int
    public var nanoseconds: Int

    public init(level: Logger.Level, message: String, metadata: [(key: String, value: String)],
                file: String, function: String, line: UInt) {
        self.level = level
        self.message = message
        self.metadata = metadata
        self.file = file
        self.function = function
        self.line = line
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        seconds = now.tv_sec
        nanoseconds = now.tv_nsec
    }

    /// The value of metadata `key`, if present.
    public subscript(key: String) -> String? {
        metadata.first { $0.key == key }?.value
    }
}
