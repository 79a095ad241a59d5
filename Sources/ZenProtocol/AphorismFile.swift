/// The aphorism file format: UTF-8 text, one `question? answer` per line.
///
/// A line splits at its first `?`, which stays part of the question (the request a
/// client sends). Blank lines and lines starting with `#` are ignored. Whitespace
/// around the line and after the `?` is trimmed; whitespace inside is kept, since
/// inside a request it is part of the key.
public enum AphorismFile {
    /// Parses the contents of the file called `name` (used in error messages).
    ///
    /// Takes a concrete `[UInt8]`: a generic collection is not specialized across the
    /// module boundary, and its unspecialized `split` allocated once per byte.
    public static func parse(_ contents: [UInt8], name: String) throws(AphorismFileError) -> AphorismTable {
        var entries: [(question: String, answer: String)] = []
        var firstLine: [String: Int] = [:]
        var lineNumber = 0
        var lineStart = contents.startIndex
        while lineStart <= contents.endIndex {
            let lineEnd = contents[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? contents.endIndex
            let rawLine = contents[lineStart ..< lineEnd]
            lineStart = lineEnd + 1
            lineNumber += 1
            func failure(_ reason: String) -> AphorismFileError {
                AphorismFileError(file: name, line: lineNumber, reason: reason)
            }
            guard let line = String(validating: rawLine, as: UTF8.self) else {
                throw failure("not valid UTF-8")
            }
            let trimmed = line.trimmingASCIIWhitespace()
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let mark = trimmed.firstIndex(of: "?") else {
                throw failure("expected 'question? answer', found no '?'")
            }
            let question = String(trimmed[...mark])
            let answer = String(trimmed[trimmed.index(after: mark)...]).trimmingASCIIWhitespace()
            if question == "?" {
                throw failure("the question before '?' is empty")
            }
            if answer.isEmpty {
                throw failure("no answer after '?'")
            }
            if answer.utf8.count > AphorismTable.answerLimit {
                throw failure("answer is \(answer.utf8.count) bytes; the limit is \(AphorismTable.answerLimit)")
            }
            if let first = firstLine[question] {
                throw failure("duplicate question (first on line \(first))")
            }
            firstLine[question] = lineNumber
            entries.append((question, answer))
        }
        if entries.isEmpty {
            throw AphorismFileError(file: name, line: max(lineNumber, 1), reason: "no aphorisms in the file")
        }
        return AphorismTable(entries)
    }

    /// The text of a file holding `entries`, with a header explaining the format.
    public static func render(_ entries: [(question: String, answer: String)]) -> String {
        var text = """
        # zend aphorism table: one entry per line, "question? answer".
        # The line splits at the first '?', which belongs to the question: a client
        # sends the question up to and including '?' and gets the answer back byte
        # for byte (nothing added). Whitespace inside a question is part of it.
        # Blank lines and lines starting with '#' are ignored.
        # Apply changes with: systemctl reload zend

        """
        for entry in entries {
            text += "\(entry.question) \(entry.answer)\n"
        }
        return text
    }
}

/// A bad aphorism file, pointing at the offending line.
public struct AphorismFileError: Error, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var reason: String

    public init(file: String, line: Int, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String { "\(file):\(line): \(reason)" }
}

extension StringProtocol {
    /// The string without leading and trailing space, tab, CR and LF.
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }
        guard let first = firstIndex(where: { !isSpace($0) }),
              let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first ... last])
    }
}
