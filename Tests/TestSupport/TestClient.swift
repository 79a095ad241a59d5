import Glibc
import LinuxIO

/// A test's client connection: real socket, every wait bounded by a timeout.
public final class TestClient: @unchecked Sendable {
    // @unchecked: each client is used by one test task at a time.

    public let fd: FileDescriptor
    private var closed = false

    /// How a read ended: the peer closed, time ran out, or the connection failed.
    public enum ReadEnd: Equatable {
        case endOfFile
        case timeout
        case reset
    }

    /// Connects to `address`; a small `receiveBuffer` makes a client that does not read
    /// fill up fast (set before connecting: shrinking it later confuses TCP's window).
    public init(connectingTo address: SocketAddress, receiveBuffer: Int32? = nil) throws {
        fd = try Socket.connect(to: address, receiveBuffer: receiveBuffer)
        try fd.setNonBlocking(true)
    }

    /// Connects from the loopback address `source` (such as 127.0.0.2) to 127.0.0.1:`port`,
    /// so tests can play several clients.
    public init(port: UInt16, fromLoopback source: String) throws {
        let raw = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard raw >= 0 else { throw SystemError("socket", errno: errno) }
        fd = FileDescriptor(rawValue: raw)
        func address(_ text: String, _ port: UInt16) -> sockaddr_in {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            inet_pton(AF_INET, text, &address.sin_addr)
            return address
        }
        var local = address(source, 0), remote = address("127.0.0.1", port)
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(raw, $0, length) } }
        let connected = bound == 0 ? withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(raw, $0, length) }
        } : -1
        guard connected == 0 else {
            let code = errno
            fd.close()
            throw SystemError(bound == 0 ? "connect" : "bind", errno: code)
        }
        try fd.setNonBlocking(true)
    }

    public convenience init(port: UInt16, receiveBuffer: Int32? = nil) throws {
        try self.init(connectingTo: .ipv4(address: 0x7f00_0001, port: port), receiveBuffer: receiveBuffer)
    }

    deinit { close() }

    public func close() {
        guard !closed else { return }
        closed = true
        fd.close()
    }

    /// Sends every byte (waiting for buffer space up to `timeout`); false if that failed.
    @discardableResult
    public func send(_ bytes: [UInt8], timeout: Duration = .seconds(10)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { raw in
                Result { () throws(SystemError) in try fd.send(UnsafeRawBufferPointer(rebasing: raw[offset...])) }
            }
            switch result {
            case .success(.processed(let count)): offset += count
            case .success(.wouldBlock):
                guard waitFor(POLLOUT, until: deadline) else { return false }
            case .failure: return false
            }
        }
        return true
    }

    @discardableResult
    public func send(_ text: String, timeout: Duration = .seconds(10)) -> Bool {
        send(Array(text.utf8), timeout: timeout)
    }

    /// Reads until `count` bytes arrived, the peer closed, or `timeout` passed.
    public func receive(count: Int, timeout: Duration = .seconds(10)) -> [UInt8] {
        receive(timeout: timeout) { $0.count >= count }.bytes
    }

    /// Reads `count` bytes and decodes them.
    public func receiveText(count: Int, timeout: Duration = .seconds(10)) -> String {
        String(decoding: receive(count: count, timeout: timeout), as: UTF8.self)
    }

    /// Reads until the peer closes (or `timeout`); returns the bytes and how it ended.
    public func receiveToEnd(timeout: Duration = .seconds(10)) -> (bytes: [UInt8], end: ReadEnd) {
        let result = receive(timeout: timeout) { _ in false }
        return (result.bytes, result.end ?? .timeout)
    }

    /// Reads until `done` says enough, the peer closes, or the timeout passes.
    public func receive(timeout: Duration, until done: ([UInt8]) -> Bool) -> (bytes: [UInt8], end: ReadEnd?) {
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !done(received) {
            let result = chunk.withUnsafeMutableBytes { raw in
                Result { () throws(SystemError) in try fd.read(into: raw) }
            }
            switch result {
            case .success(.processed(0)): return (received, .endOfFile)
            case .success(.processed(let count)): received += chunk[0 ..< count]
            case .success(.wouldBlock):
                guard waitFor(POLLIN, until: deadline) else { return (received, .timeout) }
            case .failure: return (received, .reset)
            }
        }
        return (received, nil)
    }

    /// Shuts down the write side (half-close).
    public func shutdownWrite() {
        try? fd.shutdown(Int32(SHUT_WR))
    }

    /// Makes `close` send a reset instead of a FIN (SO_LINGER 0).
    public func resetOnClose() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd.rawValue, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    }

    private func waitFor(_ events: Int32, until deadline: ContinuousClock.Instant) -> Bool {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { return false }
        var entry = pollfd(fd: fd.rawValue, events: Int16(events), revents: 0)
        return poll(&entry, 1, min(remaining.milliseconds + 1, 60_000)) > 0
    }
}

extension TestClient {
    /// Connects to 127.0.0.1:`port`, retrying until a server listens there (for servers
    /// that log nothing useful to wait for, or are started on the first connection).
    public static func connecting(port: UInt16, timeout: Duration = .seconds(10)) throws -> TestClient {
        let deadline = ContinuousClock.now + timeout
        while true {
            do {
                return try TestClient(port: port)
            } catch {
                if ContinuousClock.now >= deadline { throw error }
                usleep(20_000)
            }
        }
    }
}

/// Where two byte streams first differ, for failure messages that stay short however
/// long the streams are: nil when they are equal.
public func firstDifference(_ got: [UInt8], _ expected: [UInt8]) -> String? {
    let common = min(got.count, expected.count)
    var offset = 0
    while offset < common, got[offset] == expected[offset] { offset += 1 }
    if offset == common, got.count == expected.count { return nil }
    func window(_ bytes: [UInt8]) -> String {
        let slice = bytes[min(offset, bytes.count) ..< min(offset + 32, bytes.count)]
        return "\"" + String(decoding: slice, as: UTF8.self).debugDescription.dropFirst().dropLast() + "\""
    }
    return "got \(got.count) bytes, expected \(expected.count); first difference at byte \(offset): "
        + "got \(window(got)), expected \(window(expected))"
}
