// libFuzzer target for the PROXY protocol header parser, ProxyHeader.parse. Built by
// Tests/Fuzz/run.sh together with the sources of ZenProtocol into one module.
//
// The input is what a peer sends first on a PROXY listener. Checked:
// - parsing never crashes or reads past the bytes given (each prefix is parsed from an
//   allocation of exactly its size, so AddressSanitizer sees an overread);
// - a complete header has 0 < length <= the bytes given, at most 107 (v1) or
//   16 + 65,535 (v2), and is decided exactly when its last byte arrives;
// - cut anywhere: every prefix says needMore until one decides, and every longer prefix,
//   the whole input included, says the same (the same header and length, or reason);
// - the address text readers agree with glibc's inet_pton on every space-separated
//   token of the input, and the IPv6 writer with inet_ntop on addresses built from it;
// - a v2 header and a v1 line, encoded below from the input's bytes, parse back to what
//   was encoded, whole, followed by pipelined bytes, and cut at every offset.

import Glibc

/// `bytes[..<count]` parsed from a copy that ends where its allocation ends.
func parsePrefix(_ bytes: UnsafeRawBufferPointer, _ count: Int) -> ProxyHeaderParse {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 1)
    defer { copy.deallocate() }
    copy.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[..<count]))
    return ProxyHeader.parse(UnsafeRawBufferPointer(copy))
}

/// The parse of every prefix of `bytes`: needMore until one decides, then that decision
/// (checked on the next few prefixes and on the whole, not on all: a complete v2 header
/// is walked again on each). Returns the whole input's result.
@discardableResult
func checkPrefixes(_ bytes: UnsafeRawBufferPointer) -> ProxyHeaderParse {
    let whole = ProxyHeader.parse(bytes)
    var decision: (length: Int, result: ProxyHeaderParse)?
    for count in 0 ... bytes.count {
        let result = parsePrefix(bytes, count)
        if let decision {
            check(result == decision.result, "\(count) bytes give \(result), \(decision.length) gave \(decision.result)")
            if count > decision.length + 8 { break }
        } else if result != .needMore {
            decision = (count, result)
            if case .complete(let header, let length) = result {
                check(length == count, "complete with length \(length) once \(count) bytes are there")
                check(length > 0 && length <= (header.version == 1 ? ProxyHeader.maxV1Length : ProxyHeader.maxV2Length),
                      "v\(header.version) header of \(length) bytes")
            }
        }
    }
    check(whole == decision?.result ?? .needMore, "the whole input gives \(whole), its prefixes \(String(describing: decision))")
    if case .complete(_, let length) = whole { check(length > 0 && length <= bytes.count, "length \(length) of \(bytes.count)") }
    if whole == .needMore, bytes.first == UInt8(ascii: "P") { check(bytes.count < ProxyHeader.maxV1Length, "v1 needs more after 107 bytes") }
    return whole
}

// MARK: the address text against glibc

func checkAddressText(_ token: UnsafeRawBufferPointer) {
    guard token.count <= 64, !token.contains(0) else { return }
    let text = String(decoding: token, as: UTF8.self)
    guard text.utf8.elementsEqual(token) else { return }  // not UTF-8: inet_pton would see other bytes
    var v4 = in_addr()
    let libcV4: UInt32? = inet_pton(AF_INET, text, &v4) == 1 ? UInt32(bigEndian: v4.s_addr) : nil
    check(IPAddressText.ipv4(token) == libcV4, "ipv4 '\(text)': \(String(describing: IPAddressText.ipv4(token))), inet_pton \(String(describing: libcV4))")
    var v6 = in6_addr()
    let libcV6: UInt128? = inet_pton(AF_INET6, text, &v6) == 1 ? UInt128(bigEndian: unsafeBitCast(v6, to: UInt128.self)) : nil
    check(IPAddressText.ipv6(token) == libcV6, "ipv6 '\(text)': \(String(describing: IPAddressText.ipv6(token))), inet_pton \(String(describing: libcV6))")
}

func inetNtop(_ address: UInt128) -> String {
    var raw = unsafeBitCast(address.bigEndian, to: in6_addr.self)
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    _ = inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
    return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

// MARK: encoders driven by the input's bytes

/// The input's bytes one at a time, then zeros.
struct ByteSource {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    mutating func next() -> UInt8 {
        defer { index += 1 }
        return index < bytes.count ? bytes[index] : 0
    }

    mutating func next16() -> UInt16 { UInt16(next()) << 8 | UInt16(next()) }

    mutating func next32() -> UInt32 { UInt32(next16()) << 16 | UInt32(next16()) }

    /// An IPv6 address of eight groups, each zero, ffff or any, so zero runs are common.
    mutating func ipv6() -> UInt128 {
        var address: UInt128 = 0
        for _ in 0 ..< 8 {
            let kind = next()
            let group: UInt16 = switch kind & 3 {
            case 0, 1: 0
            case 2: 0xFFFF
            default: next16()
            }
            address = address << 16 | UInt128(group)
        }
        return address
    }
}

func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
func be32(_ value: UInt32) -> [UInt8] { be16(UInt16(value >> 16)) + be16(UInt16(value & 0xFFFF)) }
func be128(_ value: UInt128) -> [UInt8] { (0 ..< 16).map { UInt8(truncatingIfNeeded: value >> (120 - 8 * $0)) } }

let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

/// A unix path as the parser gives it back (non-NUL bytes; abstract: a NUL, then a name
/// ending in a non-NUL byte), and its 108-byte field.
func unixPath(_ source: inout ByteSource) -> (path: [UInt8], field: [UInt8]) {
    let length = Int(source.next()) % 109
    var path = (0 ..< length).map { _ in source.next() | 1 }
    if length >= 2, source.next() & 1 == 1 {
        path[0] = 0
        for i in 1 ..< length - 1 { path[i] = source.next() }  // NULs inside an abstract name are kept
    }
    return (path, path + [UInt8](repeating: 0, count: 108 - length))
}

/// A v2 header built from `source`, and what parsing it must give.
func encodeV2(_ source: inout ByteSource) -> (bytes: [UInt8], header: ProxyHeader) {
    let command: ProxyHeader.Command = source.next() & 1 == 0 ? .local : .proxy
    // LOCAL ignores the family byte, whatever it holds; PROXY gets a valid one.
    let family = source.next() & 3
    let transport = source.next() % 3
    let byte13 = command == .local ? source.next() : family << 4 | transport
    var header = ProxyHeader(version: 2, command: command, transport: .unspecified)
    var block: [UInt8] = []
    var known = false
    if command == .proxy {
        header.transport = [.unspecified, .stream, .datagram][Int(transport)]
        known = transport != 0
        switch family {
        case 1:
            let (s, d, sp, dp) = (source.next32(), source.next32(), source.next16(), source.next16())
            block = be32(s) + be32(d) + be16(sp) + be16(dp)
            if known { (header.source, header.destination) = (.ipv4(address: s, port: sp), .ipv4(address: d, port: dp)) }
        case 2:
            let (s, d, sp, dp) = (source.ipv6(), source.ipv6(), source.next16(), source.next16())
            block = be128(s) + be128(d) + be16(sp) + be16(dp)
            if known { (header.source, header.destination) = (.ipv6(address: s, port: sp), .ipv6(address: d, port: dp)) }
        case 3:
            let (s, d) = (unixPath(&source), unixPath(&source))
            block = s.field + d.field
            if known { (header.source, header.destination) = (.unix(path: s.path), .unix(path: d.path)) }
        default:
            known = false
        }
    }
    if !known { block = [] }
    // TLVs (a CRC32C among them, maybe); where nothing is known of the block, any bytes.
    var tlvs: [UInt8] = []
    var crcAt: Int?
    for _ in 0 ..< source.next() % 5 {
        var type = source.next()
        if type == 0x03 { type = 0x04 }
        let length = Int(source.next()) % 48
        tlvs += [type] + be16(UInt16(length)) + (0 ..< length).map { _ in source.next() }
    }
    if known, source.next() & 3 == 0 {
        crcAt = 16 + block.count + tlvs.count + 3
        tlvs += [0x03, 0x00, 0x04, 0, 0, 0, 0]
    }
    if !known { tlvs += (0 ..< Int(source.next()) % 8).map { _ in source.next() } }
    let body = block + tlvs
    var bytes = v2Signature + [command == .local ? 0x20 : 0x21, byte13] + be16(UInt16(body.count)) + body
    if let crcAt {
        var crc = CRC32C()
        bytes.withUnsafeBytes { crc.update($0) }
        bytes.replaceSubrange(crcAt ..< crcAt + 4, with: be32(crc.value))
    }
    return (bytes, header)
}

/// A v1 line built from `source`: IPv6 as inet_ntop writes it or as eight 4-digit groups
/// of mixed case; UNKNOWN short or with a rest to ignore.
func encodeV1(_ source: inout ByteSource) -> (bytes: [UInt8], header: ProxyHeader) {
    let (sp, dp) = (source.next16(), source.next16())
    switch source.next() % 3 {
    case 0:
        let (s, d) = (source.next32(), source.next32())
        let line = "PROXY TCP4 \(IPAddressText.ipv4Text(s)) \(IPAddressText.ipv4Text(d)) \(sp) \(dp)\r\n"
        return (Array(line.utf8), ProxyHeader(version: 1, command: .proxy, transport: .stream,
                                              source: .ipv4(address: s, port: sp), destination: .ipv4(address: d, port: dp)))
    case 1:
        let (s, d) = (source.ipv6(), source.ipv6())
        let full = source.next() & 1 == 1
        func text(_ address: UInt128) -> String {
            guard full else { return inetNtop(address) }
            return (0 ..< 8).map { i -> String in
                let digits = String(UInt16(truncatingIfNeeded: address >> (112 - 16 * i)), radix: 16, uppercase: i % 2 == 0)
                return String(repeating: "0", count: 4 - digits.count) + digits
            }.joined(separator: ":")
        }
        let line = "PROXY TCP6 \(text(s)) \(text(d)) \(sp) \(dp)\r\n"
        return (Array(line.utf8), ProxyHeader(version: 1, command: .proxy, transport: .stream,
                                              source: .ipv6(address: s, port: sp), destination: .ipv6(address: d, port: dp)))
    default:
        var line = Array("PROXY UNKNOWN".utf8)
        if source.next() & 1 == 1 {
            line += [UInt8(ascii: " ")] + (0 ..< Int(source.next()) % 92).map { _ in
                let byte = source.next()
                return byte == 0x0D || byte == 0x0A ? UInt8(ascii: "x") : byte
            }
        }
        return (line + [0x0D, 0x0A], ProxyHeader(version: 1, command: .proxy, transport: .unspecified))
    }
}

/// `encoded` parses to `header` with its own length, whole, cut anywhere, and followed by more.
func checkRoundTrip(_ encoded: [UInt8], _ header: ProxyHeader, followedBy more: UnsafeRawBufferPointer) {
    encoded.withUnsafeBytes { bytes in
        let result = checkPrefixes(bytes)
        check(result == .complete(header, length: encoded.count), "\(encoded) parses to \(result), not \(header)")
    }
    let pipelined = encoded + Array(more.prefix(64))
    check(ProxyHeader.parse(pipelined) == .complete(header, length: encoded.count), "bytes after \(header) change it")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func proxyHeaderFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    checkPrefixes(input)

    for token in input.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false) {
        checkAddressText(UnsafeRawBufferPointer(rebasing: token))
    }
    var source = ByteSource(bytes: input)
    for _ in 0 ..< 2 {
        let address = source.ipv6()
        check(IPAddressText.ipv6Text(address) == inetNtop(address), "\(IPAddressText.ipv6Text(address)) is \(inetNtop(address)) for inet_ntop")
    }

    source = ByteSource(bytes: input)
    let v2 = encodeV2(&source)
    checkRoundTrip(v2.bytes, v2.header, followedBy: input)
    source = ByteSource(bytes: input)
    let v1 = encodeV1(&source)
    checkRoundTrip(v1.bytes, v1.header, followedBy: input)
    return 0
}
