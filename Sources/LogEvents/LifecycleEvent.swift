import Logging

/// The events zend marks with a journal `MESSAGE_ID` (explained in `systemd/zend.catalog`).
///
/// Code logs them with metadata `event=<raw value>`; the journal writer turns that into
/// `MESSAGE_ID=`. A module of its own, so the reactor names its events without
/// depending on the systemd glue, and neither spells the names as strings.
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
