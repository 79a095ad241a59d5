import Glibc
import Logging

/// A swift-log handler writing readable lines to stderr:
/// `2026-11-25T14:16:11.123Z warning request too long client_address=127.0.0.1:5555`.
public struct ConsoleLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let sink: LogSink

    public init(level: Logger.Level, sink: LogSink) {
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var text = Self.timestamp() + " " + event.level.rawValue + " " + event.message.description
        var all = metadata
        if let explicit = event.metadata { all.merge(explicit) { $1 } }
        if let error = event.error { all["error"] = "\(error)" }
        for key in all.keys.sorted() {
            text += " \(key)=\(all[key]!)"
        }
        text += "\n"
        sink.write(Array(text.utf8))
    }

    /// UTC wall-clock time with milliseconds, ISO 8601.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = now.tv_nsec / 1_000_000
        let millisText = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(millisText)Z"
    }
}

/// Where formatted log entries go.
public protocol LogSink: Sendable {
    /// Hands over one entry; must not block the caller for long.
    func write(_ entry: [UInt8])
}

/// Writes each entry straight to a file descriptor (stderr by default).
public struct DirectLogSink: LogSink {
    private let fd: Int32
    public init(fd: Int32 = 2) { self.fd = fd }
    public func write(_ entry: [UInt8]) {
        entry.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written > 0 {
                    offset += written
                } else if written == -1 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }
}
