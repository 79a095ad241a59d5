import CZendShims
import Glibc

/// An open file descriptor: a plain value; whoever opened it closes it.
public struct FileDescriptor: Hashable, Sendable, CustomStringConvertible {
    /// The kernel's number for it.
    public let rawValue: Int32

    @inlinable
    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    public var description: String { "fd \(rawValue)" }

    /// No descriptor: a placeholder for "not open".
    public static let closed = FileDescriptor(rawValue: -1)

    /// Descriptor 2.
    public static let standardError = FileDescriptor(rawValue: 2)

    /// Closes the descriptor. `EINTR` is not retried: on Linux the fd is gone either way.
    public func close() {
        _ = Glibc.close(rawValue)
    }

    /// Reads into `buffer`; `.processed(0)` means end of file.
    @inlinable @inline(__always)
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlocking("read") { zend_read(rawValue, buffer.baseAddress, buffer.count) }
    }

    /// Writes once from `buffer`; `.wouldBlock` when a non-blocking descriptor is full.
    @inline(__always)
    public func write(_ buffer: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlocking("write") { Glibc.write(rawValue, buffer.baseAddress, buffer.count) }
    }

    /// Writes all of `buffer`, waiting for room when the descriptor is non-blocking
    /// (a non-blocking stderr can be inherited); for threads that may block.
    public func writeAllWaiting(_ buffer: UnsafeRawBufferPointer) throws(SystemError) {
        var offset = 0
        while offset < buffer.count {
            switch try write(UnsafeRawBufferPointer(rebasing: buffer[offset...])) {
            case .processed(let count): offset += count
            case .wouldBlock:
                var entry = pollfd(fd: rawValue, events: Int16(POLLOUT), revents: 0)
                _ = try retryingInterrupts("poll") { poll(&entry, 1, -1) }
            }
        }
    }

    /// Writes all of `buffer`, blocking as needed (for blocking descriptors only).
    public func writeAll(_ buffer: UnsafeRawBufferPointer) throws(SystemError) {
        var offset = 0
        while offset < buffer.count {
            let rest = UnsafeRawBufferPointer(rebasing: buffer[offset...])
            let written = try retryingInterrupts("write") { Glibc.write(rawValue, rest.baseAddress, rest.count) }
            offset += written
        }
    }

    /// Sets or clears `O_NONBLOCK`.
    public func setNonBlocking(_ on: Bool) throws(SystemError) {
        let flags = try retryingInterrupts("fcntl(F_GETFL)") { fcntl(rawValue, F_GETFL) }
        let wanted = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if wanted != flags {
            try retryingInterrupts("fcntl(F_SETFL)") { fcntl(rawValue, F_SETFL, wanted) }
        }
    }

    /// Sets or clears `FD_CLOEXEC`.
    public func setCloseOnExec(_ on: Bool) throws(SystemError) {
        let flags = try retryingInterrupts("fcntl(F_GETFD)") { fcntl(rawValue, F_GETFD) }
        let wanted = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC
        if wanted != flags {
            try retryingInterrupts("fcntl(F_SETFD)") { fcntl(rawValue, F_SETFD, wanted) }
        }
    }

    /// Opens `path` read-only and returns its whole contents.
    public static func readFile(_ path: String) throws(SystemError) -> [UInt8] {
        let fd = FileDescriptor(rawValue: try retryingInterrupts("open(\(path))") { open(path, O_RDONLY | O_CLOEXEC) })
        defer { fd.close() }
        return try fd.readToEnd()
    }
}

extension FileDescriptor {
    /// Reads until end of file (blocking descriptors).
    public func readToEnd() throws(SystemError) -> [UInt8] {
        var result: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 1)
        defer { chunk.deallocate() }
        while true {
            let count = try retryingInterrupts("read") { Glibc.read(rawValue, chunk.baseAddress, chunk.count) }
            if count == 0 { return result }
            result.append(contentsOf: chunk[0 ..< count])
        }
    }

    /// Blocking reads give up with `EAGAIN` after `seconds` (`SO_RCVTIMEO`).
    public func setReceiveTimeout(seconds: Double) throws(SystemError) {
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        try retryingInterrupts("setsockopt(SO_RCVTIMEO)") {
            setsockopt(rawValue, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    /// Writes a message, ignoring failures (for last-resort diagnostics on stderr).
    public func writeAllIgnoringErrors(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { _ = try? writeAll(UnsafeRawBufferPointer($0)) }
    }
}
