import CZendShims
import Glibc

/// Creating stream sockets: listeners and client connections.
public enum Socket {
    /// The listen backlog; the kernel caps it at `net.core.somaxconn`.
    public static let defaultBacklog: Int32 = 4096

    /// A non-blocking, close-on-exec listening stream socket bound to `address`.
    ///
    /// TCP listeners get `SO_REUSEADDR` (a restart must not wait out TIME_WAIT) and
    /// IPv6 ones `IPV6_V6ONLY`, so `[::]` and `0.0.0.0` can be listened on side by side.
    /// A unix path left behind by a dead process is replaced; a live one is "in use".
    public static func listen(on address: SocketAddress, backlog: Int32 = defaultBacklog) throws(SystemError) -> FileDescriptor {
        let fd = try makeStream(address.family, nonBlocking: true)
        do {
            switch address {
            case .ipv4:
                try fd.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
            case .ipv6:
                try fd.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
                try fd.setOption(Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1)
            case .unix(let path):
                try removeStaleUnixSocket(path)
            }
            _ = try address.withSockAddr { (raw, length) throws(SystemError) in
                try retryingInterrupts("bind") { bind(fd.rawValue, raw, length) }
            }
            try retryingInterrupts("listen") { Glibc.listen(fd.rawValue, backlog) }
            return fd
        } catch {
            fd.close()
            throw error
        }
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

    /// Unlinks `path` if it is a socket nobody listens on any more.
    private static func removeStaleUnixSocket(_ path: String) throws(SystemError) {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else { return }
        let probe: FileDescriptor
        do {
            probe = try connect(to: .unix(path: path))
        } catch {
            if error.errno == ECONNREFUSED { _ = unlink(path) }
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
