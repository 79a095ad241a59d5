/// Version 2: a 16-byte preamble (signature, version and command, family and transport,
/// a big-endian length), then as many bytes as the length says: the addresses of the
/// family, then TLVs (type, 16-bit length, value), skipped except a CRC32C, verified.
///
/// Each preamble byte is checked as it arrives; once the length is there, one that
/// cannot hold the family's addresses is refused at once; the addresses and TLVs are
/// read once the whole header is there (so a header sent a byte at a time costs one walk).
enum ProxyHeaderV2 {
    /// `\r\n\r\n\0\r\nQUIT\n`
    private static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    private static let preambleLength = 16
    /// The length of each unix path field (`sun_path`).
    private static let unixPathLength = 108
    private static let crc32cType: UInt8 = 0x03

    /// What the address block holds, from the family and transport nibbles.
    private enum Addresses {
        /// Nothing the receiver reads (LOCAL, or an unspecified family or transport): the
        /// whole block is skipped, TLVs included, since nothing says where they start.
        case ignored
        case ipv4
        case ipv6
        case unix

        var length: Int {
            switch self {
            case .ignored: 0
            case .ipv4: 2 * 4 + 2 * 2
            case .ipv6: 2 * 16 + 2 * 2
            case .unix: 2 * ProxyHeaderV2.unixPathLength
            }
        }
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) -> ProxyHeaderParse {
        let count = bytes.count
        for i in 0 ..< min(count, signature.count) where bytes[i] != signature[i] {
            return .invalid(.notProxy)
        }
        guard count > 12 else { return .needMore }
        guard bytes[12] >> 4 == 2 else { return .invalid(.v2BadVersion) }
        let command: ProxyHeader.Command
        switch bytes[12] & 0x0F {
        case 0: command = .local
        case 1: command = .proxy
        default: return .invalid(.v2BadCommand)
        }
        guard count > 13 else { return .needMore }
        var transport = ProxyHeader.Transport.unspecified
        var addresses = Addresses.ignored
        // LOCAL: "discard the protocol block including the family which is ignored".
        if command == .proxy {
            switch bytes[13] & 0x0F {
            case 0: transport = .unspecified
            case 1: transport = .stream
            case 2: transport = .datagram
            default: return .invalid(.v2BadTransport)
            }
            switch bytes[13] >> 4 {
            case 0: addresses = .ignored
            case 1: addresses = .ipv4
            case 2: addresses = .ipv6
            case 3: addresses = .unix
            default: return .invalid(.v2BadFamily)
            }
            // An unspecified transport leaves the addresses' layout unknown (and ports
            // meaningless): the receiver uses the real endpoints, as for AF_UNSPEC.
            if transport == .unspecified { addresses = .ignored }
        }
        guard count >= preambleLength else { return .needMore }
        let total = preambleLength + (Int(bytes[14]) << 8 | Int(bytes[15]))
        guard total - preambleLength >= addresses.length else { return .invalid(.v2ShortLength) }
        guard count >= total else { return .needMore }

        let header = UnsafeRawBufferPointer(rebasing: bytes[0 ..< total])
        if addresses != .ignored, let error = checkTLVs(header, from: preambleLength + addresses.length) {
            return .invalid(error)
        }
        var result = ProxyHeader(version: 2, command: command, transport: transport)
        let block = preambleLength
        switch addresses {
        case .ignored:
            break
        case .ipv4:
            result.source = .ipv4(address: load(UInt32.self, header, at: block), port: load(UInt16.self, header, at: block + 8))
            result.destination = .ipv4(address: load(UInt32.self, header, at: block + 4), port: load(UInt16.self, header, at: block + 10))
        case .ipv6:
            result.source = .ipv6(address: load(UInt128.self, header, at: block), port: load(UInt16.self, header, at: block + 32))
            result.destination = .ipv6(address: load(UInt128.self, header, at: block + 16), port: load(UInt16.self, header, at: block + 34))
        case .unix:
            result.source = .unix(path: unixPath(header, at: block))
            result.destination = .unix(path: unixPath(header, at: block + unixPathLength))
        }
        return .complete(result, length: total)
    }

    /// Walks the TLVs from `offset` to the header's end: each must fit, and a CRC32C must
    /// be 4 bytes and match the header computed with its own value as zeros.
    private static func checkTLVs(_ header: UnsafeRawBufferPointer, from offset: Int) -> ProxyHeaderError? {
        var offset = offset
        while offset < header.count {
            guard header.count - offset >= 3 else { return .v2TLVOverrun }
            let type = header[offset]
            let value = offset + 3
            let length = Int(load(UInt16.self, header, at: offset + 1))
            guard length <= header.count - value else { return .v2TLVOverrun }
            if type == crc32cType {
                guard length == 4 else { return .v2BadChecksum }
                var crc = CRC32C()
                crc.update(UnsafeRawBufferPointer(rebasing: header[..<value]))
                crc.update(zeros: 4)
                crc.update(UnsafeRawBufferPointer(rebasing: header[(value + 4)...]))
                guard crc.value == load(UInt32.self, header, at: value) else { return .v2BadChecksum }
            }
            offset = value + length
        }
        return nil
    }

    /// A big-endian integer at `offset`.
    private static func load<T: FixedWidthInteger>(_ type: T.Type, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> T {
        T(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// A `sun_path` field: the path before its first NUL, or for an abstract socket (a
    /// leading NUL) the name up to its last non-NUL byte, since the field is padded.
    private static func unixPath(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> [UInt8] {
        let field = bytes[offset ..< offset + unixPathLength]
        if field.first == 0 {
            guard let last = field.lastIndex(where: { $0 != 0 }) else { return [] }
            return Array(field[...last])
        }
        return Array(field.prefix { $0 != 0 })
    }
}
