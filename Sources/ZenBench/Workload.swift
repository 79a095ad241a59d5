import ZenProtocol

/// What every connection sends, and what it must get back: the book's questions in a
/// fixed cycle, so request *n* of a connection expects answer *n mod 3*.
public struct Workload: Sendable {
    /// The questions, cycled through.
    public let questions: [[UInt8]]
    /// The exact answers the questions must get.
    public let answers: [[UInt8]]

    /// The default workload: the book's three aphorisms.
    public static let book = Workload(pairs: AphorismTable.defaultEntries.map { ($0.question, $0.answer) })

    public init(pairs: [(question: String, answer: String)]) {
        precondition(!pairs.isEmpty)
        questions = pairs.map { Array($0.question.utf8) }
        answers = pairs.map { Array($0.answer.utf8) }
    }

    /// Bytes of `count` consecutive questions starting at question `first`, laid out so
    /// any run of up to `maxRun` questions is one contiguous slice (no copying per send).
    func requestStream(maxRun: Int) -> RequestStream {
        RequestStream(workload: self, maxRun: maxRun)
    }
}

/// The request bytes for every connection: questions repeated in order, with the offset
/// at which each question starts, so sending requests *n ..< n+k* is one slice.
struct RequestStream {
    let bytes: UnsafeMutableRawBufferPointer
    /// Byte offset of the start of question *i* of the repeated sequence.
    let starts: [Int]
    let cycle: Int

    init(workload: Workload, maxRun: Int) {
        cycle = workload.questions.count
        let total = maxRun + cycle
        var offsets: [Int] = []
        var length = 0
        for index in 0 ... total {
            offsets.append(length)
            if index < total { length += workload.questions[index % cycle].count }
        }
        starts = offsets
        bytes = .allocate(byteCount: length, alignment: 8)
        var position = 0
        for index in 0 ..< total {
            for byte in workload.questions[index % cycle] {
                bytes[position] = byte
                position += 1
            }
        }
    }

    func deallocate() { bytes.deallocate() }

    /// The bytes of requests `first ..< first + count` (count ≤ maxRun).
    @inline(__always)
    func slice(first: Int, count: Int) -> UnsafeRawBufferPointer {
        let start = starts[first % cycle]
        let end = starts[first % cycle + count]
        return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[start ..< end])
    }
}

/// Checks a connection's incoming bytes against the answers it is owed, byte by byte.
///
/// Pure and incremental: bytes may arrive in any split. A wrong byte is a mismatch —
/// for example a server that answers two pipelined requests with one error, as the
/// book's `srv_async.py` does.
public struct AnswerVerifier: Sendable {
    private let expected: [UInt8]
    /// Offsets in `expected` where an answer ends.
    private let ends: [Int]
    private var position = 0
    private var nextEnd = 0

    public init(_ workload: Workload) {
        expected = workload.answers.flatMap { $0 }
        var total = 0
        ends = workload.answers.map { total += $0.count; return total }
    }

    /// What a chunk of input completed.
    public enum Outcome: Equatable, Sendable {
        /// `answers` more answers arrived complete and correct.
        case answered(Int)
        /// The byte at `offset` of the chunk is not what was owed.
        case mismatch(offset: Int, answeredBefore: Int)
    }

    /// Consumes `bytes`; says how many answers they completed or where they went wrong.
    @inline(__always)
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        var completed = 0
        let count = bytes.count
        var index = 0
        let cycleLength = expected.count
        return expected.withUnsafeBufferPointer { expected in
            while index < count {
                if bytes[index] != expected[position] {
                    return .mismatch(offset: index, answeredBefore: completed)
                }
                position += 1
                index += 1
                if position == ends[nextEnd] {
                    completed += 1
                    nextEnd += 1
                    if position == cycleLength {
                        position = 0
                        nextEnd = 0
                    }
                }
            }
            return .answered(completed)
        }
    }

    /// Convenience for tests: consume a byte array.
    public mutating func consume(_ bytes: [UInt8]) -> Outcome {
        bytes.withUnsafeBytes { consume($0) }
    }
}
