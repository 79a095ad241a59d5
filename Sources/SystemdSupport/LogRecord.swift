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

/// The lifecycle events zend marks with a journal `MESSAGE_ID` (explained in `systemd/zend.catalog`).
///
/// Code logs them with metadata `event=<raw value>`; the journal writer turns that into
/// `MESSAGE_ID=`, so modules below the daemon need not know about journald.
public enum LifecycleEvent: String, CaseIterable, Sendable {
    case started
    case ready
    case reloading
    case reloadFailed = "reload-failed"
    case stopping
    case clientError = "client-error"
    case startFailed = "start-failed"
    case logsDropped = "logs-dropped"

    /// The metadata key that carries the event name.
    public static let metadataKey = "event"

    /// The fixed 128-bit journal message ID, as 32 hex digits.
    public var messageID: String {
        switch self {
        case .started: return "c43a29d444624522ab7b58c6adc9871b"
        case .ready: return "92f4efcf23954625bdfcc7898dd33726"
        case .reloading: return "c944d438fad7459faa4f8f26b27a2751"
        case .reloadFailed: return "674e9d83ab6543a59be15d74d352772f"
        case .stopping: return "c42069910768418bb5481b3d2d0508fd"
        case .clientError: return "f54d6bcc279145fcbf04073d0de2cc55"
        case .startFailed: return "8b369b17083e40e2b1282d4b1e2159d7"
        case .logsDropped: return "b0c83045e6b94328b850f33ec17b7170"
        }
    }

    /// Metadata marking a log call as this event.
    public var metadata: Logger.Metadata { [Self.metadataKey: .string(rawValue)] }
}
