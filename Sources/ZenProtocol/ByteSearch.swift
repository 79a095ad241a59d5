/// Byte searches used by the framer, kept free of libc so the protocol stays pure.
enum ByteSearch {
    /// Index of the first `byte` in `buffer[from...]`, or nil.
    ///
    /// Eight bytes per step (SWAR): a pipelined read of 16 KiB is scanned in about
    /// 2,000 steps instead of 16,000, which matters because framing runs on every read.
    @inline(__always)
    static func firstIndex(of byte: UInt8, in buffer: UnsafeRawBufferPointer, from start: Int) -> Int? {
        let count = buffer.count
        var i = start
        guard let base = buffer.baseAddress else { return nil }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let pattern = ones &* UInt64(byte)
        while i + 8 <= count {
            let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ pattern
            // A zero byte in `word` marks a match; this expression has its high bit set
            // at the first such byte (little endian: lowest address = lowest bits).
            let found = (word &- ones) & ~word & highs
            if found != 0 {
                return i + found.trailingZeroBitCount / 8
            }
            i += 8
        }
        while i < count {
            if base.load(fromByteOffset: i, as: UInt8.self) == byte { return i }
            i += 1
        }
        return nil
    }

    /// True for the whitespace a human client may send between requests: space, tab, CR, LF.
    @inline(__always)
    static func isSkippableWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A
    }
}
