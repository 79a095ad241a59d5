/// A PROXY protocol header (version 1 or 2) as a load balancer sent it at the start of a
/// connection: who the client really is (HAProxy's `doc/proxy-protocol.txt`).
///
/// The parser keeps no state between calls: it is given every byte received so far and
/// answers from the start each time. That costs nothing worth keeping state for: a v1
/// line is at most 107 bytes, and a v2 header is only walked once all of it is there.
public struct ProxyHeader: Equatable, Sendable {
    /// Whose connection this is.
    public enum Command: Equatable, Sendable {
        /// The balancer's own connection (a health check): use the real endpoints.
        case local
        /// A connection relayed for a client: use `source` when the header names one.
        case proxy
    }

    /// The relayed connection's transport, as the header names it.
    public enum Transport: Equatable, Sendable {
        case unspecified
        case stream
        case datagram
    }

    /// 1 (the text line) or 2 (the binary header).
    public var version: UInt8
    public var command: Command
    public var transport: Transport
    /// The client; nil when the header names none (v1 `UNKNOWN`, v2 `LOCAL` or an
    /// unspecified family or transport), and the connection's own peer applies.
    public var source: ProxyAddress?
    /// The address the client connected to (the balancer's listener); nil likewise.
    public var destination: ProxyAddress?

    public init(version: UInt8, command: Command, transport: Transport,
                source: ProxyAddress? = nil, destination: ProxyAddress? = nil) {
        self.version = version
        self.command = command
        self.transport = transport
        self.source = source
        self.destination = destination
    }

    /// The longest v1 line, CRLF included.
    public static let maxV1Length = 107
    /// The longest v2 header: 16 fixed bytes and as many more as a 16-bit length says.
    public static let maxV2Length = 16 + 65_535

    /// The header at the front of `bytes`, everything received so far on the connection.
    /// Bytes after the header (pipelined requests) are left alone: the caller consumes
    /// exactly `length` bytes of a complete header and serves the rest.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> ProxyHeaderParse {
        guard let first = bytes.first else { return .needMore }
        switch first {
        case UInt8(ascii: "P"): return ProxyHeaderV1.parse(bytes)
        case 0x0D: return ProxyHeaderV2.parse(bytes)
        default: return .invalid(.notProxy)
        }
    }

    /// `parse` for bytes in an array.
    public static func parse(_ bytes: [UInt8]) -> ProxyHeaderParse {
        bytes.withUnsafeBytes { parse($0) }
    }
}

/// What the bytes received so far say about the PROXY header at their front.
public enum ProxyHeaderParse: Equatable, Sendable {
    /// A valid beginning of a header: read more, then parse again from the start.
    case needMore
    /// A whole header in the first `length` bytes; what follows is the client's.
    case complete(ProxyHeader, length: Int)
    /// Not a header, or a malformed one: the connection must be closed.
    case invalid(ProxyHeaderError)
}
