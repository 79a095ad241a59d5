import Synchronization

/// The memory all reactors' connection buffers may hold together (`--max-buffer-memory`):
/// a connection that would need more is closed, so no set of clients can make zend's
/// buffers grow without bound, whatever `--max-request-bytes` allows each one.
final class BufferBudget: Sendable {
    let limit: Int
    private let used = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Bytes of buffers handed out now, across all reactors.
    var inUse: Int { used.load(ordering: .relaxed) }

    /// Takes `bytes` from the budget; false (and nothing taken) if that would pass the limit.
    func claim(_ bytes: Int) -> Bool {
        let after = used.wrappingAdd(bytes, ordering: .relaxed).newValue
        guard after > limit else { return true }
        used.wrappingSubtract(bytes, ordering: .relaxed)
        return false
    }

    /// Gives `bytes` back.
    func release(_ bytes: Int) {
        used.wrappingSubtract(bytes, ordering: .relaxed)
    }
}

/// Fixed-size byte buffers handed out on demand and taken back, so idle connections hold none.
///
/// A connection takes a buffer when bytes arrive or answers are produced and gives it
/// back as soon as it is empty again. Up to `keep` returned buffers are cached for
/// reuse, chained through their own first bytes (a take or a give is a few instructions,
/// with no array to grow); beyond that they go back to the allocator so a burst does
/// not pin memory.
struct BufferPool: ~Copyable {
    /// Bytes in every buffer of this pool.
    let bufferSize: Int
    private let keep: Int
    /// What buffers handed out count against.
    private let budget: BufferBudget
    /// The first cached buffer; each holds a pointer to the next in its first 8 bytes.
    private var firstFree: UnsafeMutableRawPointer?
    /// Buffers cached for reuse.
    private(set) var cached = 0
    /// Buffers currently handed out.
    private(set) var inUse = 0
    /// Buffers given back to the allocator since `takeReleased()` (their memory may still
    /// be resident until the allocator is trimmed).
    private(set) var released = 0

    init(bufferSize: Int, keep: Int, budget: BufferBudget = BufferBudget(limit: .max)) {
        precondition(bufferSize >= MemoryLayout<UnsafeMutableRawPointer>.size)
        self.bufferSize = bufferSize
        self.keep = keep
        self.budget = budget
    }

    deinit {
        var next = firstFree
        while let buffer = next {
            next = buffer.load(as: UnsafeMutableRawPointer?.self)
            buffer.deallocate()
        }
    }

    /// Returns the count of buffers released since the last call, resetting it.
    mutating func takeReleased() -> Int {
        defer { released = 0 }
        return released
    }

    /// A buffer of `bufferSize` bytes (contents undefined); nil when the budget is spent.
    @inline(__always)
    mutating func take() -> UnsafeMutableRawPointer? {
        guard budget.claim(bufferSize) else { return nil }
        inUse += 1
        guard let buffer = firstFree else {
            return .allocate(byteCount: bufferSize, alignment: 16)
        }
        firstFree = buffer.load(as: UnsafeMutableRawPointer?.self)
        cached -= 1
        return buffer
    }

    /// Returns a buffer obtained from `take()`.
    @inline(__always)
    mutating func give(_ buffer: UnsafeMutableRawPointer) {
        inUse -= 1
        budget.release(bufferSize)
        guard cached < keep else {
            buffer.deallocate()
            released += 1
            return
        }
        buffer.storeBytes(of: firstFree, as: UnsafeMutableRawPointer?.self)
        firstFree = buffer
        cached += 1
    }
}
