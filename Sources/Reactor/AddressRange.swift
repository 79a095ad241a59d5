import Glibc

/// A range of client addresses in CIDR form (`10.0.0.0/8`, `::1/128`, or one address):
/// the balancers whose PROXY headers zend believes (`--proxy-from`).
public struct AddressRange: Sendable, Equatable, CustomStringConvertible {
    private let isIPv6: Bool
    private let network: UInt128
    private let prefix: Int
    public let description: String

    /// Loopback, IPv4 and IPv6: the default trusted balancers (one on this machine).
    public static let loopback = [AddressRange("127.0.0.0/8")!, AddressRange("::1/128")!]

    /// Parses `ADDRESS[/PREFIX]`; nil when it is not an IPv4 or IPv6 address with a prefix
    /// length in range. Bits past the prefix are ignored (`10.1.2.3/8` is `10.0.0.0/8`).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let address = String(parts[0])
        var v4 = in_addr()
        var v6 = in6_addr()
        let value: UInt128
        if inet_pton(AF_INET, address, &v4) == 1 {
            isIPv6 = false
            value = UInt128(UInt32(bigEndian: v4.s_addr))
        } else if inet_pton(AF_INET6, address, &v6) == 1 {
            isIPv6 = true
            let (high, low) = unsafeBitCast(v6, to: (UInt64, UInt64).self)
            value = UInt128(UInt64(bigEndian: high)) << 64 | UInt128(UInt64(bigEndian: low))
        } else {
            return nil
        }
        let bits = isIPv6 ? 128 : 32
        if parts.count == 2 {
            guard let prefix = Int(parts[1]), (0 ... bits).contains(prefix), parts[1].allSatisfy(\.isNumber) else {
                return nil
            }
            self.prefix = prefix
        } else {
            prefix = bits
        }
        network = value & Self.mask(prefix, bits: bits)
        description = "\(address)/\(prefix)"
    }

    /// Whether `peer`'s address lies in the range (an IPv4-mapped IPv6 peer counts as IPv4).
    func contains(_ peer: PeerAddress) -> Bool {
        guard let (peerIsIPv6, value) = peer.numeric, peerIsIPv6 == isIPv6 else { return false }
        return value & Self.mask(prefix, bits: isIPv6 ? 128 : 32) == network
    }

    private static func mask(_ prefix: Int, bits: Int) -> UInt128 {
        guard prefix > 0 else { return 0 }
        let all: UInt128 = bits == 128 ? .max : UInt128(UInt32.max)
        return all & ~(all >> prefix)
    }
}
