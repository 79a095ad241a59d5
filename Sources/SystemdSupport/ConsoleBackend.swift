import Glibc
import LinuxIO
import LogEvents
import Logging

/// Writes records as logfmt lines to a descriptor (stderr):
/// `time=2026-11-25T14:16:11.123Z level=notice msg="request too long" client_address=127.0.0.1:5555`.
/// Values are quoted and escaped (`TextEscaping.logfmt`), so each record is exactly one
/// line and no value can forge a field.
public struct ConsoleBackend: LogBackend {
    private let fd: FileDescriptor

    public init(fd: FileDescriptor = .standardError) {
        self.fd = fd
    }

    public func write(_ record: LogRecord) {
        // An inherited stderr may be non-blocking: this is the writer thread, so wait for room.
        var line = Self.format(record)
        line.withUTF8 { bytes in
            try? fd.writeAllWaiting(UnsafeRawBufferPointer(bytes))
        }
    }

    /// The line for `record`, newline included. The event name is left out: it is for
    /// the journal's MESSAGE_ID.
    public static func format(_ record: LogRecord) -> String {
        var text = "time=" + timestamp(seconds: record.seconds, nanoseconds: record.nanoseconds)
            + " level=" + record.level.rawValue + " msg=" + TextEscaping.logfmt(record.message)
        for (key, value) in record.metadata where key != LifecycleEvent.metadataKey {
            text += " \(key)=\(TextEscaping.logfmt(value))"
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
