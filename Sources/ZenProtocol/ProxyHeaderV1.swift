/// Version 1: one line of US-ASCII text, at most 107 bytes with its CRLF:
///
///     PROXY TCP4 192.0.2.1 198.51.100.7 56324 1060\r\n
///     PROXY TCP6 2001:db8::1 2001:db8::7 56324 1060\r\n
///     PROXY UNKNOWN[ anything]\r\n
///
/// Each byte is checked as it arrives against what the line may hold there, so garbage
/// is refused at its first impossible byte rather than after 107; an address or a port
/// is decoded once the space or CR after it is there (the spec's "wait for the CRLF"
/// is about not decoding a field before it is complete).
enum ProxyHeaderV1 {
    static func parse(_ bytes: UnsafeRawBufferPointer) -> ProxyHeaderParse {
        do throws(Halt) {
            return try line(bytes)
        } catch {
            switch error {
            case .needMore: return .needMore
            case .invalid(let reason): return .invalid(reason)
            }
        }
    }

    /// Why the line cannot be read to its end (yet).
    private enum Halt: Error {
        case needMore
        case invalid(ProxyHeaderError)
    }

    private enum Family { case ipv4, ipv6 }

    private static func line(_ bytes: UnsafeRawBufferPointer) throws(Halt) -> ProxyHeaderParse {
        var scanner = LineScanner(bytes: bytes)
        try scanner.expectSignature()
        let (name, nameEndsLine) = try scanner.field(.protocolName)
        let family: Family
        if scanner.text(name, is: "UNKNOWN") {
            // The sender may leave out the rest of the line, and the receiver must ignore it.
            if nameEndsLine {
                try scanner.lineFeed()
            } else {
                try scanner.skipToLineEnd()
            }
            return .complete(ProxyHeader(version: 1, command: .proxy, transport: .unspecified), length: scanner.position)
        } else if scanner.text(name, is: "TCP4") {
            family = .ipv4
        } else if scanner.text(name, is: "TCP6") {
            family = .ipv6
        } else {
            throw .invalid(.v1BadProtocol)
        }
        guard !nameEndsLine else { throw .invalid(.v1MissingField) }
        let source = try address(&scanner, family)
        let destination = try address(&scanner, family)
        let sourcePort = try port(&scanner, last: false)
        let destinationPort = try port(&scanner, last: true)
        try scanner.lineFeed()
        let header = ProxyHeader(version: 1, command: .proxy, transport: .stream,
                                 source: source.endpoint(port: sourcePort),
                                 destination: destination.endpoint(port: destinationPort))
        return .complete(header, length: scanner.position)
    }

    private enum IPAddress {
        case v4(UInt32)
        case v6(UInt128)

        func endpoint(port: UInt16) -> ProxyAddress {
            switch self {
            case .v4(let address): .ipv4(address: address, port: port)
            case .v6(let address): .ipv6(address: address, port: port)
            }
        }
    }

    /// An address of `family` and the single space after it.
    private static func address(_ scanner: inout LineScanner, _ family: Family) throws(Halt) -> IPAddress {
        let (range, endsLine) = try scanner.field(.address)
        let text = UnsafeRawBufferPointer(rebasing: scanner.bytes[range])
        let address: IPAddress
        switch family {
        case .ipv4:
            guard let v4 = IPAddressText.ipv4(text) else {
                throw .invalid(IPAddressText.ipv6(text) == nil ? .v1BadAddress : .v1WrongFamily)
            }
            address = .v4(v4)
        case .ipv6:
            guard let v6 = IPAddressText.ipv6(text) else {
                throw .invalid(IPAddressText.ipv4(text) == nil ? .v1BadAddress : .v1WrongFamily)
            }
            address = .v6(v6)
        }
        guard !endsLine else { throw .invalid(.v1MissingField) }
        return address
    }

    /// A port and what must follow it: a space, or the CR of the line's end for the last.
    private static func port(_ scanner: inout LineScanner, last: Bool) throws(Halt) -> UInt16 {
        let (range, endsLine) = try scanner.field(.port)
        let digits = scanner.bytes[range]
        // Only digits get this far (`Field.port`), at most five of them.
        guard let first = digits.first, first != UInt8(ascii: "0") || digits.count == 1 else {
            throw .invalid(.v1BadPort)
        }
        let value = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        guard value <= Int(UInt16.max) else { throw .invalid(.v1BadPort) }
        if endsLine != last { throw .invalid(last ? .v1BadLineEnd : .v1MissingField) }
        return UInt16(value)
    }

    /// The kinds of field on the line and the bytes each may hold.
    private enum Field {
        case protocolName
        case address
        case port

        /// The longest such field: `UNKNOWN`; IPv6 with a dotted quad at its end,
        /// `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`; `65535`.
        var maxLength: Int {
            switch self {
            case .protocolName: 7
            case .address: 45
            case .port: 5
            }
        }

        var error: ProxyHeaderError {
            switch self {
            case .protocolName: .v1BadProtocol
            case .address: .v1BadAddress
            case .port: .v1BadPort
            }
        }

        /// Whether `byte` may be the field's byte at `index`. A protocol must go on
        /// spelling one of the three names; addresses hold the bytes of either family,
        /// so that an address of the wrong one is told apart from garbage.
        func admits(_ byte: UInt8, at index: Int) -> Bool {
            switch self {
            case .protocolName:
                return Self.protocolNames.contains { index < $0.count && $0[index] == byte }
            case .address:
                switch byte {
                case UInt8(ascii: "0") ... UInt8(ascii: "9"), UInt8(ascii: "a") ... UInt8(ascii: "f"),
                     UInt8(ascii: "A") ... UInt8(ascii: "F"), UInt8(ascii: ":"), UInt8(ascii: "."):
                    return true
                default:
                    return false
                }
            case .port:
                return byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
            }
        }

        private static let protocolNames: [[UInt8]] = [Array("TCP4".utf8), Array("TCP6".utf8), Array("UNKNOWN".utf8)]
    }

    /// Reads the line byte by byte, never past its 107th.
    private struct LineScanner {
        let bytes: UnsafeRawBufferPointer
        /// The bytes read so far.
        private(set) var position = 0

        init(bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
        }

        private static let space = UInt8(ascii: " ")
        private static let cr: UInt8 = 0x0D
        private static let lf: UInt8 = 0x0A

        /// The next byte; running out means more may come, unless the line already has
        /// the 107 bytes it may have and still no CRLF.
        private mutating func next() throws(Halt) -> UInt8 {
            guard position < min(bytes.count, ProxyHeader.maxV1Length) else {
                throw bytes.count >= ProxyHeader.maxV1Length ? .invalid(.v1TooLong) : .needMore
            }
            defer { position += 1 }
            return bytes[position]
        }

        /// `PROXY ` and its single space.
        mutating func expectSignature() throws(Halt) {
            for expected in "PROXY ".utf8 {
                guard try next() == expected else { throw .invalid(.notProxy) }
            }
        }

        /// The next field up to the space or CR after it (both read), and whether it was
        /// the CR; each byte is checked as it comes.
        mutating func field(_ kind: Field) throws(Halt) -> (range: Range<Int>, endsLine: Bool) {
            let start = position
            while true {
                let byte = try next()
                switch byte {
                case Self.space, Self.cr:
                    return (start ..< position - 1, byte == Self.cr)
                case Self.lf:
                    throw .invalid(.v1BadLineEnd)
                default:
                    let index = position - 1 - start
                    guard index < kind.maxLength, kind.admits(byte, at: index) else { throw .invalid(kind.error) }
                }
            }
        }

        /// The LF that must follow the CR just read.
        mutating func lineFeed() throws(Halt) {
            guard try next() == Self.lf else { throw .invalid(.v1BadLineEnd) }
        }

        /// Everything up to and including the CRLF; a lone CR or LF is no line end.
        mutating func skipToLineEnd() throws(Halt) {
            while true {
                switch try next() {
                case Self.cr: return try lineFeed()
                case Self.lf: throw .invalid(.v1BadLineEnd)
                default: continue
                }
            }
        }

        /// Whether the bytes in `range` are `name`.
        func text(_ range: Range<Int>, is name: StaticString) -> Bool {
            name.withUTF8Buffer { $0.elementsEqual(bytes[range]) }
        }
    }
}
