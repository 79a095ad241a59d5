import Testing
@testable import ZenProtocol

/// Runs `service.serve` on `input` with `outputCapacity` bytes of room.
private func serve(_ input: [UInt8], _ service: ZenService = ZenService(),
                   outputCapacity: Int = 65536) -> (result: ServeResult, output: String) {
    var output = [UInt8](repeating: 0, count: outputCapacity)
    let result = input.withUnsafeBytes { inputBytes in
        output.withUnsafeMutableBytes { service.serve(inputBytes, into: $0) }
    }
    return (result, String(decoding: output[0 ..< result.produced], as: UTF8.self))
}

private func serve(_ text: String, _ service: ZenService = ZenService(),
                   outputCapacity: Int = 65536) -> (result: ServeResult, output: String) {
    serve(Array(text.utf8), service, outputCapacity: outputCapacity)
}

/// Feeds `text` to the service the way a connection does: bytes accumulate in a buffer,
/// `serve` runs after each chunk, and consumed bytes leave the front.
private func converse(_ chunks: [String], _ service: ZenService = ZenService()) -> (answers: String, last: ServeResult?) {
    var buffer: [UInt8] = []
    var answers = ""
    var last: ServeResult?
    for chunk in chunks {
        buffer += Array(chunk.utf8)
        let (result, output) = serve(buffer, service)
        buffer.removeFirst(result.consumed)
        answers += output
        last = result
    }
    return (answers, last)
}

@Suite("Zen protocol (spec §1)")
struct ZenServiceTests {
    @Test("the three book answers, byte for byte, nothing added")
    func bookAnswers() {
        #expect(serve("Beautiful is better than?").output == "Ugly.")
        #expect(serve("Explicit is better than?").output == "Implicit.")
        #expect(serve("Simple is better than?").output == "Complex.")
    }

    @Test("an unknown question gets 'Error: unknown aphorism.'")
    func unknown() {
        let (result, output) = serve("Is this a question?")
        #expect(output == "Error: unknown aphorism.")
        #expect(result == ServeResult(consumed: 19, produced: 24, requests: 1, unknown: 1, stop: .needInput))
    }

    @Test("the lookup key is exactly the bytes up to and including '?'")
    func keyIsExact() {
        #expect(serve("beautiful is better than?").output == "Error: unknown aphorism.")
        #expect(serve("Beautiful is better than ?").output == "Error: unknown aphorism.")
        #expect(serve("?").output == "Error: unknown aphorism.")
    }

    @Test("whitespace inside a request is part of the key")
    func innerWhitespace() {
        #expect(serve("Beautiful  is better than?").output == "Error: unknown aphorism.")
        #expect(serve("Beautiful is\tbetter than?").output == "Error: unknown aphorism.")
    }

    @Test("space, tab, CR and LF before a request are skipped")
    func leadingWhitespace() {
        #expect(serve(" \t\r\nBeautiful is better than?").output == "Ugly.")
        #expect(serve("Beautiful is better than?\nSimple is better than?\r\n").output == "Ugly.Complex.")
    }

    @Test("other control bytes before a request are not whitespace")
    func verticalTabIsNotSkipped() {
        #expect(serve("\u{0B}Beautiful is better than?").output == "Error: unknown aphorism.")
    }

    @Test("whitespace alone is consumed and waits for a request")
    func whitespaceOnly() {
        let (result, output) = serve("  \n\t\r\n")
        #expect(output == "")
        #expect(result == ServeResult(consumed: 6, produced: 0, requests: 0, stop: .needInput))
    }

    @Test("pipelining: several requests in one read get answers in order (not one error)")
    func pipelined() {
        let (result, output) = serve("Beautiful is better than?Explicit is better than?Nope?Simple is better than?")
        #expect(output == "Ugly.Implicit.Error: unknown aphorism.Complex.")
        #expect(result.requests == 4)
        #expect(result.stop == .needInput)
    }

    @Test("a partial request is left unconsumed until its '?' arrives")
    func partial() {
        let (result, output) = serve("Beautiful is better than?Simple is")
        #expect(output == "Ugly.")
        #expect(result.consumed == 25)
        #expect(result.stop == .needInput)
    }

    @Test("a request arriving one byte at a time is answered once complete")
    func oneByteAtATime() {
        let text = "Beautiful is better than?  Explicit is better than?"
        let (answers, last) = converse(text.map { String($0) })
        #expect(answers == "Ugly.Implicit.")
        #expect(last?.stop == .needInput)
    }

    @Test("binary and NUL bytes are ordinary key bytes")
    func binary() {
        #expect(serve([0, 0xff, 0x80, 0, UInt8(ascii: "?")]).output == "Error: unknown aphorism.")
        #expect(serve([0, 1, 2, 3]).result == ServeResult(consumed: 0, produced: 0, requests: 0, stop: .needInput))
    }

    @Test("a request of exactly the maximum length, '?' included, is answered")
    func maximumLength() {
        let service = ZenService(maxRequestBytes: 10)
        #expect(serve("123456789?", service).output == "Error: unknown aphorism.")
    }

    @Test("a request longer than the maximum gets 'Error: request too long.'")
    func tooLongWithMark() {
        let service = ZenService(maxRequestBytes: 10)
        let (result, output) = serve("1234567890?", service)
        #expect(output == "Error: request too long.")
        #expect(result.stop == .requestTooLong)
        #expect(result.consumed == 11)
    }

    @Test("a pending request that reaches the maximum without '?' is too long at once")
    func tooLongWithoutMark() {
        let service = ZenService(maxRequestBytes: 10)
        #expect(serve("123456789", service).result.stop == .needInput)
        let (result, output) = serve("1234567890", service)
        #expect(result.stop == .requestTooLong)
        #expect(output == "Error: request too long.")
    }

    @Test("leading whitespace does not count towards the maximum")
    func whitespaceNotCounted() {
        let service = ZenService(maxRequestBytes: 10)
        #expect(serve("          123456789?", service).output == "Error: unknown aphorism.")
    }

    @Test("answers owed before a too-long request come first")
    func answersBeforeTooLong() {
        let service = ZenService(maxRequestBytes: 30)
        let (result, output) = serve("Beautiful is better than?" + String(repeating: "x", count: 40), service)
        #expect(output == "Ugly.Error: request too long.")
        #expect(result.requests == 1)
        #expect(result.stop == .requestTooLong)
    }

    @Test("when the output cannot take the next answer, serving stops at a request boundary")
    func outputFull() {
        let input = "Beautiful is better than?Explicit is better than?"
        let (first, output) = serve(input, outputCapacity: 10)
        #expect(output == "Ugly.")
        #expect(first == ServeResult(consumed: 25, produced: 5, requests: 1, stop: .outputFull))
        // An unknown question that does not fit is not counted until it is answered.
        let (unanswered, _) = serve("What?", outputCapacity: 10)
        #expect(unanswered == ServeResult(consumed: 0, produced: 0, requests: 0, unknown: 0, stop: .outputFull))
        let (second, rest) = serve(String(input.dropFirst(first.consumed)), outputCapacity: 10)
        #expect(rest == "Implicit.")
        #expect(second.stop == .needInput)
    }

    @Test("an answer that exactly fills the room left in the output is written, not held back")
    func outputExactFit() {
        let (alone, output) = serve("Explicit is better than?", outputCapacity: 9)
        #expect(output == "Implicit.")
        #expect(alone == ServeResult(consumed: 24, produced: 9, requests: 1, stop: .needInput))
        let (behind, both) = serve("Beautiful is better than?Explicit is better than?", outputCapacity: 14)
        #expect(both == "Ugly.Implicit.")
        #expect(behind.stop == .needInput)
    }

    @Test("10,000 pipelined requests are answered in order")
    func manyPipelined() {
        let questions = ["Beautiful is better than?", "Explicit is better than?", "Simple is better than?", "What?"]
        let answers = ["Ugly.", "Implicit.", "Complex.", "Error: unknown aphorism."]
        let input = (0 ..< 10_000).map { questions[$0 % 4] }.joined()
        let expected = (0 ..< 10_000).map { answers[$0 % 4] }.joined()
        let (result, output) = serve(input, outputCapacity: 1 << 20)
        #expect(result.requests == 10_000)
        #expect(result.unknown == 2_500, "one in four is unknown")
        #expect(output == expected)
    }
}
