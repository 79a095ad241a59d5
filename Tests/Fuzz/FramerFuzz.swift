// libFuzzer target for the framer, ZenService.serve. Built by Tests/Fuzz/run.sh together
// with the sources of ZenProtocol into one module (so no `import`), not by SwiftPM.
//
// The input is a byte stream plus how to cut it:
//
//     byte 0      maxRequestBytes = 1 + byte % 48
//     byte 1      send-buffer room = the table's longest answer + byte % 64
//     byte 2      n, the number of chunk-length bytes that follow (n % 16)
//     n bytes     chunk lengths, 1 + byte % 24 each, used in turn, over and over
//     the rest    the bytes a client sends
//
// Checked: fed in those chunks the way a connection feeds the reactor's buffers (bytes
// accumulate, `serve` runs after each read, consumed bytes leave the front, a full send
// buffer is drained and `serve` called again), the answers, whether the connection ends
// with "request too long" and the partial request left over are the same as from one
// whole read, and the same as a plain reference model of the protocol written below.

/// The table served: the book's three entries and short keys the fuzzer finds easily,
/// with answers of different lengths so small send buffers fill up mid-stream.
let fuzzTable = AphorismTable(AphorismTable.defaultEntries + [
    ("a?", "A."),
    ("ab?", "Two bytes then a question mark."),
    ("a b?", "Inner space."),
    ("?", "Just a question mark."),
    ("\u{0}?", "NUL."),
    ("\u{E9}?", "Composed."),
    ("e\u{301}?", "Decomposed."),
    ("\u{0B}x?", String(repeating: "long ", count: 40)),
])

/// The protocol as the spec says it, written plainly: skip whitespace, take every byte up
/// to and including the next '?', look it up; a request (or a partial one with no '?' yet)
/// of more than `maxRequestBytes` bytes ends the conversation with the too-long answer.
func referenceModel(_ stream: [UInt8], maxRequestBytes: Int, table: [[UInt8]: [UInt8]])
    -> (answers: [UInt8], tooLong: Bool, leftover: [UInt8]) {
    let unknown = Array("Error: unknown aphorism.".utf8)
    let tooLongAnswer = Array("Error: request too long.".utf8)
    var answers: [UInt8] = []
    var i = 0
    while true {
        while i < stream.count, [0x20, 0x09, 0x0D, 0x0A].contains(stream[i]) { i += 1 }
        var j = i
        while j < stream.count, stream[j] != UInt8(ascii: "?") { j += 1 }
        if j == stream.count {
            // No '?' yet: a partial request already as long as allowed can only grow longer.
            if stream.count - i >= maxRequestBytes { return (answers + tooLongAnswer, true, []) }
            return (answers, false, Array(stream[i...]))
        }
        let request = Array(stream[i ... j])
        if request.count > maxRequestBytes { return (answers + tooLongAnswer, true, []) }
        answers += table[request] ?? unknown
        i = j + 1
    }
}

/// Feeds `chunks` to `service` the way a connection does; the answers, whether it ended
/// too long, and the unconsumed bytes.
func converse(_ chunks: [ArraySlice<UInt8>], service: ZenService, room: Int)
    -> (answers: [UInt8], tooLong: Bool, leftover: [UInt8]) {
    var buffer: [UInt8] = []
    var answers: [UInt8] = []
    var output = [UInt8](repeating: 0, count: room)
    for chunk in chunks {
        buffer += chunk
        while true {
            let result = buffer.withUnsafeBytes { input in
                output.withUnsafeMutableBytes { service.serve(input, into: $0) }
            }
            check(result.consumed <= buffer.count && result.produced <= room, "serve overran: \(result)")
            answers += output[0 ..< result.produced]
            buffer.removeFirst(result.consumed)
            switch result.stop {
            case .needInput:
                break
            case .outputFull:
                // The send buffer always has room for one answer: a full one must have made progress.
                check(result.produced > 0, "outputFull with nothing produced, room \(room)")
                continue
            case .requestTooLong:
                return (answers, true, [])
            }
            break
        }
    }
    return (answers, false, buffer)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func framerFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size >= 3 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let maxRequestBytes = 1 + Int(input[0]) % 48
    let room = fuzzTable.maxAnswerBytes + Int(input[1]) % 64
    let lengthCount = min(Int(input[2]) % 16, size - 3)
    let lengths = input[3 ..< 3 + lengthCount].map { 1 + Int($0) % 24 }
    let stream = Array(input[(3 + lengthCount)...])

    var chunks: [ArraySlice<UInt8>] = []
    var start = 0, turn = 0
    while start < stream.count {
        let length = lengths.isEmpty ? stream.count : lengths[turn % lengths.count]
        let end = min(start + length, stream.count)
        chunks.append(stream[start ..< end])
        start = end
        turn += 1
    }

    let service = ZenService(table: fuzzTable, maxRequestBytes: maxRequestBytes)
    var table: [[UInt8]: [UInt8]] = [:]
    for entry in fuzzTable.entries { table[Array(entry.question.utf8)] = Array(entry.answer.utf8) }

    // One whole read, with room for every answer it can owe.
    let wholeRoom = (stream.count(where: { $0 == UInt8(ascii: "?") }) + 1) * fuzzTable.maxAnswerBytes
    let whole = converse([stream[...]], service: service, room: wholeRoom)
    let pieces = converse(chunks, service: service, room: room)
    let model = referenceModel(stream, maxRequestBytes: maxRequestBytes, table: table)

    check(whole.answers == model.answers, "whole read differs from the model")
    check(whole.tooLong == model.tooLong, "whole read: too long \(whole.tooLong), model \(model.tooLong)")
    check(whole.leftover == model.leftover, "whole read leaves \(whole.leftover), model \(model.leftover)")
    check(pieces.answers == whole.answers, "chunks \(chunks.map(\.count)) answer differently from one read")
    check(pieces.tooLong == whole.tooLong, "chunks: too long \(pieces.tooLong), whole read \(whole.tooLong)")
    check(pieces.leftover == whole.leftover, "chunks leave \(pieces.leftover), whole read \(whole.leftover)")
    return 0
}
