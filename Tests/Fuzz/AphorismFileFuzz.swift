// libFuzzer target for the aphorism-file parser, AphorismFile.parse. Built by
// Tests/Fuzz/run.sh together with the sources of ZenProtocol into one module.
//
// The input is the file. Checked:
// - parsing never crashes; an error names the file and a line from 1 to the number of lines;
// - what it accepts keeps the rules: each question is valid UTF-8, ends at its only '?',
//   does not start with whitespace or '#'; each answer is non-empty, at most the limit,
//   without surrounding whitespace; no line-end bytes anywhere; questions differ as bytes;
// - the table answers every question with its answer, byte for byte;
// - render, then parse again, gives the same entries, byte for byte and in order;
// - a byte order mark put in front changes nothing, errors and line numbers included;
// - writing every LF as CR accepts or refuses the same file, and accepts the same entries.

func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }

/// The entries as bytes, which is how they must be compared (String `==` is Unicode-aware).
func entryBytes(_ table: AphorismTable) -> [[UInt8]] {
    table.entries.flatMap { [Array($0.question.utf8), Array($0.answer.utf8)] }
}

func parsed(_ bytes: [UInt8]) -> Result<AphorismTable, AphorismFileError> {
    do {
        return .success(try AphorismFile.parse(bytes, name: "fuzz.conf"))
    } catch {
        return .failure(error)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func aphorismFileFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let result = parsed(input)

    // A leading BOM is skipped: putting one in front changes nothing at all.
    if !input.starts(with: [0xEF, 0xBB, 0xBF]) {
        switch (result, parsed([0xEF, 0xBB, 0xBF] + input)) {
        case (.success(let a), .success(let b)):
            check(entryBytes(a) == entryBytes(b), "a BOM in front changed the entries")
        case (.failure(let a), .failure(let b)):
            check(a == b, "a BOM in front changed the error: \(a) vs \(b)")
        default:
            fail("a BOM in front changed whether the file parses")
        }
    }

    // A lone CR ends a line like LF does (CRLF becomes CR CR: an extra blank line).
    let crOnly = input.map { $0 == 0x0A ? 0x0D : $0 }
    switch (result, parsed(crOnly)) {
    case (.success(let a), .success(let b)):
        check(entryBytes(a) == entryBytes(b), "CR line ends give other entries than LF")
    case (.failure, .failure):
        break
    default:
        fail("CR line ends change whether the file parses")
    }

    let table: AphorismTable
    switch result {
    case .failure(let error):
        let lines = 1 + input.count(where: { $0 == 0x0A || $0 == 0x0D })
        check(error.file == "fuzz.conf" && error.line >= 1 && error.line <= lines,
                     "error line \(error.line) outside 1...\(lines)")
        check(error.description.hasPrefix("fuzz.conf:\(error.line): "))
        return 0
    case .success(let parsedTable):
        table = parsedTable
    }
    check(table.count >= 1, "an accepted file has entries")

    var seen = Set<[UInt8]>()
    for (question, answer) in table.entries {
        let q = Array(question.utf8), a = Array(answer.utf8)
        check(String(validating: q, as: UTF8.self) != nil && String(validating: a, as: UTF8.self) != nil)
        check(q.count >= 2 && q.last == UInt8(ascii: "?") && q.count(where: { $0 == UInt8(ascii: "?") }) == 1,
                     "question \(q) does not end at its only '?'")
        check(!isSpace(q[0]) && q[0] != UInt8(ascii: "#"), "question \(q) starts with a blank or '#'")
        check(!a.isEmpty && a.count <= AphorismTable.answerLimit, "answer of \(a.count) bytes")
        check(!isSpace(a.first!) && !isSpace(a.last!), "answer \(a) not trimmed")
        check(!(q + a).contains(0x0A) && !(q + a).contains(0x0D), "a line end inside an entry")
        check(seen.insert(q).inserted, "duplicate question \(q) accepted")
        let found = q.withUnsafeBytes { table.answer(for: $0) }.map { Array($0) }
        check(found == a, "the table answers \(String(describing: found)) for \(q), not \(a)")
    }

    // Render and parse again: the same entries, byte for byte, in the same order.
    switch parsed(Array(AphorismFile.render(table.entries).utf8)) {
    case .success(let again):
        check(entryBytes(again) == entryBytes(table), "render and re-parse changed the entries")
    case .failure(let error):
        fail("the rendered table does not parse: \(error)")
    }
    return 0
}
