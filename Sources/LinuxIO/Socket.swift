import CZendShims
import Glibc

/// Creating stream sockets: listeners and client connections.
public enum Socket {
    /// The listen backlog; the kernel caps it at `net.core.somaxconn`.
    public static let defaultBacklog: Int32 = 4096

    /// The mode of a unix socket file when the address gives none (`unix:PATH,mode=OCTAL`):
    /// owner and group may connect, others not. Applied exactly, whatever the umask.
    public static let defaultUnixSocketMode: mode_t = 0o660

    /// A non-blocking, close-on-exec listening stream socket bound to `address`.
    /// Throws `SystemError`; where the path of a unix address holds something that is
    /// not a socket, that is `bind` failing with `EEXIST`. Callers that remove the socket
    /// file at exit use `openListener(on:)`, which also says which file `bind` created.
    public static func listen(on address: SocketAddress, backlog: Int32 = defaultBacklog) throws(SystemError) -> FileDescriptor {
        do {
            return try openListener(on: address, backlog: backlog).fd
        } catch {
            switch error {
            case .system(let error): throw error
            case .notASocket: throw SystemError("bind", errno: error.errno)
            }
        }
    }

    /// A non-blocking, close-on-exec listening stream socket bound to `address`, and for
    /// a unix address the socket file `bind` created (path, device and inode).
    ///
    /// TCP listeners get `SO_REUSEADDR` (a restart must not wait out TIME_WAIT) and
    /// IPv6 ones `IPV6_V6ONLY`, so `[::]` and `0.0.0.0` can be listened on side by side.
    ///
    /// A unix path left behind by a dead process (a socket whose connect is refused) is
    /// replaced; a live one is "in use" (`EADDRINUSE`); anything else there — a regular
    /// file, a directory, a FIFO, a symbolic link — is `.notASocket` and left alone.
    /// The socket file gets the address's mode (or `defaultUnixSocketMode`) before
    /// `listen`, so no client connects while it has any other.
    public static func openListener(on address: SocketAddress, backlog: Int32 = defaultBacklog) throws(ListenError) -> ListeningSocket {
        let fd: FileDescriptor
        do {
            fd = try makeStream(address.family, nonBlocking: true)
        } catch {
            throw .system(error)
        }
        do {
            var file: UnixSocketFile?
            switch address {
            case .ipv4:
                try fd.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
                try bind(fd, address)
            case .ipv6:
                try fd.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
                try fd.setOption(Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1)
                try bind(fd, address)
            case .unix(let path, let mode):
                file = try bindUnix(fd, address, path: path, mode: mode ?? defaultUnixSocketMode)
            }
            do {
                try retryingInterrupts("listen") { Glibc.listen(fd.rawValue, backlog) }
            } catch {
                file?.remove()
                throw error
            }
            return ListeningSocket(fd: fd, file: file)
        } catch let error as SystemError {
            fd.close()
            throw .system(error)
        } catch let error as ListenError {
            fd.close()
            throw error
        } catch {
            fd.close()
            preconditionFailure("unexpected error \(error)")
        }
    }

    private static func bind(_ fd: FileDescriptor, _ address: SocketAddress) throws(SystemError) {
        _ = try address.withSockAddr { (raw, length) throws(SystemError) in
            try retryingInterrupts("bind") { Glibc.bind(fd.rawValue, raw, length) }
        }
    }

    /// Binds `fd` to `path` with `mode`, replacing a stale socket there; the file it created.
    ///
    /// The mode: the kernel creates the file with the socket inode's mode less the umask,
    /// so an `fchmod` of the socket before `bind` makes the file no wider than `mode` from
    /// the start (an `fchmod` after `bind` would not reach the file). Where the umask took
    /// away bits `mode` asks for, the file is changed to exactly `mode` before `listen`,
    /// while connecting to it is still refused. The process umask is never changed: it is
    /// shared by every thread, and the log writer is already running.
    private static func bindUnix(_ fd: FileDescriptor, _ address: SocketAddress, path: String,
                                 mode: mode_t) throws -> UnixSocketFile {
        try removeStaleUnixSocket(path)
        try retryingInterrupts("fchmod") { fchmod(fd.rawValue, mode) }
        try bind(fd, address)
        guard let info = UnixSocketFile.status(of: path), (info.st_mode & S_IFMT) == S_IFSOCK else {
            // Replaced in the instant since bind: the file is not ours to change or remove.
            throw SystemError("bind", errno: EADDRINUSE)
        }
        let file = UnixSocketFile(path: path, device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        if info.st_mode & 0o7777 != mode {
            do {
                try setMode(mode, of: file)
            } catch {
                file.remove()
                throw error
            }
        }
        return file
    }

    /// Sets the mode of `file`'s path without following a symbolic link put there since.
    private static func setMode(_ mode: mode_t, of file: UnixSocketFile) throws(SystemError) {
        if fchmodat(AT_FDCWD, file.path, mode, AT_SYMLINK_NOFOLLOW) == 0 { return }
        let code = errno
        // glibc does AT_SYMLINK_NOFOLLOW through /proc; without /proc, check and chmod.
        guard code == EOPNOTSUPP || code == ENOTSUP else { throw SystemError("chmod", errno: code) }
        guard let info = UnixSocketFile.status(of: file.path), file.isSame(as: info) else {
            throw SystemError("chmod", errno: EADDRINUSE)
        }
        try retryingInterrupts("chmod") { chmod(file.path, mode) }
    }

    /// A connected stream socket (blocking unless `nonBlocking`). A `receiveBuffer` size
    /// is set before connecting, where it still shapes the TCP window the peer sees.
    public static func connect(to address: SocketAddress, nonBlocking: Bool = false,
                               receiveBuffer: Int32? = nil) throws(SystemError) -> FileDescriptor {
        let fd = try makeStream(address.family, nonBlocking: nonBlocking)
        do {
            if let receiveBuffer { try fd.setOption(SOL_SOCKET, SO_RCVBUF, receiveBuffer) }
            try address.withSockAddr { (raw, length) throws(SystemError) in
                let result = Glibc.connect(fd.rawValue, raw, length)
                if result == -1 {
                    let code = errno
                    // Non-blocking connects complete later; EINTR on a blocking one continues in the background.
                    if nonBlocking && code == EINPROGRESS { return }
                    throw SystemError("connect", errno: code)
                }
            }
            return fd
        } catch {
            fd.close()
            throw error
        }
    }

    private static func makeStream(_ family: Int32, nonBlocking: Bool) throws(SystemError) -> FileDescriptor {
        var type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        if nonBlocking { type |= Int32(SOCK_NONBLOCK.rawValue) }
        let raw = try retryingInterrupts("socket") { socket(family, type, 0) }
        return FileDescriptor(rawValue: raw)
    }

    /// Clears the way for binding `path`: nothing there is fine; a socket nobody listens
    /// on any more (connect refused) is unlinked; a live one is `EADDRINUSE`; anything
    /// else is `.notASocket`, so a file someone keeps there is never lost.
    private static func removeStaleUnixSocket(_ path: String) throws {
        guard let info = UnixSocketFile.status(of: path) else { return }  // nothing there: bind says the rest
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw ListenError.notASocket(path: path, found: UnixSocketFile.describe(info, path: path))
        }
        let probe: FileDescriptor
        do {
            // Non-blocking: a live server whose backlog is full answers EAGAIN instead of stalling us.
            probe = try connect(to: .unix(path: path), nonBlocking: true)
        } catch {
            guard error.errno == ECONNREFUSED else { throw SystemError("bind", errno: EADDRINUSE) }
            // Unlink only the socket that refused: not one another process put there since.
            let stale = UnixSocketFile(path: path, device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
            stale.remove()
            return
        }
        probe.close()
        throw SystemError("bind", errno: EADDRINUSE)
    }
}

extension FileDescriptor {
    /// Accepts one connection as non-blocking and close-on-exec, writing the peer's
    /// address into `peer`. `.wouldBlock` when the backlog is empty.
    @inline(__always)
    public func accept(peer: UnsafeMutablePointer<sockaddr_storage>) throws(SystemError) -> IOResult<FileDescriptor> {
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let flags = Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let result = try peer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (raw) throws(SystemError) in
            try nonBlocking("accept4") { zend_accept4(rawValue, raw, &length, flags) }
        }
        switch result {
        case .processed(let raw): return .processed(FileDescriptor(rawValue: raw))
        case .wouldBlock: return .wouldBlock
        }
    }

    /// Sends without raising SIGPIPE on a reset peer (`MSG_NOSIGNAL`).
    @inlinable @inline(__always)
    public func send(_ buffer: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlocking("send") { zend_send(rawValue, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Sends all of `buffer` on a blocking socket.
    public func sendAll(_ buffer: UnsafeRawBufferPointer) throws(SystemError) {
        var offset = 0
        while offset < buffer.count {
            let rest = UnsafeRawBufferPointer(rebasing: buffer[offset...])
            offset += try retryingInterrupts("send") {
                Glibc.send(rawValue, rest.baseAddress, rest.count, Int32(MSG_NOSIGNAL))
            }
        }
    }

    /// Sends all of `bytes` on a blocking socket.
    public func sendAll(_ bytes: [UInt8]) throws(SystemError) {
        // The closure must not throw: typed throws through `withUnsafeBytes` trips the compiler.
        var failure: SystemError?
        bytes.withUnsafeBytes { raw in
            do throws(SystemError) { try sendAll(raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Shuts down one or both directions (`SHUT_WR`, `SHUT_RD`, `SHUT_RDWR`).
    public func shutdown(_ how: Int32) throws(SystemError) {
        try retryingInterrupts("shutdown") { Glibc.shutdown(rawValue, how) }
    }

    /// Sets an integer socket option.
    public func setOption(_ level: Int32, _ name: Int32, _ value: Int32) throws(SystemError) {
        var value = value
        try retryingInterrupts("setsockopt") {
            setsockopt(rawValue, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// The user and process of a unix socket's peer, as the kernel recorded them at
    /// connect (`SO_PEERCRED`): who is asking, whatever the socket file's mode says.
    public func peerCredentials() throws(SystemError) -> (pid: pid_t, uid: uid_t, gid: gid_t) {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        try retryingInterrupts("getsockopt(SO_PEERCRED)") { zend_peer_credentials(rawValue, &pid, &uid, &gid) }
        return (pid, uid, gid)
    }

    /// The address this socket is bound to.
    public func localAddress() throws(SystemError) -> SocketAddress? {
        try socketAddress("getsockname", Glibc.getsockname)
    }

    private func socketAddress(
        _ call: String, _ function: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) throws(SystemError) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        return try withUnsafeMutablePointer(to: &storage) { (pointer) throws(SystemError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (raw) throws(SystemError) in
                try retryingInterrupts(call) { function(rawValue, raw, &length) }
                return SocketAddress(raw, length: length)
            }
        }
    }
}
