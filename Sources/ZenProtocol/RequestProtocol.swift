/// A request/answer protocol the reactor can serve: pure framing and answering, no I/O.
///
/// The reactor hands over everything received and not yet consumed, plus the free
/// space of the connection's send buffer; the protocol answers as many complete
/// requests as fit and says why it stopped. Keeping the state in the reactor's
/// buffers (not in the protocol) lets one protocol value serve every connection.
public protocol RequestProtocol: Sendable {
    /// The longest single answer `serve` can write; send buffers always have room for one.
    var maxAnswerBytes: Int { get }
    /// The longest request the protocol accepts; receive buffers hold at least this much.
    var maxRequestBytes: Int { get }
    /// Answers the complete requests at the front of `input`, writing answers into `output`.
    func serve(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> ServeResult
}

/// What one `serve` call did and why it stopped.
public struct ServeResult: Equatable, Sendable {
    /// Why `serve` returned.
    public enum Stop: Equatable, Sendable {
        /// No complete request is left in the input; bytes after `consumed` are a partial request.
        case needInput
        /// The next answer does not fit in the output; call again once it has drained.
        case outputFull
        /// The pending request exceeds the maximum; an error answer was written and the
        /// connection should be flushed and closed.
        case requestTooLong
    }

    /// Input bytes fully handled (answered requests and skipped whitespace).
    public var consumed: Int
    /// Output bytes written.
    public var produced: Int
    /// Requests answered (the too-long error is not counted).
    public var requests: Int { Int(truncatingIfNeeded: counts & 0xFFFF_FFFF) }
    /// Of those, requests the protocol does not know (answered with its error).
    public var unknown: Int { Int(truncatingIfNeeded: counts >> 32) }
    /// Both counts in one word (one call never answers 2^32 requests: buffers are smaller),
    /// so the result stays four values, which Swift returns in registers; a fifth field
    /// made every call return through memory (15 more instructions per request at depth 1).
    private var counts: UInt64
    public var stop: Stop

    @inline(__always)
    public init(consumed: Int, produced: Int, requests: Int, unknown: Int = 0, stop: Stop) {
        self.consumed = consumed
        self.produced = produced
        counts = UInt64(truncatingIfNeeded: requests) & 0xFFFF_FFFF | UInt64(truncatingIfNeeded: unknown) << 32
        self.stop = stop
    }
}
