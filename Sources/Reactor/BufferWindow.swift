/// The bytes waiting in one direction of a connection: the window `start ..< end` of a
/// pooled buffer, or no buffer at all while nothing waits, so idle connections hold none.
///
/// The shape of nginx's `ngx_buf_t`: `reserve` takes a buffer from the pool (or makes room
/// in the one held) and returns the free space after the window, `commit` grows the window
/// by what was written there, `consume` shrinks it from the front, and `releaseIfEmpty`
/// gives the buffer back the moment the window is empty.
struct BufferWindow {
    private(set) var buffer: UnsafeMutableRawPointer? = nil
    private var start: Int32 = 0
    private var end: Int32 = 0

    /// Bytes waiting.
    @inline(__always)
    var count: Int { Int(end &- start) }

    /// The waiting bytes (empty when no buffer is held).
    @inline(__always)
    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: buffer.map { UnsafeRawPointer($0) + Int(start) }, count: count)
    }

    /// The free space after the waiting bytes, taking a buffer from `pool` if none is held
    /// (nil if the pool's budget refuses one). When less than `minimumSpace` is free, the
    /// waiting bytes first move to the front.
    @inline(__always)
    mutating func reserve(from pool: inout BufferPool, minimumSpace: Int) -> UnsafeMutableRawBufferPointer? {
        guard let held = buffer else {
            guard let fresh = pool.take() else { return nil }
            buffer = fresh
            return UnsafeMutableRawBufferPointer(start: fresh, count: pool.bufferSize)
        }
        if start > 0, pool.bufferSize - Int(end) < minimumSpace {
            // copyMemory is a memmove: the regions may overlap.
            held.copyMemory(from: held + Int(start), byteCount: count)
            end &-= start
            start = 0
        }
        return UnsafeMutableRawBufferPointer(start: held + Int(end), count: pool.bufferSize - Int(end))
    }

    /// Adds `count` bytes just written into the space `reserve` returned.
    @inline(__always)
    mutating func commit(_ count: Int) {
        end &+= Int32(truncatingIfNeeded: count)
    }

    /// Drops `count` bytes from the front (they were sent, or answered).
    @inline(__always)
    mutating func consume(_ count: Int) {
        start &+= Int32(truncatingIfNeeded: count)
    }

    /// Gives the buffer back to `pool` if nothing waits in it.
    @inline(__always)
    mutating func releaseIfEmpty(to pool: inout BufferPool) {
        if start == end, buffer != nil { release(to: &pool) }
    }

    /// Gives the buffer back to `pool`, discarding whatever waits in it.
    mutating func release(to pool: inout BufferPool) {
        if let held = buffer { pool.give(held) }
        self = BufferWindow()
    }
}
