/// The aphorism file format: UTF-8 text, one `question? answer` per line, read as bytes.
///
/// The file is parsed byte by byte, the way the protocol frames requests; there is no
/// Unicode normalisation and no grapheme clustering, so two questions that differ in
/// their bytes are two questions, and a `?` or `#` followed by a combining mark is
/// still a `?` or a `#`. The rules:
///
/// - A leading UTF-8 byte order mark (EF BB BF) is skipped.
/// - A line ends at LF, at CRLF (one line end, not two), or at a CR not followed by LF.
///   The last line needs no line end. Line numbers in errors count these line ends.
/// - Every line must be valid UTF-8.
/// - ASCII whitespace (space, tab) around a line is trimmed. A line that is then empty,
///   or whose first byte is `#`, is ignored.
/// - Any other line splits at its first `?` byte, which stays part of the question (the
///   request a client sends). The answer is what follows, with ASCII whitespace trimmed
///   from both ends. Whitespace inside the question is kept: inside a request it is part
///   of the key. Further `?` bytes belong to the answer.
/// - The question before `?` and the answer must not be empty; the answer is at most
///   `AphorismTable.answerLimit` bytes; a question (compared byte for byte) appears once.
public enum AphorismFile {
    /// Parses the contents of the file called `name` (used in error messages).
    ///
    /// Takes a concrete `[UInt8]`: a generic collection is not specialized across the
    /// module boundary, and its unspecialized `split` allocated once per byte.
    public static func parse(_ contents: [UInt8], name: String) throws(AphorismFileError) -> AphorismTable {
        var entries: [(question: String, answer: String)] = []
        var firstLine: [[UInt8]: Int] = [:]
        var lineNumber = 0
        let end = contents.endIndex
        var lineStart = contents.starts(with: byteOrderMark) ? byteOrderMark.count : contents.startIndex
        var more = true
        while more {
            // The line runs to the next CR or LF; CRLF counts as one line end. After a
            // final line end comes one more, empty line (as before: "A? b\n" has two).
            var lineEnd = lineStart
            while lineEnd < end, contents[lineEnd] != lf, contents[lineEnd] != cr { lineEnd += 1 }
            let rawLine = contents[lineStart ..< lineEnd]
            if lineEnd == end {
                more = false
            } else if contents[lineEnd] == cr, lineEnd + 1 < end, contents[lineEnd + 1] == lf {
                lineStart = lineEnd + 2
            } else {
                lineStart = lineEnd + 1
            }
            lineNumber += 1
            func failure(_ reason: String) -> AphorismFileError {
                AphorismFileError(file: name, line: lineNumber, reason: reason)
            }
            guard isValidUTF8(rawLine) else {
                throw failure("not valid UTF-8")
            }
            let trimmed = trimmingASCIIWhitespace(rawLine)
            if trimmed.isEmpty || trimmed.first == hash { continue }
            guard let mark = trimmed.firstIndex(of: questionMark) else {
                throw failure("expected 'question? answer', found no '?'")
            }
            if mark == trimmed.startIndex {
                throw failure("the question before '?' is empty")
            }
            let question = trimmed[...mark]
            let answer = trimmingASCIIWhitespace(trimmed[(mark + 1)...])
            if answer.isEmpty {
                throw failure("no answer after '?'")
            }
            if answer.count > AphorismTable.answerLimit {
                throw failure("answer is \(answer.count) bytes; the limit is \(AphorismTable.answerLimit)")
            }
            let key = Array(question)
            if let first = firstLine[key] {
                throw failure("duplicate question (first on line \(first))")
            }
            firstLine[key] = lineNumber
            // Valid UTF-8 split at ASCII bytes is valid UTF-8, and a String keeps the UTF-8
            // bytes it is made from exactly: the table gets these very bytes.
            entries.append((String(decoding: question, as: UTF8.self), String(decoding: answer, as: UTF8.self)))
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
        # UTF-8, compared byte for byte (no Unicode normalisation). Lines end at LF,
        # CRLF or a lone CR; a leading byte order mark is skipped.
        # Apply changes with: systemctl reload zend

        """
        for entry in entries {
            text += "\(entry.question) \(entry.answer)\n"
        }
        return text
    }

    /// `text` for a log line: whole when it is at most `maxBytes` bytes of UTF-8, else
    /// its first `maxBytes` bytes (cut back to a character boundary) and its length,
    /// as in `Why is this so long… (100000 bytes)`.
    public static func abbreviated(_ text: String, maxBytes: Int = 60) -> String {
        let utf8 = Array(text.utf8)
        guard utf8.count > maxBytes else { return text }
        var cut = max(maxBytes, 0)
        // Never split a multi-byte sequence: back off over continuation bytes (10xxxxxx).
        while cut > 0, utf8[cut] & 0xC0 == 0x80 { cut -= 1 }
        return String(decoding: utf8[..<cut], as: UTF8.self) + "… (\(utf8.count) bytes)"
    }

    static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]
    static let lf = UInt8(ascii: "\n")
    static let cr = UInt8(ascii: "\r")
    static let hash = UInt8(ascii: "#")
    static let questionMark = UInt8(ascii: "?")

    /// `bytes` without leading and trailing space, tab, CR and LF.
    static func trimmingASCIIWhitespace(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var start = bytes.startIndex, end = bytes.endIndex
        while start < end, ByteSearch.isSkippableWhitespace(bytes[start]) { start += 1 }
        while end > start, ByteSearch.isSkippableWhitespace(bytes[end - 1]) { end -= 1 }
        return bytes[start ..< end]
    }

    /// True when `bytes` are well-formed UTF-8 (no overlong forms, surrogates or values
    /// past U+10FFFF), as `String(validating:)` decides.
    static func isValidUTF8(_ bytes: ArraySlice<UInt8>) -> Bool {
        // ASCII-only lines, nearly all of them, need no decoder.
        if bytes.allSatisfy({ $0 < 0x80 }) { return true }
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
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
