import Glibc

/// The file a unix listener's `bind` created: its path and its identity (device and
/// inode), so that zend removes that file at exit and nothing else — not a file someone
/// put at the path since, nor the socket of a newer zend that took the path over.
public struct UnixSocketFile: Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let device: UInt64
    public let inode: UInt64

    public init(path: String, device: UInt64, inode: UInt64) {
        self.path = path
        self.device = device
        self.inode = inode
    }

    /// What `path` holds now, from `lstat`: nil when there is nothing (or it cannot be looked at).
    public static func status(of path: String) -> stat? {
        var info = stat()
        return lstat(path, &info) == 0 ? info : nil
    }

    /// Whether `info` is this socket file.
    public func isSame(as info: stat) -> Bool {
        (info.st_mode & S_IFMT) == S_IFSOCK && UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    /// What `remove()` did.
    public enum Removal: Equatable, Sendable, CustomStringConvertible {
        /// The path still was this socket and is gone now.
        case removed
        /// Nothing is at the path any more (someone removed it, or renamed it away).
        case missing
        /// Something else is at the path now (described); it was left alone.
        case replaced(by: String)
        /// The path was this socket but `unlink` failed.
        case failed(SystemError)

        public var description: String {
            switch self {
            case .removed: return "removed"
            case .missing: return "already gone"
            case .replaced(let what): return "left in place: it is now \(what), not the socket zend created"
            case .failed(let error): return "not removed: \(error)"
            }
        }
    }

    /// Unlinks the path if it still is this socket (same device and inode); otherwise
    /// leaves whatever is there. (Between the check and the unlink nothing but another
    /// process with write access to the directory can intervene; no call closes that gap.)
    @discardableResult
    public func remove() -> Removal {
        guard let info = Self.status(of: path) else { return .missing }
        guard isSame(as: info) else {
            if (info.st_mode & S_IFMT) == S_IFSOCK { return .replaced(by: "another socket (a newer server's)") }
            return .replaced(by: Self.describe(info, path: path))
        }
        if unlink(path) != 0 {
            let code = errno
            return code == ENOENT ? .missing : .failed(SystemError("unlink", errno: code))
        }
        return .removed
    }

    /// "a regular file", "a directory", "a symbolic link to /x", … for messages: the kinds
    /// `FileDescriptor.fileKind` names, with a symbolic link's target and a FIFO's full name.
    public static func describe(_ info: stat, path: String) -> String {
        switch info.st_mode & S_IFMT {
        case S_IFREG: return "a regular file"
        case S_IFIFO: return "a named pipe (FIFO)"
        case S_IFLNK:
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
            let count = readlink(path, &buffer, buffer.count - 1)
            guard count > 0 else { return "a symbolic link" }
            let target = String(decoding: buffer[0 ..< count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return "a symbolic link to \(target)"
        default: return FileDescriptor.fileKind(info.st_mode) ?? "a regular file"
        }
    }

    public var description: String { "\(path) (device \(device), inode \(inode))" }
}

/// Why a listener could not be opened.
public enum ListenError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed (`bind: Address already in use`, `bind: Permission denied`, …).
    case system(SystemError)
    /// Something that is not a socket is at the unix socket path (`found` says what);
    /// it is neither replaced nor removed.
    case notASocket(path: String, found: String)

    /// The errno behind it, for systemd's `ERRNO=`: `EEXIST` when the path is taken by a non-socket.
    public var errno: Int32 {
        switch self {
        case .system(let error): return error.errno
        case .notASocket: return EEXIST
        }
    }

    public var description: String {
        switch self {
        case .system(let error): return error.description
        case .notASocket(let path, let found): return "\(path) exists and is \(found), not a socket"
        }
    }
}

/// A listening socket and, for a unix address, the socket file its `bind` created.
public struct ListeningSocket: Sendable {
    public let fd: FileDescriptor
    /// The file to remove at exit (with `UnixSocketFile.remove()`); nil for TCP.
    public let file: UnixSocketFile?
}
