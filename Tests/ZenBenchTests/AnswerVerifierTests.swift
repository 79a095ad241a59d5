import Testing
@testable import ZenBench

@Suite("zen bench: answer verification")
struct AnswerVerifierTests {
    @Test("correct answers are counted however the bytes are split")
    func splits() {
        var verifier = AnswerVerifier(.book)
        #expect(verifier.consume(Array("Ugly.Impl".utf8)) == .answered(1))
        #expect(verifier.consume(Array("icit.".utf8)) == .answered(1))
        #expect(verifier.consume(Array("Complex.Ugly.".utf8)) == .answered(2))
        for byte in "Implicit.".utf8.dropLast() { #expect(verifier.consume([byte]) == .answered(0)) }
        #expect(verifier.consume(Array(".".utf8)) == .answered(1))
    }

    @Test("a wrong answer is a mismatch at the first wrong byte")
    func wrongAnswer() {
        var verifier = AnswerVerifier(.book)
        #expect(verifier.consume(Array("Ugly.Explicit.".utf8)) == .mismatch(offset: 5, answeredBefore: 1))
    }

    @Test("one error answer for two pipelined requests (the book's srv_async bug) is a mismatch")
    func misframedPipeline() {
        var verifier = AnswerVerifier(.book)
        #expect(verifier.consume(Array("Error: unknown aphorism.".utf8)) == .mismatch(offset: 0, answeredBefore: 0))
    }

    @Test("extra bytes after the owed answers are a mismatch too")
    func trailingBytes() {
        var verifier = AnswerVerifier(.book)
        #expect(verifier.consume(Array("Ugly.\n".utf8)) == .mismatch(offset: 5, answeredBefore: 1))
    }

    @Test("request batches are contiguous slices of the question cycle")
    func requestSlices() {
        let stream = Workload.book.requestStream(maxRun: 4)
        defer { stream.deallocate() }
        let text = String(decoding: stream.slice(first: 2, count: 4), as: UTF8.self)
        #expect(text == "Simple is better than?Beautiful is better than?Explicit is better than?Simple is better than?")
        #expect(stream.slice(first: 7, count: 1).elementsEqual("Explicit is better than?".utf8))
    }

    @Test("report numbers are formatted without Foundation")
    func decimals() {
        #expect(BenchReport.decimal(1234.5678, 1) == "1234.6")
        #expect(BenchReport.decimal(0.05, 3) == "0.050")
        #expect(BenchReport.decimal(7, 0) == "7")
    }
}
