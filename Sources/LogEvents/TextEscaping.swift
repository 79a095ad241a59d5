/// Values written into one-line text formats (logfmt, `zen stats`, JSON) so that no value
/// can end a line, start a field or close a string early, whatever bytes a client, a file
/// name or an error message put in it.
public enum TextEscaping {
    /// A logfmt value: bare when it is non-empty and holds no space, `=`, `"`, `\` or
    /// control character; otherwise in double quotes with `"` and `\` escaped and control
    /// characters written `\n`, `\r`, `\t` or `\u00XX` (as JSON writes them).
    public static func logfmt(_ value: String) -> String {
        if !value.isEmpty, !value.unicodeScalars.contains(where: needsQuotes) { return value }
        return "\"" + escaped(value) + "\""
    }

    /// A JSON string, quotes included.
    public static func json(_ value: String) -> String {
        "\"" + escaped(value) + "\""
    }

    /// `value` with `"`, `\` and control characters escaped the JSON way (no quotes added).
    public static func escaped(_ value: String) -> String {
        guard value.unicodeScalars.contains(where: needsEscape) else { return value }
        var result = ""
        result.reserveCapacity(value.utf8.count + 8)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if isControl(scalar) {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }

    /// C0 and C1 controls, DEL, and the Unicode line and paragraph separators: anything a
    /// terminal or a line-based reader could take as the end of a line or an escape.
    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F ... 0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\"" || scalar == "\\" || isControl(scalar)
    }

    private static func needsQuotes(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "=" || needsEscape(scalar)
    }
}
