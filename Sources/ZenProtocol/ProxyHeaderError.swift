/// Why the bytes at the front of a connection are not a valid PROXY header; the raw
/// value is a stable short reason for a log field or a stats label.
public enum ProxyHeaderError: String, Error, CaseIterable, Sendable, CustomStringConvertible {
    /// Neither `PROXY ` (v1) nor the v2 signature.
    case notProxy = "not_proxy"
    /// No CRLF within the 107 bytes a v1 line may have.
    case v1TooLong = "v1_too_long"
    /// The protocol after `PROXY ` is not `TCP4`, `TCP6` or `UNKNOWN`.
    case v1BadProtocol = "v1_bad_protocol"
    /// An address that is no dotted quad (TCP4) or IPv6 text (TCP6).
    case v1BadAddress = "v1_bad_address"
    /// A valid address of the other family than the protocol names.
    case v1WrongFamily = "v1_wrong_family"
    /// A port that is not a decimal number from 0 to 65535 without a leading zero.
    case v1BadPort = "v1_bad_port"
    /// The line ends before the destination port.
    case v1MissingField = "v1_missing_field"
    /// A CR without LF, an LF without CR, or more after the destination port.
    case v1BadLineEnd = "v1_bad_line_end"
    /// The v2 version nibble is not 2.
    case v2BadVersion = "v2_bad_version"
    /// The v2 command nibble is neither LOCAL (0) nor PROXY (1).
    case v2BadCommand = "v2_bad_command"
    /// The v2 address family nibble is none of UNSPEC, INET, INET6, UNIX (0 to 3).
    case v2BadFamily = "v2_bad_family"
    /// The v2 transport nibble is none of UNSPEC, STREAM, DGRAM (0 to 2).
    case v2BadTransport = "v2_bad_transport"
    /// The v2 length is shorter than the addresses of the family it names.
    case v2ShortLength = "v2_short_length"
    /// A v2 TLV does not fit in what remains of the stated length.
    case v2TLVOverrun = "v2_tlv_overrun"
    /// A v2 CRC32C TLV that is not 4 bytes or does not match the header.
    case v2BadChecksum = "v2_bad_checksum"

    /// The stable short reason, such as `v1_bad_port`.
    public var reason: String { rawValue }

    public var description: String {
        switch self {
        case .notProxy: "not a PROXY protocol header"
        case .v1TooLong: "PROXY v1 line without CRLF in its first 107 bytes"
        case .v1BadProtocol: "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN"
        case .v1BadAddress: "PROXY v1 address is malformed"
        case .v1WrongFamily: "PROXY v1 address is not of the family its protocol names"
        case .v1BadPort: "PROXY v1 port is not a number from 0 to 65535 without leading zeros"
        case .v1MissingField: "PROXY v1 line ends before its destination port"
        case .v1BadLineEnd: "PROXY v1 line does not end with exactly CRLF after its last field"
        case .v2BadVersion: "PROXY v2 version is not 2"
        case .v2BadCommand: "PROXY v2 command is neither LOCAL nor PROXY"
        case .v2BadFamily: "PROXY v2 address family is not UNSPEC, INET, INET6 or UNIX"
        case .v2BadTransport: "PROXY v2 transport is not UNSPEC, STREAM or DGRAM"
        case .v2ShortLength: "PROXY v2 length is shorter than its addresses"
        case .v2TLVOverrun: "PROXY v2 TLV runs past the header's length"
        case .v2BadChecksum: "PROXY v2 CRC32C does not match the header"
        }
    }
}
