/// The framer's byte search, kept free of libc so the protocol stays pure: eight bytes a
/// step (SWAR), because framing runs on every read.
enum ByteSearch {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Bit 7 of each byte of the result is set where `word` holds `pattern`'s byte; the
    /// lowest set bit is always the first match (higher ones may be false positives).
    @inline(__always)
    private static func matches(_ word: UInt64, _ pattern: UInt64) -> UInt64 {
        let x = word ^ pattern
        return (x &- ones) & ~x & highs
    }

    /// The request starting at `start`: the index of the first `?` at or after it and the
    /// `KeyHash` of the bytes from `start` through that `?`, in one pass of eight bytes a
    /// step (finding the end and hashing the key would otherwise read it twice).
    @inline(__always)
    static func request(in buffer: UnsafeRawBufferPointer, from start: Int) -> (mark: Int, hash: UInt64)? {
        guard let base = buffer.baseAddress else { return nil }
        let count = buffer.count
        let pattern = ones &* 0x3F
        var hash = KeyHash()
        var i = start
        while i &+ 8 <= count {
            let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let found = matches(word, pattern)
            if found != 0 {
                let last = found.trailingZeroBitCount / 8
                // Only the bytes up to the '?': the key's last word, zero-padded.
                hash.mix(last == 7 ? word : word & ((1 &<< UInt64(8 &* (last &+ 1))) &- 1))
                let mark = i &+ last
                return (mark, hash.finish(length: mark &+ 1 &- start))
            }
            hash.mix(word)
            i &+= 8
        }
        guard i < count else { return nil }
        // Fewer than eight bytes left: the buffer's last eight bytes, shifted so the ones
        // left come first and zeros (never a '?') fill the rest; byte by byte only when
        // the whole buffer is shorter than a word.
        let remaining = count &- i
        var tail: UInt64 = 0
        if count >= 8 {
            tail = base.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self) &>> UInt64(8 &* (8 &- remaining))
        } else {
            for k in 0 ..< remaining {
                tail |= UInt64(base.load(fromByteOffset: i &+ k, as: UInt8.self)) &<< UInt64(8 &* k)
            }
        }
        let found = matches(tail, pattern)
        guard found != 0 else { return nil }
        let last = found.trailingZeroBitCount / 8
        hash.mix(tail & ((1 &<< UInt64(8 &* (last &+ 1))) &- 1))
        let mark = i &+ last
        return (mark, hash.finish(length: mark &+ 1 &- start))
    }

    /// True for the whitespace a human client may send between requests: space, tab, CR, LF.
    @inline(__always)
    static func isSkippableWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A
    }
}

/// The table's key hash: each of the key's 8-byte words (the last one zero-padded) is
/// folded in with a rotate and a multiply, then the length and a final avalanche, so
/// the low bits that pick a slot depend on every byte. Word-wise, so the framer computes
/// it while it looks for the `?`; only the table's own keys share its slots, so a client
/// cannot lengthen the probes whatever it sends.
struct KeyHash {
    private var state: UInt64 = 0x9E37_79B9_7F4A_7C15

    @inline(__always)
    mutating func mix(_ word: UInt64) {
        state = ((state &<< 29 | state &>> 35) ^ word) &* 0xBF58_476D_1CE4_E5B9
    }

    /// The hash, never 0 (0 marks an empty slot of the table).
    @inline(__always)
    func finish(length: Int) -> UInt64 {
        var h = state ^ UInt64(truncatingIfNeeded: length)
        h ^= h &>> 31
        h &*= 0x94D0_49BB_1331_11EB
        h ^= h &>> 29
        return h == 0 ? 1 : h
    }

    /// The hash of `bytes`, as `ByteSearch.request` computes it for a request.
    static func of(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash = KeyHash()
        let count = bytes.count
        var i = 0
        while i + 8 <= count {
            hash.mix(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        if i < count {
            var tail: UInt64 = 0
            for (shift, byte) in bytes[i...].enumerated() { tail |= UInt64(byte) << UInt64(8 * shift) }
            hash.mix(tail)
        }
        return hash.finish(length: count)
    }
}
