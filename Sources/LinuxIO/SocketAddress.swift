import CZendShims
import Glibc

/// An address to listen on or connect to: IPv4, IPv6 or a unix socket path.
public enum SocketAddress: Sendable, Equatable, CustomStringConvertible {
    case ipv4(address: UInt32, port: UInt16)              // address in host byte order
    case ipv6(address: IPv6Bytes, port: UInt16, scope: UInt32)
    /// A unix socket path, and the mode its file gets when zend listens there
    /// (nil: `Socket.defaultUnixSocketMode`); connecting ignores the mode.
    case unix(path: String, mode: mode_t? = nil)

    /// Sixteen bytes of an IPv6 address, in network order.
    public struct IPv6Bytes: Sendable, Equatable {
        public var bytes: (UInt64, UInt64)
        public init(_ bytes: (UInt64, UInt64)) { self.bytes = bytes }
        public static func == (a: Self, b: Self) -> Bool { a.bytes == b.bytes }
    }

    /// A parse failure: the text and what was expected.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var text: String
        public var reason: String
        public var description: String { "invalid address '\(text)': \(reason)" }
    }

    /// Parses `127.0.0.1:1060`, `[::1]:1060`, `*:1060` (all IPv4 interfaces) or `unix:/run/zend.sock`.
    /// Names such as `localhost:1060` are resolved and may give several addresses.
    ///
    /// A unix path may be followed by options, socat style: `unix:/run/zend.sock,mode=0660`
    /// gives the socket file's permissions in octal (at most 0777; the default is
    /// `Socket.defaultUnixSocketMode`, 0660). A comma in a path is kept unless what
    /// follows it looks like `word=value`.
    public static func parse(_ text: String) throws(ParseError) -> [SocketAddress] {
        if text.hasPrefix("unix:") {
            var path = Substring(text.dropFirst(5))
            var mode: mode_t?
            while let comma = path.lastIndex(of: ","),
                  case let option = path[path.index(after: comma)...],
                  let equals = option.firstIndex(of: "="),
                  case let key = option[..<equals],
                  !key.isEmpty, key.allSatisfy({ $0.isASCII && $0.isLetter }) {
                guard key == "mode" else {
                    throw ParseError(text: text, reason: "unknown unix socket option '\(key)' (expected mode=OCTAL, such as mode=0660)")
                }
                guard mode == nil else { throw ParseError(text: text, reason: "mode is given twice") }
                mode = try parseMode(option[option.index(after: equals)...], in: text)
                path = path[..<comma]
            }
            guard !path.isEmpty else { throw ParseError(text: text, reason: "empty unix socket path") }
            guard path.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else {
                throw ParseError(text: text, reason: "unix socket path is too long")
            }
            return [.unix(path: String(path), mode: mode)]
        }
        let host: String
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw ParseError(text: text, reason: "missing ']' after an IPv6 address")
            }
            host = String(text[text.index(after: text.startIndex) ..< close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw ParseError(text: text, reason: "expected ':PORT' after ']'") }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ParseError(text: text, reason: "expected HOST:PORT, [IPV6]:PORT or unix:PATH")
            }
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        }
        guard let port = UInt16(portText) else {
            throw ParseError(text: text, reason: "port must be a number from 0 to 65535")
        }
        return try resolve(host: host, port: port)
    }

    /// The `mode=` of a unix address: octal permission bits, at most 0777.
    private static func parseMode(_ value: Substring, in text: String) throws(ParseError) -> mode_t {
        guard !value.isEmpty else {
            throw ParseError(text: text, reason: "mode= needs octal permissions, such as mode=0660")
        }
        guard value.allSatisfy({ ("0" ... "7").contains($0) }), let mode = mode_t(value, radix: 8) else {
            throw ParseError(text: text, reason: "mode '\(value)' is not an octal number such as 0660")
        }
        guard mode <= 0o777 else {
            throw ParseError(text: text, reason: "mode \(value) is more than 0777 (setuid, setgid and sticky bits mean nothing on a socket)")
        }
        return mode
    }

    /// A mode as `chmod` shows it: four octal digits, such as `0660`.
    public static func modeText(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// Addresses for `host` (an IP literal, `*` or empty for all IPv4 interfaces, or a name) and `port`.
    public static func resolve(host: String, port: UInt16) throws(ParseError) -> [SocketAddress] {
        if host.isEmpty || host == "*" {
            return [.ipv4(address: 0, port: port)]
        }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return [.ipv4(address: UInt32(bigEndian: v4.s_addr), port: port)]
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return [.ipv6(address: IPv6Bytes(unsafeBitCast(v6, to: (UInt64, UInt64).self)), port: port, scope: 0)]
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else {
            throw ParseError(text: host, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(list) }
        var found: [SocketAddress] = []
        var entry = list
        while let info = entry?.pointee {
            if let raw = info.ai_addr, var address = SocketAddress(raw, length: info.ai_addrlen) {
                address = address.withPort(port)
                if !found.contains(address) { found.append(address) }
            }
            entry = info.ai_next
        }
        guard !found.isEmpty else { throw ParseError(text: host, reason: "no address found") }
        return found
    }

    /// Decodes a kernel socket address; nil for families zend does not use.
    public init?(_ raw: UnsafePointer<sockaddr>, length: socklen_t) {
        switch Int32(raw.pointee.sa_family) {
        case AF_INET:
            let v4 = UnsafeRawPointer(raw).loadUnaligned(as: sockaddr_in.self)
            self = .ipv4(address: UInt32(bigEndian: v4.sin_addr.s_addr), port: UInt16(bigEndian: v4.sin_port))
        case AF_INET6:
            let v6 = UnsafeRawPointer(raw).loadUnaligned(as: sockaddr_in6.self)
            self = .ipv6(address: IPv6Bytes(unsafeBitCast(v6.sin6_addr, to: (UInt64, UInt64).self)),
                         port: UInt16(bigEndian: v6.sin6_port), scope: v6.sin6_scope_id)
        case AF_UNIX:
            let offset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
            let pathLength = Int(length) - offset
            if pathLength <= 0 {
                self = .unix(path: "")
            } else {
                let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(raw) + offset, count: pathLength)
                let text = bytes.prefix { $0 != 0 }
                self = .unix(path: String(decoding: text, as: UTF8.self))
            }
        default:
            return nil
        }
    }

    /// The same address with another port (unix paths are unchanged).
    public func withPort(_ port: UInt16) -> SocketAddress {
        switch self {
        case .ipv4(let address, _): return .ipv4(address: address, port: port)
        case .ipv6(let address, _, let scope): return .ipv6(address: address, port: port, scope: scope)
        case .unix: return self
        }
    }

    /// The port, or nil for a unix socket.
    public var port: UInt16? {
        switch self {
        case .ipv4(_, let port), .ipv6(_, let port, _): return port
        case .unix: return nil
        }
    }

    /// The address family: AF_INET, AF_INET6 or AF_UNIX.
    public var family: Int32 {
        switch self {
        case .ipv4: return AF_INET
        case .ipv6: return AF_INET6
        case .unix: return AF_UNIX
        }
    }

    public var description: String {
        switch self {
        case .ipv4(let address, let port):
            return "\(Self.ipv4Text(address)):\(port)"
        case .ipv6(let address, let port, _):
            return "[\(Self.ipv6Text(address))]:\(port)"
        case .unix(let path, let mode):
            return "unix:\(path)" + (mode.map { ",mode=\(Self.modeText($0))" } ?? "")
        }
    }

    /// Dotted-quad text of an IPv4 address in host byte order.
    public static func ipv4Text(_ address: UInt32) -> String {
        "\(address >> 24).\((address >> 16) & 0xff).\((address >> 8) & 0xff).\(address & 0xff)"
    }

    /// Canonical text of an IPv6 address (`inet_ntop`).
    public static func ipv6Text(_ address: IPv6Bytes) -> String {
        var raw = unsafeBitCast(address.bytes, to: in6_addr.self)
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Calls `body` with this address as a kernel `sockaddr`.
    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(SystemError) -> R) throws(SystemError) -> R {
        var storage = sockaddr_storage()
        let length: socklen_t
        switch self {
        case .ipv4(let address, let port):
            var v4 = sockaddr_in()
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            v4.sin_addr.s_addr = address.bigEndian
            Self.copy(v4, into: &storage)
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        case .ipv6(let address, let port, let scope):
            var v6 = sockaddr_in6()
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            v6.sin6_addr = unsafeBitCast(address.bytes, to: in6_addr.self)
            v6.sin6_scope_id = scope
            Self.copy(v6, into: &storage)
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        case .unix(let path, _):
            var un = sockaddr_un()
            un.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &un.sun_path) { bytes in
                for (i, byte) in path.utf8.prefix(bytes.count - 1).enumerated() { bytes[i] = byte }
            }
            Self.copy(un, into: &storage)
            length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.utf8.count + 1)
        }
        return try withUnsafePointer(to: &storage) { (pointer) throws(SystemError) -> R in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (raw) throws(SystemError) -> R in
                try body(raw, length)
            }
        }
    }

    private static func copy<T>(_ value: T, into storage: inout sockaddr_storage) {
        withUnsafeMutableBytes(of: &storage) { target in
            withUnsafeBytes(of: value) { target.copyMemory(from: $0) }
        }
    }
}
