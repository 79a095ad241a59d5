/// Fixed-size byte buffers handed out on demand and taken back, so idle connections hold none.
///
/// A connection takes a buffer when bytes arrive or answers are produced and gives it
/// back as soon as it is empty again. Up to `keep` returned buffers are cached for
/// reuse; beyond that they go back to the allocator so a burst does not pin memory.
struct BufferPool: ~Copyable {
    /// Bytes in every buffer of this pool.
    let bufferSize: Int
    private let keep: Int
    private var free: [UnsafeMutableRawPointer] = []
    /// Buffers currently handed out.
    private(set) var inUse = 0

    init(bufferSize: Int, keep: Int) {
        self.bufferSize = bufferSize
        self.keep = keep
        free.reserveCapacity(keep)
    }

    deinit {
        for buffer in free { buffer.deallocate() }
    }

    /// A buffer of `bufferSize` bytes (contents undefined).
    @inline(__always)
    mutating func take() -> UnsafeMutableRawPointer {
        inUse += 1
        if let buffer = free.popLast() { return buffer }
        return .allocate(byteCount: bufferSize, alignment: 16)
    }

    /// Returns a buffer obtained from `take()`.
    @inline(__always)
    mutating func give(_ buffer: UnsafeMutableRawPointer) {
        inUse -= 1
        if free.count < keep {
            free.append(buffer)
        } else {
            buffer.deallocate()
        }
    }

    /// Buffers cached for reuse.
    var cached: Int { free.count }
}
