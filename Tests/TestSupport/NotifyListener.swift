import Glibc
import LinuxIO

/// The systemd side of `sd_notify` (or of journald's native socket): a unix datagram
/// socket a test points zend at, collecting every message zend sends.
public final class NotifyListener: @unchecked Sendable {
    // @unchecked: used by one test at a time.

    public let path: String
    private let fd: FileDescriptor
    /// Every message received so far, in order.
    public private(set) var messages: [String] = []
    /// The same messages as bytes (journal datagrams may hold binary fields).
    public private(set) var datagrams: [[UInt8]] = []

    public convenience init(directory: String) throws {
        try self.init(path: directory + "/notify")
    }

    public init(path: String) throws {
        self.path = path
        let raw = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard raw >= 0 else { throw SystemError("socket", errno: errno) }
        fd = FileDescriptor(rawValue: raw)
        _ = try SocketAddress.unix(path: path).withSockAddr { (address, length) throws(SystemError) in
            guard bind(raw, address, length) == 0 else { throw SystemError("bind", errno: errno) }
        }
    }

    deinit {
        fd.close()
        unlink(path)
    }

    /// Reads whatever has arrived.
    public func collect() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd.rawValue, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return }
            datagrams.append(Array(buffer[0 ..< count]))
            messages.append(String(decoding: buffer[0 ..< count], as: UTF8.self))
        }
    }

    /// Waits for a message containing `text` that arrived after the first `after`
    /// messages; returns it, or nil after `timeout`.
    public func waitFor(_ text: String, after: Int = 0, timeout: Duration = .seconds(10)) -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            collect()
            if let found = messages.dropFirst(after).first(where: { $0.contains(text) }) { return found }
            if ContinuousClock.now >= deadline { return nil }
            usleep(5_000)
        }
    }

    /// Messages received after the first `after`, containing `text`.
    public func count(_ text: String, after: Int = 0) -> Int {
        collect()
        return messages.dropFirst(after).filter { $0.contains(text) }.count
    }
}
