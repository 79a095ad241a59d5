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
