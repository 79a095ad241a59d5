import Testing
@testable import ZenProtocol

@Suite("Aphorism table")
struct AphorismTableTests {
    @Test("the default table holds exactly the book's three entries")
    func defaultTable() {
        let table = AphorismTable.default
        #expect(table.count == 3)
        #expect(table.answer(for: "Beautiful is better than?") == "Ugly.")
        #expect(table.answer(for: "Explicit is better than?") == "Implicit.")
        #expect(table.answer(for: "Simple is better than?") == "Complex.")
        #expect(table.answer(for: "Complex is better than?") == "Error: unknown aphorism.")
    }

    @Test("a large table finds every key and nothing else")
    func largeTable() {
        let entries = (0 ..< 5000).map { (question: "Question number \($0)?", answer: "Answer \($0).") }
        let table = AphorismTable(entries)
        for index in stride(from: 0, to: 5000, by: 7) {
            #expect(table.answer(for: "Question number \(index)?") == "Answer \(index).")
        }
        #expect(table.answer(for: "Question number 5000?") == AphorismTable.unknownAnswer)
        #expect(table.answer(for: "") == AphorismTable.unknownAnswer)
    }

    @Test("a question given twice keeps its first answer (the file parser refuses the second first)")
    func firstOfDuplicatesWins() {
        let table = AphorismTable([("Same?", "First."), ("Other?", "Other."), ("Same?", "Second.")])
        #expect(table.answer(for: "Same?") == "First.")
        #expect(table.answer(for: "Other?") == "Other.")
    }

    @Test("the longest answer includes the error answers")
    func maxAnswer() {
        #expect(AphorismTable.default.maxAnswerBytes == "Error: unknown aphorism.".utf8.count)
        let long = String(repeating: "a", count: 300)
        #expect(AphorismTable([("q?", long)]).maxAnswerBytes == 300)
    }
}

@Suite("Byte search")
struct ByteSearchTests {
    @Test("the framer's one-pass search and hash agree with a plain search and the table's hash, at every offset")
    func requestScanAgrees() {
        var generator = SystemRandomNumberGenerator()
        for length in 0 ..< 70 {
            for _ in 0 ..< 20 {
                var bytes = (0 ..< length).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
                    .map { $0 == 0x3f ? 0 : $0 }
                if length > 0, Bool.random(using: &generator) { bytes[Int.random(in: 0 ..< length)] = 0x3f }
                bytes.withUnsafeBytes { raw in
                    for start in 0 ... length {
                        let found = ByteSearch.request(in: raw, from: start)
                        let mark = bytes[start...].firstIndex(of: 0x3f)
                        #expect(found?.mark == mark)
                        if let mark, let found {
                            #expect(found.hash == KeyHash.of(UnsafeRawBufferPointer(rebasing: raw[start ... mark])))
                        }
                    }
                }
            }
        }
    }

    @Test("bytes that differ from '?' only in the high bit are not matches")
    func highBitNeighbours() {
        let bytes: [UInt8] = [0xbf, 0xbf, 0xbf, 0x3e, 0x3f | 0x80, 0x1f, 0x7f, 0xff, 0x3f]
        let found = bytes.withUnsafeBytes { ByteSearch.request(in: $0, from: 0)?.mark }
        #expect(found == 8)
    }
}
