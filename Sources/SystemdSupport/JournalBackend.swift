import CSystemd
import Glibc
import LogEvents
import Logging

/// Writes records to journald by its native protocol (`sd_journal_sendv`), with
/// structured fields: `MESSAGE`, `PRIORITY`, `SYSLOG_IDENTIFIER=zend`, `CODE_*`,
/// `MESSAGE_ID` for lifecycle events, and every metadata key as a field.
public struct JournalBackend: LogBackend {
    /// journald's native socket (`sd_journal_sendv` silently drops entries when it is missing).
    public static let socketPath = "/run/systemd/journal/socket"

    /// True when journald is there to take entries.
    public static var isAvailable: Bool { access(socketPath, F_OK) == 0 }

    public init() {}

    public func write(_ record: LogRecord) {
        // One contiguous buffer holds every "NAME=value"; the iovecs point into it.
        // sd_journal_sendv copes with newlines and binary data in values.
        let fields = JournalFields.make(record).map { Array($0.utf8) }
        let joined = fields.flatMap { $0 }
        joined.withUnsafeBytes { bytes in
            var vectors: [iovec] = []
            vectors.reserveCapacity(fields.count)
            var offset = 0
            for field in fields {
                vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress! + offset),
                                     iov_len: field.count))
                offset += field.count
            }
            _ = sd_journal_sendv(&vectors, Int32(vectors.count))
        }
    }
}

/// Journal field names and values for a record (pure, so the encoding is testable).
public enum JournalFields {
    /// The identifier journalctl shows and `-t` selects.
    public static let identifier = "zend"

    /// Fields systemd or the journal give a meaning to: metadata must not set them by
    /// accident (`UNIT=` would make `journalctl -u` match a unit zend does not run).
    static let reserved: Set<String> = [
        "MESSAGE", "MESSAGE_ID", "PRIORITY", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
        "SYSLOG_IDENTIFIER", "SYSLOG_FACILITY", "SYSLOG_PID", "SYSLOG_TIMESTAMP", "SYSLOG_RAW",
        "UNIT", "USER_UNIT", "INVOCATION_ID", "USER_INVOCATION_ID", "DOCUMENTATION", "TID",
        "OBJECT_PID", "OBJECT_UID", "OBJECT_GID", "OBJECT_COMM", "OBJECT_EXE", "OBJECT_CMDLINE",
        "OBJECT_SYSTEMD_UNIT", "OBJECT_SYSTEMD_USER_UNIT", "COREDUMP_UNIT", "COREDUMP_USER_UNIT",
    ]

    /// `NAME=value` strings for `record`. `MESSAGE` is the message followed by the
    /// metadata in logfmt, as the console line shows them, so `journalctl -u zend` (which
    /// shows only `MESSAGE`) says which client, file or count a line is about; each value
    /// is also a field of its own for `journalctl FIELD=value` and `-o json`.
    public static func make(_ record: LogRecord) -> [String] {
        var message = record.message
        for (key, value) in record.metadata where key != LifecycleEvent.metadataKey {
            message += " \(key)=\(TextEscaping.logfmt(value))"
        }
        var fields = [
            "MESSAGE=\(message)",
            "PRIORITY=\(priority(record.level))",
            "SYSLOG_IDENTIFIER=\(identifier)",
            "CODE_FILE=\(record.file)",
            "CODE_LINE=\(record.line)",
            "CODE_FUNC=\(record.function)",
        ]
        for (key, value) in record.metadata {
            if key == LifecycleEvent.metadataKey, let event = LifecycleEvent(rawValue: value) {
                fields.append("MESSAGE_ID=\(event.messageID)")
            }
            fields.append("\(fieldName(key))=\(value)")
        }
        return fields
    }

    /// syslog priority: 7 debug … 2 critical.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// A valid journal field name for a swift-log metadata key: uppercase `[A-Z0-9_]`,
    /// no leading `_` (those are trusted fields) or digit, at most 64 characters; a
    /// name the journal reserves gets a `ZEND_` prefix. Keys are converted, never dropped.
    public static func fieldName(_ key: String) -> String {
        var name = ""
        for scalar in key.unicodeScalars {
            switch scalar {
            case "a" ... "z": name.unicodeScalars.append(Unicode.Scalar(scalar.value - 32)!)
            case "A" ... "Z", "0" ... "9", "_": name.unicodeScalars.append(scalar)
            default: name.append("_")
            }
        }
        while name.hasPrefix("_") { name.removeFirst() }
        if name.isEmpty { name = "FIELD" }
        if name.first!.isNumber || reserved.contains(name) { name = "ZEND_" + name }
        return String(name.prefix(64))
    }
}
