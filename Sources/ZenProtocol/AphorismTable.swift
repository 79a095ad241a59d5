/// The question → answer table, immutable and laid out for lookups that allocate nothing.
///
/// Keys and answers live in one arena; an open-addressing index of offsets finds a
/// key from the raw bytes of a request, so the hot path never builds an `Array` or
/// a `String`. A reload builds a new table and swaps the reference.
public final class AphorismTable: @unchecked Sendable {
    // @unchecked: every stored property is written only in `init` and read-only after.

    /// The answer for a question the table does not hold.
    public static let unknownAnswer = "Error: unknown aphorism."
    /// The answer sent before closing a connection whose request is too long.
    public static let requestTooLongAnswer = "Error: request too long."
    /// The longest answer an entry may have; send buffers are sized from it.
    public static let answerLimit = 4096

    /// The book's three aphorisms, used when no file is given.
    public static let defaultEntries: [(question: String, answer: String)] = [
        ("Beautiful is better than?", "Ugly."),
        ("Explicit is better than?", "Implicit."),
        ("Simple is better than?", "Complex."),
    ]

    /// The table zend serves when no aphorism file is configured.
    public static let `default` = AphorismTable(defaultEntries)

    private struct Slot {
        var hash: UInt64 = 0          // 0 marks an empty slot
        var keyOffset: Int32 = 0
        var keyLength: Int32 = 0
        var answerOffset: Int32 = 0
        var answerLength: Int32 = 0
    }

    private let arena: UnsafeMutableRawBufferPointer
    private let slots: UnsafeMutableBufferPointer<Slot>
    private let mask: Int

    /// The entries in the order given, for listing and diagnostics.
    public let entries: [(question: String, answer: String)]
    /// Bytes of the unknown-question answer, inside the arena.
    public let unknown: UnsafeRawBufferPointer
    /// Bytes of the request-too-long answer, inside the arena.
    public let tooLong: UnsafeRawBufferPointer
    /// The longest answer this table can produce, error answers included.
    public let maxAnswerBytes: Int
    /// The longest question in the table.
    public let maxQuestionBytes: Int

    /// Number of questions in the table.
    public var count: Int { entries.count }

    /// Builds a table; later duplicates of a question are ignored (the parser rejects them first).
    public init(_ entries: [(question: String, answer: String)]) {
        let texts = [Self.unknownAnswer, Self.requestTooLongAnswer] + entries.flatMap { [$0.question, $0.answer] }
        let arena = UnsafeMutableRawBufferPointer.allocate(
            byteCount: max(texts.reduce(0) { $0 + $1.utf8.count }, 1), alignment: 8)
        var ranges: [Range<Int>] = []
        var cursor = 0
        for text in texts {
            let start = cursor
            for byte in text.utf8 {
                arena[cursor] = byte
                cursor += 1
            }
            ranges.append(start ..< cursor)
        }

        var capacity = 8
        while capacity < entries.count * 2 { capacity *= 2 }
        let slots = UnsafeMutableBufferPointer<Slot>.allocate(capacity: capacity)
        slots.initialize(repeating: Slot())
        let mask = capacity - 1
        let base = UnsafeRawBufferPointer(arena)

        var longestAnswer = max(ranges[0].count, ranges[1].count)
        var longestQuestion = 0
        for index in entries.indices {
            let key = ranges[2 + 2 * index], answer = ranges[3 + 2 * index]
            let keyBytes = UnsafeRawBufferPointer(rebasing: base[key])
            let hash = KeyHash.of(keyBytes)
            var i = Int(truncatingIfNeeded: hash) & mask
            var duplicate = false
            while slots[i].hash != 0 {
                let other = slots[i]
                if other.hash == hash,
                   Self.equal(keyBytes, UnsafeRawBufferPointer(rebasing: base[Int(other.keyOffset) ..< Int(other.keyOffset + other.keyLength)])) {
                    duplicate = true
                    break
                }
                i = (i + 1) & mask
            }
            if duplicate { continue }
            slots[i] = Slot(hash: hash, keyOffset: Int32(key.lowerBound), keyLength: Int32(key.count),
                            answerOffset: Int32(answer.lowerBound), answerLength: Int32(answer.count))
            longestAnswer = max(longestAnswer, answer.count)
            longestQuestion = max(longestQuestion, key.count)
        }

        self.entries = entries
        self.arena = arena
        self.slots = slots
        self.mask = mask
        self.unknown = UnsafeRawBufferPointer(rebasing: base[ranges[0]])
        self.tooLong = UnsafeRawBufferPointer(rebasing: base[ranges[1]])
        self.maxAnswerBytes = longestAnswer
        self.maxQuestionBytes = longestQuestion
    }

    deinit {
        arena.deallocate()
        slots.deallocate()
    }

    /// The answer for `question` (its exact bytes, `?` included), or nil if unknown.
    @inline(__always)
    public func answer(for question: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        answer(for: question, hash: KeyHash.of(question))
    }

    /// The answer for `question` whose `KeyHash` the framer already computed.
    @inline(__always)
    func answer(for question: UnsafeRawBufferPointer, hash: UInt64) -> UnsafeRawBufferPointer? {
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = slots[i]
            if slot.hash == 0 { return nil }
            if slot.hash == hash, Self.equal(question, bytes(slot.keyOffset, slot.keyLength)) {
                return bytes(slot.answerOffset, slot.answerLength)
            }
            i = (i + 1) & mask
        }
    }

    /// The answer for `question` as a string: a convenience for tests and tools.
    public func answer(for question: String) -> String {
        var copy = question
        return copy.withUTF8 { utf8 in
            let bytes = answer(for: UnsafeRawBufferPointer(utf8)) ?? unknown
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    @inline(__always)
    private func bytes(_ offset: Int32, _ length: Int32) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: arena.baseAddress! + Int(offset), count: Int(length))
    }

    /// Byte equality, eight bytes at a time, the last eight overlapping.
    @inline(__always)
    private static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        let count = a.count
        guard count == b.count else { return false }
        guard count >= 8 else { return a.elementsEqual(b) }
        var i = 0
        while i &+ 8 < count {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i &+= 8
        }
        return a.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
            == b.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
    }
}
