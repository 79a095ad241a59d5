/// IP addresses as text, read and written without libc so the protocol module stays pure.
///
/// Reading accepts exactly what glibc's `inet_pton` accepts (the PROXY v1 rules: dotted
/// quads without leading zeros; IPv6 groups of 1 to 4 hex digits, one `::`, an optional
/// dotted quad at the end). Writing gives what `inet_ntop` writes, so an address prints
/// the same here as for a peer the kernel reported. The fuzz target checks both.
enum IPAddressText {
    /// A dotted quad in host byte order: exactly four decimal numbers from 0 to 255,
    /// without leading zeros (which could be read as octal).
    static func ipv4(_ text: UnsafeRawBufferPointer) -> UInt32? {
        var address: UInt32 = 0
        var parts = 0
        var i = 0
        while true {
            let start = i
            var value: UInt32 = 0
            while i < text.count, let digit = decimal(text[i]) {
                guard i == start || value != 0 else { return nil }  // a leading zero
                value = value * 10 + UInt32(digit)
                guard value <= 255 else { return nil }
                i += 1
            }
            guard i > start else { return nil }
            address = address << 8 | value
            parts += 1
            if parts == 4 { return i == text.count ? address : nil }
            guard i < text.count, text[i] == UInt8(ascii: ".") else { return nil }
            i += 1
        }
    }

    /// An IPv6 address: eight groups of 1 to 4 hex digits separated by `:`, where one
    /// `::` stands for one or more zero groups and the last two groups may be written as
    /// a dotted quad (`::ffff:192.0.2.1`).
    static func ipv6(_ text: UnsafeRawBufferPointer) -> UInt128? {
        // The groups before `::` (all of them when there is none), and those after it.
        var head: UInt128 = 0, headGroups = 0
        var tail: UInt128 = 0, tailGroups = 0
        var compressed = false
        var i = 0
        let colon = UInt8(ascii: ":")
        if text.count >= 2, text[0] == colon, text[1] == colon {
            compressed = true
            i = 2
        }
        while i < text.count {
            let start = i
            var value: UInt128 = 0
            while i < text.count, let digit = hex(text[i]) {
                guard i - start < 4 else { return nil }
                value = value << 4 | UInt128(digit)
                i += 1
            }
            var groups = 1
            if i < text.count, text[i] == UInt8(ascii: ".") {
                guard let v4 = ipv4(UnsafeRawBufferPointer(rebasing: text[start...])) else { return nil }
                value = UInt128(v4)
                groups = 2
                i = text.count
            } else {
                guard i > start else { return nil }  // an empty group, as in `1:::2` or `:1`
            }
            guard headGroups + tailGroups + groups <= 8 else { return nil }
            if compressed {
                tail = tail << (16 * groups) | value
                tailGroups += groups
            } else {
                head = head << (16 * groups) | value
                headGroups += groups
            }
            guard i < text.count else { break }
            guard text[i] == colon, i + 1 < text.count else { return nil }  // `1:` ends in one colon
            i += 1
            if text[i] == colon {
                guard !compressed else { return nil }  // a second `::`
                compressed = true
                i += 1
            }
        }
        let groups = headGroups + tailGroups
        if compressed {
            // `::` stands for at least one group.
            guard groups < 8 else { return nil }
            return head << (16 * (8 - headGroups)) | tail
        }
        return groups == 8 ? head : nil
    }

    /// Dotted-quad text of an IPv4 address in host byte order.
    static func ipv4Text(_ address: UInt32) -> String {
        "\(address >> 24).\((address >> 16) & 0xff).\((address >> 8) & 0xff).\(address & 0xff)"
    }

    /// IPv6 text as `inet_ntop` writes it (RFC 5952): lower-case hex without leading
    /// zeros, the first longest run of two or more zero groups as `::`, and the last 32
    /// bits as a dotted quad after `::ffff:` or after six zero groups (`::192.0.2.1`).
    static func ipv6Text(_ address: UInt128) -> String {
        func group(_ i: Int) -> UInt16 { UInt16(truncatingIfNeeded: address >> (112 - 16 * i)) }
        var bestStart = -1, bestLength = 0
        var runStart = -1
        for i in 0 ... 8 {
            if i < 8, group(i) == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength { (bestStart, bestLength) = (runStart, i - runStart) }
                runStart = -1
            }
        }
        if bestLength < 2 { (bestStart, bestLength) = (-1, 0) }
        if bestStart == 0, bestLength == 6 || (bestLength == 5 && group(5) == 0xFFFF) {
            return (bestLength == 5 ? "::ffff:" : "::") + ipv4Text(UInt32(truncatingIfNeeded: address))
        }
        var text = ""
        var i = 0
        while i < 8 {
            if i == bestStart {
                text += "::"
                i += bestLength
                continue
            }
            if i > 0, i != bestStart + bestLength { text += ":" }
            text += String(group(i), radix: 16)
            i += 1
        }
        return text
    }

    private static func decimal(_ byte: UInt8) -> UInt8? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? byte - UInt8(ascii: "0") : nil
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0") ... UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a") ... UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A") ... UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
