import Glibc
import Testing
@testable import ZenProtocol

// The PROXY protocol as HAProxy's doc/proxy-protocol.txt specifies it; each test names the
// part of the specification it checks.

private func parse(_ text: String) -> ProxyHeaderParse {
    ProxyHeader.parse(Array(text.utf8))
}

/// The results of parsing every prefix of `bytes`, from the empty one to all of it.
private func prefixResults(_ bytes: [UInt8]) -> [ProxyHeaderParse] {
    (0 ... bytes.count).map { ProxyHeader.parse(Array(bytes[..<$0])) }
}

/// The length of the shortest prefix of `bytes` that is no longer `needMore`, and what it is.
private func firstDecision(_ bytes: [UInt8]) -> (length: Int, result: ProxyHeaderParse)? {
    for length in 0 ... bytes.count {
        let result = ProxyHeader.parse(Array(bytes[..<length]))
        if result != .needMore { return (length, result) }
    }
    return nil
}

private func v1(_ source: ProxyAddress, _ destination: ProxyAddress) -> ProxyHeader {
    ProxyHeader(version: 1, command: .proxy, transport: .stream, source: source, destination: destination)
}

private let unknownV1 = ProxyHeader(version: 1, command: .proxy, transport: .unspecified)

/// 192.0.2.1 and the like, in host byte order.
private func ipv4(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32) -> UInt32 { a << 24 | b << 16 | c << 8 | d }

// MARK: v2 encoding, written out the way section 2.2 lays it out

private let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

private func be16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
private func be32(_ value: UInt32) -> [UInt8] { (0 ..< 4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
private func be128(_ value: UInt128) -> [UInt8] { (0 ..< 16).map { UInt8(truncatingIfNeeded: value >> (120 - 8 * $0)) } }

/// A v2 header: signature, version/command byte, family/transport byte, the length of
/// `body` (or `length`), then `body`.
private func v2(_ versionCommand: UInt8, _ familyTransport: UInt8, _ body: [UInt8], length: Int? = nil) -> [UInt8] {
    signature + [versionCommand, familyTransport] + be16(length ?? body.count) + body
}

private func tlv(_ type: UInt8, _ value: [UInt8]) -> [UInt8] { [type] + be16(value.count) + value }

/// A `sun_path` field: `path`, padded with NULs to 108 bytes.
private func sunPath(_ path: [UInt8]) -> [UInt8] { path + [UInt8](repeating: 0, count: 108 - path.count) }

private let v4Block = be32(ipv4(192, 0, 2, 1)) + be32(ipv4(198, 51, 100, 7)) + be16(56324) + be16(1060)
private let v4Header = v1(.ipv4(address: ipv4(192, 0, 2, 1), port: 56324), .ipv4(address: ipv4(198, 51, 100, 7), port: 1060))
private let v6Source: UInt128 = 0x2001_0DB8_0000_0000_0000_0000_0000_0001
private let v6Destination: UInt128 = 0x2001_0DB8_0000_0000_0000_0000_0000_0007
private let v6Block = be128(v6Source) + be128(v6Destination) + be16(56324) + be16(1060)

private func v2Proxy(_ transport: ProxyHeader.Transport, _ source: ProxyAddress?, _ destination: ProxyAddress?) -> ProxyHeader {
    ProxyHeader(version: 2, command: .proxy, transport: transport, source: source, destination: destination)
}

private let v2Local = ProxyHeader(version: 2, command: .local, transport: .unspecified)

/// Headers of every kind, for the tests that cut them up or follow them with requests.
private let sampleHeaders: [[UInt8]] = [
    Array("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n".utf8),
    Array("PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 65535 0\r\n".utf8),
    Array("PROXY UNKNOWN\r\n".utf8),
    Array("PROXY UNKNOWN 1.2.3.4 whatever 1 2\r\n".utf8),
    v2(0x21, 0x11, v4Block),
    v2(0x21, 0x21, v6Block + tlv(0x01, Array("h2".utf8)) + tlv(0x04, [])),
    v2(0x21, 0x31, sunPath(Array("/run/a".utf8)) + sunPath(Array("/run/b".utf8))),
    v2(0x20, 0x00, []),
    v2(0x20, 0x11, v4Block),
]

@Suite("PROXY protocol v1 (proxy-protocol.txt §2.1)")
struct ProxyHeaderV1Tests {
    @Test("the spec's example line before an HTTP request: the header ends at its CRLF")
    func specExample() {
        let text = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n"
        let header = v1(.ipv4(address: ipv4(192, 168, 0, 1), port: 56324), .ipv4(address: ipv4(192, 168, 0, 11), port: 443))
        #expect(parse(text) == .complete(header, length: 47))
    }

    @Test("the spec's longest TCP/IPv4 line, 56 bytes")
    func longestTCP4() {
        let text = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"
        #expect(text.utf8.count == 56)
        let all = ProxyAddress.ipv4(address: .max, port: 65535)
        #expect(parse(text) == .complete(v1(all, all), length: 56))
    }

    @Test("the spec's longest TCP/IPv6 line, 104 bytes, upper- or lower-case hex")
    func longestTCP6() {
        let text = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF 65535 65535\r\n"
        #expect(text.utf8.count == 104)
        let all = ProxyAddress.ipv6(address: .max, port: 65535)
        #expect(parse(text) == .complete(v1(all, all), length: 104))
    }

    @Test("TCP6 with '::' compression and a dotted quad at the end")
    func tcp6Forms() {
        #expect(parse("PROXY TCP6 2001:db8::1 :: 1 2\r\n") == .complete(
            v1(.ipv6(address: v6Source, port: 1), .ipv6(address: 0, port: 2)), length: 31))
        #expect(parse("PROXY TCP6 ::ffff:192.0.2.1 2001:DB8:0:0:0:0:0:7 0 1060\r\n") == .complete(
            v1(.ipv6(address: 0xFFFF_C000_0201, port: 0), .ipv6(address: v6Destination, port: 1060)), length: 57))
    }

    @Test("UNKNOWN, short form: 15 bytes, no addresses")
    func unknownShort() {
        #expect(parse("PROXY UNKNOWN\r\n") == .complete(unknownV1, length: 15))
    }

    @Test("UNKNOWN: the receiver ignores anything before the CRLF")
    func unknownIgnoresRest() {
        #expect(parse("PROXY UNKNOWN ffff:f...f:ffff whatever \u{1}\u{7F} 65535 65535\r\nrest") == .complete(unknownV1, length: 55))
    }

    @Test("the spec's worst case: a 107-byte UNKNOWN line is accepted")
    func worstCase107() {
        let address = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        let text = "PROXY UNKNOWN \(address) \(address) 65535 65535\r\n"
        #expect(text.utf8.count == 107)
        #expect(parse(text) == .complete(unknownV1, length: 107))
    }

    @Test("no CRLF in the first 107 bytes: rejected at the 107th byte, not later")
    func over107() {
        let text = Array("PROXY UNKNOWN \(String(repeating: "x", count: 92))\r\n".utf8)
        #expect(text.count == 108)
        #expect(firstDecision(text)! == (107, .invalid(.v1TooLong)))
        #expect(ProxyHeader.parse(text) == .invalid(.v1TooLong))
        // The CR as the 107th byte leaves no room for its LF.
        #expect(ProxyHeader.parse(Array(text[..<107])) == .invalid(.v1TooLong))
        #expect(ProxyHeader.parse(Array(repeating: UInt8(ascii: "x"), count: 200).replacingFirst(with: "PROXY UNKNOWN ")) == .invalid(.v1TooLong))
    }

    @Test("ports: 0 and 65535 are the bounds")
    func portBounds() {
        #expect(parse("PROXY TCP4 0.0.0.0 0.0.0.0 0 65535\r\n") == .complete(
            v1(.ipv4(address: 0, port: 0), .ipv4(address: 0, port: 65535)), length: 36))
    }

    @Test("a port that is not 0-65535 in decimal without leading zeros or sign",
          arguments: ["65536", "99999", "123456", "+80", "-1", "", "080", "00", "8a", "0x50", "1e3", "\t80"])
    func badPort(port: String) {
        #expect(parse("PROXY TCP4 192.0.2.1 192.0.2.2 \(port) 1060\r\n") == .invalid(.v1BadPort))
        #expect(parse("PROXY TCP4 192.0.2.1 192.0.2.2 1060 \(port)\r\n") == .invalid(.v1BadPort))
    }

    @Test("an IPv4 address that is not exactly four numbers 0-255 without leading zeros",
          arguments: ["256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "1..2.3", "", "1.2.3.4a",
                      "0x7f.0.0.1", "localhost", "1.2.3.-4", "1.2.3.4/24", " 1.2.3.4"])
    func badIPv4(address: String) {
        #expect(parse("PROXY TCP4 \(address) 192.0.2.2 1 2\r\n") == .invalid(.v1BadAddress))
        #expect(parse("PROXY TCP4 192.0.2.2 \(address) 1 2\r\n") == .invalid(.v1BadAddress))
    }

    @Test("an IPv6 address that does not decode to exactly 128 bits",
          arguments: ["1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1::2::3", ":1::", "1:::2", "1:", ":", "12345::",
                      "g::1", "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4", "::01.2.3.4", "::1.2.3.4:5", "[::1]",
                      "::1%eth0", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", ""])
    func badIPv6(address: String) {
        #expect(parse("PROXY TCP6 \(address) ::1 1 2\r\n") == .invalid(.v1BadAddress))
        #expect(parse("PROXY TCP6 ::1 \(address) 1 2\r\n") == .invalid(.v1BadAddress))
    }

    @Test("the address family must match the protocol")
    func wrongFamily() {
        #expect(parse("PROXY TCP4 ::1 192.0.2.2 1 2\r\n") == .invalid(.v1WrongFamily))
        #expect(parse("PROXY TCP4 192.0.2.2 ::ffff:192.0.2.1 1 2\r\n") == .invalid(.v1WrongFamily))
        #expect(parse("PROXY TCP6 192.0.2.1 ::1 1 2\r\n") == .invalid(.v1WrongFamily))
        #expect(parse("PROXY TCP6 ::1 192.0.2.1 1 2\r\n") == .invalid(.v1WrongFamily))
    }

    @Test("the protocol is exactly TCP4, TCP6 or UNKNOWN after exactly one space",
          arguments: ["PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", "PROXY tcp4 1.2.3.4 1.2.3.4 1 2\r\n",
                      "PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n", "PROXY TCP 1.2.3.4 1.2.3.4 1 2\r\n",
                      "PROXY  TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "PROXY UNKNOWNX\r\n", "PROXY \r\n", "PROXY TCP44\r\n"])
    func badProtocol(line: String) {
        #expect(parse(line) == .invalid(.v1BadProtocol))
    }

    @Test("fields are separated by exactly one space",
          arguments: ["PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n", "PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n",
                      "PROXY TCP4 1.2.3.4\t1.2.3.4 1 2\r\n"])
    func doubleSpace(line: String) {
        #expect(parse(line) == .invalid(.v1BadAddress))
        #expect(parse("PROXY TCP4 1.2.3.4 1.2.3.4 1  2\r\n") == .invalid(.v1BadPort))
    }

    @Test("a line that ends before the destination port",
          arguments: ["PROXY TCP4\r\n", "PROXY TCP4 192.0.2.1\r\n", "PROXY TCP4 192.0.2.1 192.0.2.2\r\n",
                      "PROXY TCP4 192.0.2.1 192.0.2.2 80\r\n", "PROXY TCP6 ::1 ::2 80\r\n"])
    func missingField(line: String) {
        #expect(parse(line) == .invalid(.v1MissingField))
    }

    @Test("the line ends with CRLF: a lone LF, a CR without LF, or more after the port is refused",
          arguments: ["PROXY TCP4 192.0.2.1 192.0.2.2 80 443\n", "PROXY TCP4 192.0.2.1 192.0.2.2 80 443\rX",
                      "PROXY TCP4 192.0.2.1 192.0.2.2 80 443\r\r\n", "PROXY TCP4 192.0.2.1 192.0.2.2 80 443 \r\n",
                      "PROXY TCP4 192.0.2.1 192.0.2.2 80 443 8\r\n", "PROXY UNKNOWN\n", "PROXY UNKNOWN\r",
                      "PROXY UNKNOWN x\ny\r\n", "PROXY UNKNOWN x\ry\r\n", "PROXY TCP4\n"])
    func badLineEnd(line: String) {
        let bytes = Array(line.utf8)
        let expected = ProxyHeaderParse.invalid(.v1BadLineEnd)
        // "PROXY UNKNOWN\r" is a fine beginning; only the byte after the CR decides.
        if line.hasSuffix("\r") {
            #expect(ProxyHeader.parse(bytes) == .needMore)
            #expect(ProxyHeader.parse(bytes + [UInt8(ascii: "X")]) == expected)
        } else {
            #expect(ProxyHeader.parse(bytes) == expected)
        }
    }

    @Test("'PROXY' must be followed by exactly one space", arguments: ["PROXY\r\n", "PROXYTCP4", "PROXY\t", "PROXZ "])
    func notPROXYSpace(line: String) {
        #expect(parse(line) == .invalid(.notProxy))
    }

    @Test("garbage is refused at its first impossible byte, not after 107 bytes")
    func earlyRejection() {
        #expect(firstDecision(Array("PROXY TCP4 192.0.2.1 x".utf8))! == (22, .invalid(.v1BadAddress)))
        #expect(firstDecision(Array("PROXY TCPX".utf8))! == (10, .invalid(.v1BadProtocol)))
        #expect(firstDecision(Array("PROXY TCP4 1.2.3.4 1.2.3.4 123456".utf8))! == (33, .invalid(.v1BadPort)))
        let longAddress = Array("PROXY TCP6 \(String(repeating: "1", count: 100))".utf8)
        #expect(firstDecision(longAddress)! == (11 + 46, .invalid(.v1BadAddress)))
    }
}

@Suite("PROXY protocol v2 (proxy-protocol.txt §2.2)")
struct ProxyHeaderV2Tests {
    @Test("PROXY, TCP over IPv4 (\\x21 \\x11): 12 address bytes, ports in network order")
    func tcp4() {
        let header = v2Proxy(.stream, .ipv4(address: ipv4(192, 0, 2, 1), port: 56324), .ipv4(address: ipv4(198, 51, 100, 7), port: 1060))
        #expect(ProxyHeader.parse(v2(0x21, 0x11, v4Block)) == .complete(header, length: 28))
    }

    @Test("PROXY, UDP over IPv4 (\\x21 \\x12)")
    func udp4() {
        let header = v2Proxy(.datagram, .ipv4(address: ipv4(192, 0, 2, 1), port: 56324), .ipv4(address: ipv4(198, 51, 100, 7), port: 1060))
        #expect(ProxyHeader.parse(v2(0x21, 0x12, v4Block)) == .complete(header, length: 28))
    }

    @Test("PROXY, TCP and UDP over IPv6 (\\x21, \\x22): 36 address bytes")
    func ipv6() {
        let source = ProxyAddress.ipv6(address: v6Source, port: 56324)
        let destination = ProxyAddress.ipv6(address: v6Destination, port: 1060)
        #expect(ProxyHeader.parse(v2(0x21, 0x21, v6Block)) == .complete(v2Proxy(.stream, source, destination), length: 52))
        #expect(ProxyHeader.parse(v2(0x21, 0x22, v6Block)) == .complete(v2Proxy(.datagram, source, destination), length: 52))
    }

    @Test("PROXY, unix stream and datagram (\\x31, \\x32): two 108-byte paths, NUL-padded")
    func unix() {
        let block = sunPath(Array("/run/client.sock".utf8)) + sunPath(Array("/run/zend.sock".utf8))
        let source = ProxyAddress.unix(path: Array("/run/client.sock".utf8))
        let destination = ProxyAddress.unix(path: Array("/run/zend.sock".utf8))
        #expect(ProxyHeader.parse(v2(0x21, 0x31, block)) == .complete(v2Proxy(.stream, source, destination), length: 232))
        #expect(ProxyHeader.parse(v2(0x21, 0x32, block)) == .complete(v2Proxy(.datagram, source, destination), length: 232))
    }

    @Test("unix: an abstract name keeps its leading NUL, an unnamed socket is empty, a full field has no NUL")
    func unixAbstract() {
        let full = [UInt8](repeating: UInt8(ascii: "p"), count: 108)
        let block = sunPath([0] + Array("zend".utf8)) + full
        let header = v2Proxy(.stream, .unix(path: [0] + Array("zend".utf8)), .unix(path: full))
        #expect(ProxyHeader.parse(v2(0x21, 0x31, block)) == .complete(header, length: 232))
        #expect(ProxyHeader.parse(v2(0x21, 0x31, sunPath([]) + sunPath([]))) == .complete(v2Proxy(.stream, .unix(path: []), .unix(path: [])), length: 232))
    }

    @Test("LOCAL (\\x20) with no address: the balancer's own connection")
    func local() {
        #expect(ProxyHeader.parse(v2(0x20, 0x00, [])) == .complete(v2Local, length: 16))
    }

    @Test("LOCAL: the length is still honoured, and the block and family are ignored")
    func localIgnoresBlock() {
        #expect(ProxyHeader.parse(v2(0x20, 0x11, v4Block)) == .complete(v2Local, length: 28))
        #expect(ProxyHeader.parse(v2(0x20, 0xFF, [1, 2, 3])) == .complete(v2Local, length: 19))
        #expect(ProxyHeader.parse(v2(0x20, 0x21, [])) == .complete(v2Local, length: 16))
    }

    @Test("PROXY with AF_UNSPEC or UNSPEC transport: accepted without addresses, the block skipped")
    func unspecified() {
        #expect(ProxyHeader.parse(v2(0x21, 0x00, [])) == .complete(v2Proxy(.unspecified, nil, nil), length: 16))
        #expect(ProxyHeader.parse(v2(0x21, 0x00, [9, 9, 9, 9, 9])) == .complete(v2Proxy(.unspecified, nil, nil), length: 21))
        #expect(ProxyHeader.parse(v2(0x21, 0x01, [])) == .complete(v2Proxy(.stream, nil, nil), length: 16))
        #expect(ProxyHeader.parse(v2(0x21, 0x10, v4Block)) == .complete(v2Proxy(.unspecified, nil, nil), length: 28))
        #expect(ProxyHeader.parse(v2(0x21, 0x30, [])) == .complete(v2Proxy(.unspecified, nil, nil), length: 16))
    }

    @Test("TLVs after the addresses are skipped; the header's length covers them")
    func tlvsSkipped() {
        let tlvs = tlv(0x01, Array("zen/1".utf8)) + tlv(0x02, Array("zen.example".utf8)) + tlv(0x04, [0, 0, 0])
            + tlv(0x05, [UInt8](repeating: 7, count: 128)) + tlv(0x20, [0x01, 0, 0, 0, 0] + tlv(0x21, Array("TLSv1.3".utf8)))
            + tlv(0xE0, [1]) + tlv(0xF8, [2])
        let bytes = v2(0x21, 0x11, v4Block + tlvs)
        #expect(ProxyHeader.parse(bytes + Array("Simple is better than?".utf8)) == .complete(v2Proxy(.stream, v4Header.source, v4Header.destination), length: bytes.count))
    }

    @Test("a zero-length TLV is three bytes, and may end the header")
    func zeroLengthTLV() {
        let bytes = v2(0x21, 0x11, v4Block + tlv(0x04, []) + tlv(0x04, []))
        #expect(ProxyHeader.parse(bytes) == .complete(v2Proxy(.stream, v4Header.source, v4Header.destination), length: 34))
    }

    @Test("a TLV that runs past the stated length is malformed, even if the bytes follow",
          arguments: [[0x04, 0x00, 0x05, 1, 2, 3, 4], [0x04, 0x00], [0x04], [0x04, 0x00, 0x00, 0x04]])
    func tlvOverrun(tlvs: [UInt8]) {
        let bytes = v2(0x21, 0x11, v4Block + tlvs) + [5, 6, 7, 8]
        #expect(ProxyHeader.parse(bytes) == .invalid(.v2TLVOverrun))
    }

    @Test("CRC32C (RFC 4960 appendix B) of the check vectors")
    func crc32cVectors() {
        var crc = CRC32C()
        Array("123456789".utf8).withUnsafeBytes { crc.update($0) }
        #expect(crc.value == 0xE306_9283)
        var zeros = CRC32C()
        zeros.update(zeros: 32)
        #expect(zeros.value == 0x8A91_36AA)
    }

    @Test("a PP2_TYPE_CRC32C TLV is verified over the whole header with its value as zeros")
    func crc32c() {
        // A header of HAProxy's shape: the checksum comes first among the TLVs.
        let unchecked = v2(0x21, 0x11, v4Block + tlv(0x03, [0, 0, 0, 0]) + tlv(0x01, Array("h2".utf8)))
        var crc = CRC32C()
        unchecked.withUnsafeBytes { crc.update($0) }
        var bytes = unchecked
        bytes.replaceSubrange(31 ..< 35, with: be32(crc.value))
        #expect(ProxyHeader.parse(bytes) == .complete(v2Proxy(.stream, v4Header.source, v4Header.destination), length: bytes.count))
        // Worked out apart from this code (Python, bitwise CRC-32C).
        #expect(crc.value == 0x754C_3C9F)

        var wrong = bytes
        wrong[28 + 3 + 3] ^= 1
        #expect(ProxyHeader.parse(wrong) == .invalid(.v2BadChecksum))
        var tampered = bytes
        tampered[17] ^= 1  // the source address
        #expect(ProxyHeader.parse(tampered) == .invalid(.v2BadChecksum))
        #expect(ProxyHeader.parse(v2(0x21, 0x11, v4Block + tlv(0x03, [0, 0, 0]))) == .invalid(.v2BadChecksum))
    }

    @Test("the address block must fit in the stated length: refused as soon as the length is there",
          arguments: [(UInt8(0x11), 11), (0x12, 0), (0x21, 35), (0x22, 12), (0x31, 215), (0x32, 108)])
    func shortLength(familyTransport: UInt8, length: Int) {
        let bytes = v2(0x21, familyTransport, [UInt8](repeating: 0, count: 300), length: length)
        #expect(firstDecision(bytes)! == (16, .invalid(.v2ShortLength)))
    }

    @Test("the longest header, 16 + 65,535 bytes, ends exactly where its length says")
    func longest() {
        let body = v4Block + tlv(0x04, [UInt8](repeating: 0xAA, count: 65_535 - 12 - 3))
        let bytes = v2(0x21, 0x11, body)
        #expect(bytes.count == ProxyHeader.maxV2Length)
        #expect(ProxyHeader.parse(Array(bytes.dropLast())) == .needMore)
        #expect(ProxyHeader.parse(bytes + Array("Beautiful is better than?".utf8)) == .complete(
            v2Proxy(.stream, v4Header.source, v4Header.destination), length: 65_551))
    }

    @Test("the version nibble must be 2", arguments: [UInt8(0x01), 0x11, 0x31, 0xF1, 0x00])
    func badVersion(versionCommand: UInt8) {
        #expect(firstDecision(v2(versionCommand, 0x11, v4Block))! == (13, .invalid(.v2BadVersion)))
    }

    @Test("the command nibble must be LOCAL (0) or PROXY (1)", arguments: Array(UInt8(0x22) ... 0x2F))
    func badCommand(versionCommand: UInt8) {
        #expect(firstDecision(v2(versionCommand, 0x11, v4Block))! == (13, .invalid(.v2BadCommand)))
    }

    @Test("the family nibble must be 0 to 3", arguments: [UInt8(0x41), 0x51, 0xF1])
    func badFamily(familyTransport: UInt8) {
        #expect(firstDecision(v2(0x21, familyTransport, v4Block))! == (14, .invalid(.v2BadFamily)))
    }

    @Test("the transport nibble must be 0 to 2", arguments: [UInt8(0x13), 0x1F, 0x03])
    func badTransport(familyTransport: UInt8) {
        #expect(firstDecision(v2(0x21, familyTransport, v4Block))! == (14, .invalid(.v2BadTransport)))
    }

    @Test("each of the 12 signature bytes is checked as it arrives")
    func signatureBytes() {
        let good = v2(0x21, 0x11, v4Block)
        for i in 0 ..< 12 {
            var bytes = good
            bytes[i] ^= 0x20
            #expect(firstDecision(bytes)! == (i + 1, .invalid(.notProxy)), "signature byte \(i)")
        }
    }
}

@Suite("PROXY header as a connection delivers it")
struct ProxyHeaderStreamTests {
    @Test("split anywhere: every prefix needs more, until the whole header, which is complete with its exact length",
          arguments: sampleHeaders)
    func everyPrefix(header: [UInt8]) {
        let results = prefixResults(header)
        #expect(results.dropLast().allSatisfy { $0 == .needMore })
        guard case .complete(_, let length) = results.last else {
            Issue.record("not complete: \(results.last!)")
            return
        }
        #expect(length == header.count)
    }

    @Test("a header followed by pipelined requests: the length excludes them, and they are then served",
          arguments: sampleHeaders)
    func pipelined(header: [UInt8]) {
        let requests = Array("Beautiful is better than?Simple is better than?".utf8)
        guard case .complete(_, let length) = ProxyHeader.parse(header + requests) else {
            Issue.record("not complete")
            return
        }
        #expect(length == header.count)
        var output = [UInt8](repeating: 0, count: 64)
        let rest = Array((header + requests)[length...])
        let served = rest.withUnsafeBytes { input in output.withUnsafeMutableBytes { ZenService().serve(input, into: $0) } }
        #expect(String(decoding: output[..<served.produced], as: UTF8.self) == "Ugly.Complex.")
    }

    @Test("a client speaking the Zen protocol to a PROXY listener is refused at its first byte")
    func zenRequestRefused() {
        #expect(firstDecision(Array("Beautiful is better than?".utf8))! == (1, .invalid(.notProxy)))
        #expect(firstDecision(Array("GET / HTTP/1.1\r\n".utf8))! == (1, .invalid(.notProxy)))
        #expect(ProxyHeader.parse([]) == .needMore)
    }

    @Test("once refused, more bytes never change the reason",
          arguments: ["PROXY TCP4 1.2.3.4 x", "PROXY TCP4\r\n", "PROXY UNKNOWN\n", "PROXZ", "Beautiful is better than?"])
    func refusalIsFinal(text: String) {
        let bytes = Array(text.utf8) + Array(repeating: UInt8(ascii: "1"), count: 150)
        let decision = firstDecision(bytes)!
        #expect(prefixResults(bytes)[decision.length...].allSatisfy { $0 == decision.result })
    }
}

@Suite("PROXY header addresses as zend prints them")
struct ProxyAddressTests {
    @Test("IPv4, IPv6 and unix endpoints print like peers elsewhere in zend")
    func formats() {
        #expect(ProxyAddress.ipv4(address: ipv4(192, 0, 2, 1), port: 5000).description == "192.0.2.1:5000")
        #expect(ProxyAddress.ipv6(address: v6Source, port: 5000).description == "[2001:db8::1]:5000")
        #expect(ProxyAddress.ipv6(address: 0xFFFF_C000_0201, port: 5000).description == "192.0.2.1:5000")
        #expect(ProxyAddress.unix(path: Array("/run/zend.sock".utf8)).description == "unix:/run/zend.sock")
        #expect(ProxyAddress.unix(path: [0] + Array("zend".utf8)).description == "unix:@zend")
        #expect(ProxyAddress.unix(path: []).description == "unix")
    }

    @Test("IPv6 text is RFC 5952's, as inet_ntop writes it",
          arguments: ["2001:db8::1", "2001:DB8:0:0:1:0:0:1", "2001:0:0:1:0:0:0:1", "2001:db8:0:1:1:1:1:1", "::", "::1",
                      "1::", "1:0:0:2::", "0:0:1::", "::1.2.3.4", "::ffff:0:1.2.3.4", "::0.0.0.2", "64:ff9b::192.0.2.33",
                      "fe80::1:2", "1:2:3:4:5:6:7:8", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0:0:0:0:0:ffff:0:0"])
    func ipv6Text(text: String) throws {
        let value = try #require(Array(text.utf8).withUnsafeBytes { IPAddressText.ipv6($0) })
        var raw = in6_addr()
        #expect(inet_pton(AF_INET6, text, &raw) == 1)
        #expect(withUnsafeBytes(of: &raw) { Array($0) } == be128(value))
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
        let expected = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(IPAddressText.ipv6Text(value) == expected)
    }

    @Test("every failure has a stable snake_case reason for logs and stats")
    func reasons() {
        #expect(ProxyHeaderError.allCases.map(\.reason) == [
            "not_proxy", "v1_too_long", "v1_bad_protocol", "v1_bad_address", "v1_wrong_family", "v1_bad_port",
            "v1_missing_field", "v1_bad_line_end", "v2_bad_version", "v2_bad_command", "v2_bad_family",
            "v2_bad_transport", "v2_short_length", "v2_tlv_overrun", "v2_bad_checksum",
        ])
    }
}

private extension Array where Element == UInt8 {
    /// This array with its first bytes replaced by `prefix`.
    func replacingFirst(with prefix: String) -> [UInt8] {
        let bytes = Array(prefix.utf8)
        return bytes + self[bytes.count...]
    }
}
