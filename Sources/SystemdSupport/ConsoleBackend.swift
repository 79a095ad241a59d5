import Glibc
import Logging

/// Writes records as readable lines to a descriptor (stderr):
/// `2026-11-25T14:16:11.123Z warning request too long client_address=127.0.0.1:5555`.
public struct ConsoleBackend: LogBackend {
    private let fd: Int32

    public init(fd: Int32 = 2) {
        self.fd = fd
    }

    public func write(_ record: LogRecord) {
        let line = Self.format(record)
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written == -1 && errno == EINTR {
                    continue
                } else if written == -1 && errno == EAGAIN {
                    // An inherited non-blocking stderr: wait for room (this is the writer thread).
                    var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&entry, 1, -1)
                } else {
                    return
                }
            }
        }
    }

    /// The line for `record`, newline included. The event name is left out: it is for
    /// the journal's MESSAGE_ID.
    public static func format(_ record: LogRecord) -> String {
        var text = timestamp(seconds: record.seconds, nanoseconds: record.nanoseconds)
            + " " + record.level.rawValue + " " + record.message
        for (key, value) in record.metadata where key != LifecycleEvent.metadataKey {
            text += " \(key)=\(value)"
        }
        return text + "\n"
    }

    /// UTC time with milliseconds, ISO 8601.
    static func timestamp(seconds: Int, nanoseconds: Int) -> String {
        var parts = tm()
        var time = seconds
        gmtime_r(&time, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2))."
            + "\(pad(nanoseconds / 1_000_000, 3))Z"
    }
}
