/// An endpoint named in a PROXY header.
public enum ProxyAddress: Equatable, Sendable, CustomStringConvertible {
    /// An IPv4 address in host byte order (192.0.2.1 is 0xC000_0201) and a port.
    case ipv4(address: UInt32, port: UInt16)
    /// An IPv6 address as one number (2001:db8::1 is 0x2001_0db8_0000_…_0001; its
    /// `bigEndian` bytes are an `in6_addr`) and a port.
    case ipv6(address: UInt128, port: UInt16)
    /// A unix socket path: the bytes before the first NUL, or for an abstract socket a
    /// NUL and the name after it (without the padding NULs of the fixed 108-byte field).
    case unix(path: [UInt8])

    /// The form zend logs peers in: `192.0.2.1:5000`, `[2001:db8::1]:5000`, `unix:/path`
    /// (`unix:@name` when abstract, `unix` when unnamed). As for a peer accepted on a
    /// dual-stack socket, an IPv4-mapped IPv6 address shows as the IPv4 address it maps.
    public var description: String {
        switch self {
        case .ipv4(let address, let port):
            return "\(IPAddressText.ipv4Text(address)):\(port)"
        case .ipv6(let address, let port):
            if address >> 32 == 0xFFFF {
                return "\(IPAddressText.ipv4Text(UInt32(truncatingIfNeeded: address))):\(port)"
            }
            return "[\(IPAddressText.ipv6Text(address))]:\(port)"
        case .unix(let path):
            guard let first = path.first else { return "unix" }
            if first == 0 { return "unix:@" + String(decoding: path.dropFirst(), as: UTF8.self) }
            return "unix:" + String(decoding: path, as: UTF8.self)
        }
    }
}
