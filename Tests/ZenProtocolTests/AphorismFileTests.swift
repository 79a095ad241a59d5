import TestSupport
import Testing
@testable import ZenProtocol

private func parse(_ text: String, name: String = "zen.conf") throws(AphorismFileError) -> AphorismTable {
    try AphorismFile.parse(Array(text.utf8), name: name)
}

private func failure(_ text: String) -> AphorismFileError? {
    do {
        _ = try parse(text)
        return nil
    } catch {
        return error
    }
}

@Suite("Aphorism file (spec §3)")
struct AphorismFileTests {
    @Test("one 'question? answer' per line, split at the first '?', which stays in the question")
    func basic() throws {
        let table = try parse("Beautiful is better than? Ugly.\nWhy? Because? Yes.\n")
        #expect(table.count == 2)
        #expect(table.answer(for: "Beautiful is better than?") == "Ugly.")
        #expect(table.answer(for: "Why?") == "Because? Yes.")
    }

    @Test("blank lines and '#' comments are ignored; CRLF line ends work")
    func commentsAndBlanks() throws {
        let table = try parse("# comment\n\n   \n  # indented comment\r\nSimple is better than?   Complex.\r\n")
        #expect(table.count == 1)
        #expect(table.answer(for: "Simple is better than?") == "Complex.")
    }

    @Test("whitespace inside a question is kept")
    func innerWhitespace() throws {
        let table = try parse("Two  spaces? Kept.\n")
        #expect(table.answer(for: "Two  spaces?") == "Kept.")
        #expect(table.answer(for: "Two spaces?") == AphorismTable.unknownAnswer)
    }

    @Test("a line without '?' is an error naming file and line")
    func missingMark() {
        let error = failure("# header\nGood? Yes.\nno mark here\n")
        #expect(error == AphorismFileError(file: "zen.conf", line: 3, reason: "expected 'question? answer', found no '?'"))
        #expect(error?.description.hasPrefix("zen.conf:3: ") == true)
    }

    @Test("an empty answer is an error")
    func emptyAnswer() {
        #expect(failure("Question?   \n")?.line == 1)
        #expect(failure("Question?   \n")?.reason == "no answer after '?'")
    }

    @Test("an empty question is an error")
    func emptyQuestion() {
        #expect(failure("? answer\n")?.reason == "the question before '?' is empty")
    }

    @Test("a duplicate question is an error pointing at both lines")
    func duplicate() {
        let error = failure("A? one\nB? two\nA? three\n")
        #expect(error == AphorismFileError(file: "zen.conf", line: 3, reason: "duplicate question (first on line 1)"))
    }

    @Test("invalid UTF-8 is an error on its line")
    func invalidUTF8() {
        var bytes = Array("A? one\nB? ".utf8)
        bytes += [0xff, 0xfe]
        #expect(throws: AphorismFileError(file: "f", line: 2, reason: "not valid UTF-8")) {
            _ = try AphorismFile.parse(bytes, name: "f")
        }
    }

    @Test("an answer over the limit is an error")
    func answerTooLong() {
        let error = failure("Q? " + String(repeating: "a", count: AphorismTable.answerLimit + 1))
        #expect(error?.reason.hasPrefix("answer is 4097 bytes") == true)
    }

    @Test("an answer of exactly the limit is accepted")
    func answerAtLimit() throws {
        let answer = String(repeating: "a", count: AphorismTable.answerLimit)
        let table = try parse("Q? " + answer)
        #expect(table.answer(for: "Q?") == answer)
    }

    @Test("a file with no entries is an error")
    func empty() {
        #expect(failure("# only a comment\n")?.reason == "no aphorisms in the file")
        #expect(failure("")?.line == 1)
    }

    @Test("the rendered default file parses back to the default table")
    func renderRoundTrip() throws {
        let text = AphorismFile.render(AphorismTable.defaultEntries)
        let table = try parse(text)
        #expect(table.count == 3)
        for entry in AphorismTable.defaultEntries {
            #expect(table.answer(for: entry.question) == entry.answer)
        }
    }
}

/// The UTF-8 bytes of a string, for comparisons that must not be Unicode-aware (`String`'s
/// `==` treats canonically equivalent strings as equal).
private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite("Aphorism file: parsed as bytes, like the protocol frames requests")
struct AphorismFileByteTests {
    @Test("a leading UTF-8 byte order mark is skipped, not made part of the first question")
    func byteOrderMark() throws {
        let table = try AphorismFile.parse([0xEF, 0xBB, 0xBF] + bytes("Beautiful is better than? Ugly.\n"), name: "f")
        #expect(table.count == 1)
        #expect(bytes(table.entries[0].question) == bytes("Beautiful is better than?"))
        #expect(table.answer(for: "Beautiful is better than?") == "Ugly.")
        // Only at the very start: elsewhere U+FEFF is an ordinary character of a question.
        let inner = try parse("A? one\n\u{FEFF}B? two\n")
        #expect(bytes(inner.entries[1].question) == [0xEF, 0xBB, 0xBF] + bytes("B?"))
    }

    @Test("lines end at LF, CRLF or a lone CR; CRLF is one line end; the last line needs none")
    func lineEnds() throws {
        let table = try parse("A? one\rB? two\r\nC? three\nD? four")
        #expect(table.entries.map { bytes($0.question) } == ["A?", "B?", "C?", "D?"].map(bytes))
        #expect(table.entries.map { bytes($0.answer) } == ["one", "two", "three", "four"].map(bytes))
        // Line numbers count those line ends: CRLF once, a lone CR once, CR CR twice.
        #expect(failure("A? one\r\nB? two\r\rno mark\n")?.line == 4)
        #expect(failure("A? one\r\n\r\nno mark\r\n")?.line == 3)
        #expect(failure("A? one\rno mark\r")?.line == 2)
        #expect(failure("A? one\n\rno mark")?.line == 3)
    }

    @Test("questions that differ only in Unicode normalisation are two questions, as clients send two byte strings")
    func normalisation() throws {
        let composed = "caf\u{E9}?", decomposed = "cafe\u{301}?"
        #expect(composed == decomposed)   // equal as Swift strings, different bytes
        let table = try parse("\(composed) one\n\(decomposed) two\n")
        #expect(table.count == 2)
        #expect(table.answer(for: composed) == "one")
        #expect(table.answer(for: decomposed) == "two")
        // And the same bytes twice are still a duplicate.
        #expect(failure("\(decomposed) one\n\(decomposed) two\n")?.reason == "duplicate question (first on line 1)")
    }

    @Test("a '?' followed by a combining mark ends the question (the mark starts the answer)")
    func questionMarkBeforeCombiningMark() throws {
        let table = try parse("Why?\u{301} Because.\n")
        #expect(bytes(table.entries[0].question) == bytes("Why?"))
        #expect(bytes(table.entries[0].answer) == bytes("\u{301} Because."))
    }

    @Test("a '#' followed by a combining mark starts a comment")
    func hashBeforeCombiningMark() throws {
        let table = try parse("#\u{301} a comment without a question mark\nA? one\n")
        #expect(table.count == 1)
    }

    @Test("the table holds exactly the bytes of the file: questions from the first byte to '?', answers trimmed of ASCII whitespace only")
    func exactBytes() throws {
        let table = try parse(" \t\u{A0}Q\u{2003}? \u{A0}answer\u{2003}\t \n")
        #expect(bytes(table.entries[0].question) == bytes("\u{A0}Q\u{2003}?"))
        #expect(bytes(table.entries[0].answer) == bytes("\u{A0}answer\u{2003}"))
        #expect(table.answer(for: "\u{A0}Q\u{2003}?") == "\u{A0}answer\u{2003}")
    }

    @Test("invalid UTF-8 is still an error on its line, whatever ends the lines")
    func invalidUTF8AfterCR() {
        #expect(throws: AphorismFileError(file: "f", line: 2, reason: "not valid UTF-8")) {
            _ = try AphorismFile.parse(bytes("A? one\rB? ") + [0xC3], name: "f")
        }
        // An encoded surrogate and an overlong '?' are not UTF-8 either.
        #expect(throws: AphorismFileError(file: "f", line: 1, reason: "not valid UTF-8")) {
            _ = try AphorismFile.parse(bytes("A? ") + [0xED, 0xA0, 0x80], name: "f")
        }
        #expect(throws: AphorismFileError(file: "f", line: 1, reason: "not valid UTF-8")) {
            _ = try AphorismFile.parse(bytes("A") + [0xC0, 0xBF] + bytes(" one"), name: "f")
        }
    }

    @Test("the header render writes states the byte rules, and a parsed table renders and parses back the same")
    func renderStatesTheRules() throws {
        let header = AphorismFile.render([])
        #expect(header.contains("Lines end at LF,\n# CRLF or a lone CR"))
        #expect(header.contains("byte for byte (no Unicode normalisation)"))
        let table = try parse("caf\u{E9}? one\rcafe\u{301}?two ? x\r\nWhy?\u{301} Because.\n")
        let again = try parse(AphorismFile.render(table.entries))
        #expect(again.entries.map { bytes($0.question) } == table.entries.map { bytes($0.question) })
        #expect(again.entries.map { bytes($0.answer) } == table.entries.map { bytes($0.answer) })
    }
}

@Suite("Questions shortened for log lines")
struct AbbreviatedTests {
    @Test("up to 60 bytes a question is shown whole")
    func short() {
        let question = String(repeating: "q", count: 59) + "?"
        #expect(AphorismFile.abbreviated(question) == question)
    }

    @Test("a longer one shows its first 60 bytes and its length")
    func long() {
        let question = String(repeating: "Q", count: 99_999) + "?"
        #expect(AphorismFile.abbreviated(question) == String(repeating: "Q", count: 60) + "… (100000 bytes)")
    }

    @Test("the cut never splits a multi-byte character")
    func characterBoundary() {
        let question = "a" + String(repeating: "\u{E9}", count: 40) + "?"   // é is 2 bytes: 1 + 80 + 1
        #expect(AphorismFile.abbreviated(question) == "a" + String(repeating: "\u{E9}", count: 29) + "… (82 bytes)")
    }
}

@Suite("the shipped aphorism file")
struct ShippedAphorismFileTests {
    @Test("packaging/aphorisms.conf is exactly the rendered default table")
    func shippedFile() throws {
        let bytes = Array(Paths.read(Paths.repository + "/packaging/aphorisms.conf").utf8)
        #expect(String(decoding: bytes, as: UTF8.self) == AphorismFile.render(AphorismTable.defaultEntries))
        let table = try AphorismFile.parse(bytes, name: "aphorisms.conf")
        #expect(table.count == 3)
    }
}
