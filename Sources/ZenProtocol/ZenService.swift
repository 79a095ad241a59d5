/// The Zen question/answer protocol of the book's chapter 7, byte-exact.
///
/// A request is every byte since the previous request up to and including the next
/// `?`; its answer is the table's value with nothing added. Whitespace before a
/// request is skipped so `nc` sessions work; a request longer than the limit gets
/// `Error: request too long.` and the connection is closed.
public struct ZenService: RequestProtocol {
    /// The default longest request, `?` included.
    public static let defaultMaxRequestBytes = 4096

    /// The table answers come from.
    public let table: AphorismTable
    /// The longest request accepted, `?` included.
    public let maxRequestBytes: Int

    public var maxAnswerBytes: Int { table.maxAnswerBytes }

    public init(table: AphorismTable = .default, maxRequestBytes: Int = ZenService.defaultMaxRequestBytes) {
        precondition(maxRequestBytes >= 1, "a request holds at least its '?'")
        self.table = table
        self.maxRequestBytes = maxRequestBytes
    }

    public func serve(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> ServeResult {
        // Offsets stay within the buffers, whose sizes fit in an Int: wrapping arithmetic
        // leaves out overflow checks that cannot fire.
        let count = input.count
        var position = 0
        var produced = 0
        var requests = 0
        var unknown = 0
        while true {
            while position < count, ByteSearch.isSkippableWhitespace(input[position]) {
                position &+= 1
            }
            guard let (mark, hash) = ByteSearch.request(in: input, from: position) else {
                // A partial request of `maxRequestBytes` bytes can only end longer than allowed.
                if count &- position >= maxRequestBytes {
                    return tooLong(at: position, of: count, produced: produced, requests: requests, unknown: unknown,
                                   output: output)
                }
                return ServeResult(consumed: position, produced: produced, requests: requests, unknown: unknown,
                                   stop: .needInput)
            }
            let end = mark &+ 1
            if end &- position > maxRequestBytes {
                return tooLong(at: position, of: count, produced: produced, requests: requests, unknown: unknown,
                               output: output)
            }
            let question = UnsafeRawBufferPointer(start: input.baseAddress! + position, count: end &- position)
            // An unknown question is counted on the miss path only: a known one pays nothing.
            let answer: UnsafeRawBufferPointer
            var miss = 0
            if let found = table.answer(for: question, hash: hash) {
                answer = found
            } else {
                answer = table.unknown
                miss = 1
            }
            guard answer.count <= output.count &- produced else {
                return ServeResult(consumed: position, produced: produced, requests: requests, unknown: unknown,
                                   stop: .outputFull)
            }
            unknown &+= miss
            Self.copy(answer, to: output.baseAddress! + produced)
            produced &+= answer.count
            position = end
            requests &+= 1
        }
    }

    /// Copies an answer; most are 8 to 16 bytes, two overlapping word moves with no call.
    @inline(__always)
    private static func copy(_ answer: UnsafeRawBufferPointer, to destination: UnsafeMutableRawPointer) {
        let count = answer.count
        if count >= 8 && count <= 16 {
            let source = answer.baseAddress!
            let first = source.loadUnaligned(as: UInt64.self)
            let last = source.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
            destination.storeBytes(of: first, as: UInt64.self)
            destination.storeBytes(of: last, toByteOffset: count - 8, as: UInt64.self)
        } else if count > 0 {
            destination.copyMemory(from: answer.baseAddress!, byteCount: count)
        }
    }

    /// Writes the too-long error for the request starting at `position`, unless answers
    /// owed before it still fill the output: those go out first and the caller comes back.
    private func tooLong(at position: Int, of count: Int, produced: Int, requests: Int, unknown: Int,
                         output: UnsafeMutableRawBufferPointer) -> ServeResult {
        let message = table.tooLong
        guard message.count <= output.count - produced else {
            return ServeResult(consumed: position, produced: produced, requests: requests, unknown: unknown,
                               stop: .outputFull)
        }
        UnsafeMutableRawBufferPointer(rebasing: output[produced ..< produced + message.count]).copyMemory(from: message)
        return ServeResult(consumed: count, produced: produced + message.count, requests: requests, unknown: unknown,
                           stop: .requestTooLong)
    }
}
