import Glibc
import LinuxIO
import ZenProtocol

/// A connection's peer, stored inline in its slot (no heap memory, no reference counting).
struct PeerAddress: CustomStringConvertible {
    private var family: UInt16
    private var port: UInt16
    private var high: UInt64
    private var low: UInt64

    /// Decodes what `accept4` wrote.
    init(_ storage: UnsafePointer<sockaddr_storage>) {
        family = storage.pointee.ss_family
        port = 0
        high = 0
        low = 0
        switch Int32(family) {
        case AF_INET:
            let v4 = UnsafeRawPointer(storage).load(as: sockaddr_in.self)
            port = UInt16(bigEndian: v4.sin_port)
            low = UInt64(UInt32(bigEndian: v4.sin_addr.s_addr))
        case AF_INET6:
            let v6 = UnsafeRawPointer(storage).load(as: sockaddr_in6.self)
            port = UInt16(bigEndian: v6.sin6_port)
            (high, low) = unsafeBitCast(v6.sin6_addr, to: (UInt64, UInt64).self)
        default:
            break
        }
    }

    /// The peer of an already connected socket (one passed in by systemd).
    init(peerOf fd: FileDescriptor) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let found = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd.rawValue, $0, &length) == 0 }
        }
        if found {
            self.init(&storage)
        } else {
            self.init()
        }
    }

    init() {
        family = 0; port = 0; high = 0; low = 0
    }

    /// The client a PROXY header names.
    init(_ address: ProxyAddress) {
        self.init()
        switch address {
        case .ipv4(let address, let port):
            family = UInt16(AF_INET)
            self.port = port
            low = UInt64(address)
        case .ipv6(let address, let port):
            family = UInt16(AF_INET6)
            self.port = port
            (high, low) = unsafeBitCast(address.bigEndian, to: (UInt64, UInt64).self)
        case .unix:
            family = UInt16(AF_UNIX)
        }
    }

    /// Whether this holds an address (a slot's balancer address is empty for a direct client).
    var isSet: Bool { family != 0 }

    /// The address as a number, for matching address ranges: IPv4 (an IPv4-mapped IPv6
    /// address counts as the IPv4 address it maps) or IPv6; nil for unix peers.
    var numeric: (isIPv6: Bool, value: UInt128)? {
        switch Int32(family) {
        case AF_INET:
            return (false, UInt128(low & 0xFFFF_FFFF))
        case AF_INET6:
            if high == 0, UInt64(UInt32(truncatingIfNeeded: low)) == 0xffff_0000 {
                return (false, UInt128(UInt32(bigEndian: UInt32(truncatingIfNeeded: low >> 32))))
            }
            return (true, UInt128(UInt64(bigEndian: high)) << 64 | UInt128(UInt64(bigEndian: low)))
        default:
            return nil
        }
    }

    /// The client's address without its port, for per-client limits; nil for unix peers.
    var client: Client? {
        isInternet ? Client(family: family, high: high, low: low) : nil
    }

    /// An address without its port.
    struct Client: Hashable {
        var family: UInt16
        var high: UInt64
        var low: UInt64
    }

    /// True for TCP peers (where TCP_NODELAY applies).
    var isInternet: Bool { Int32(family) == AF_INET || Int32(family) == AF_INET6 }

    var description: String {
        switch Int32(family) {
        case AF_INET:
            return SocketAddress.ipv4(address: UInt32(truncatingIfNeeded: low), port: port).description
        case AF_INET6:
            // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; show them as IPv4.
            let mappedPrefix: UInt64 = 0xffff_0000
            if high == 0, UInt64(UInt32(truncatingIfNeeded: low)) == mappedPrefix {
                return SocketAddress.ipv4(address: UInt32(bigEndian: UInt32(truncatingIfNeeded: low >> 32)), port: port).description
            }
            return SocketAddress.ipv6(address: .init((high, low)), port: port, scope: 0).description
        case AF_UNIX:
            return "unix"
        default:
            return "unknown"
        }
    }
}
