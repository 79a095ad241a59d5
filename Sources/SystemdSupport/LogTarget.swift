import Glibc

/// Deciding where logs go.
public enum LogTarget: String, Sendable, CaseIterable {
    case auto, journal, console

    /// True when stderr is connected to the journal: `JOURNAL_STREAM` names the device
    /// and inode of our stderr. The variable alone proves nothing (children inherit it
    /// with stderr redirected elsewhere).
    public static func stderrIsJournal() -> Bool {
        guard let raw = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: raw).split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    /// Whether this target, here, means the journal.
    public var usesJournal: Bool {
        switch self {
        case .journal: return true
        case .console: return false
        case .auto: return Self.stderrIsJournal()
        }
    }
}
