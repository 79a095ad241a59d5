/// CRC-32C (Castagnoli; RFC 4960 appendix B), the checksum a PROXY v2 header may carry.
/// Bit by bit: the checksum TLV is rare and covers at most 64 KiB once per connection,
/// so a lookup table would cost more memory than the time it saves.
struct CRC32C {
    private var state: UInt32 = 0xFFFF_FFFF

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes { update(byte) }
    }

    mutating func update(zeros count: Int) {
        for _ in 0 ..< count { update(0) }
    }

    private mutating func update(_ byte: UInt8) {
        state ^= UInt32(byte)
        for _ in 0 ..< 8 {
            state = state & 1 == 1 ? (state >> 1) ^ 0x82F6_3B78 : state >> 1
        }
    }

    var value: UInt32 { ~state }
}
