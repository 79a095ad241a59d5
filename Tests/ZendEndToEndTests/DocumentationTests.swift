import Foundation
import Testing
import TestSupport

/// The repository stands alone: every relative link in its Markdown files leads to a
/// file or folder inside the clone, and every `#anchor` to a heading of the file it names.
@Suite("documentation links")
struct DocumentationTests {
    @Test("every relative link in the tracked Markdown files resolves inside the repository")
    func everyLinkResolves() throws {
        let root = Paths.repository
        let files = MarkdownLinks.trackedMarkdownFiles(root: root)
        #expect(files.contains("README.md"), "no Markdown files found under \(root)")
        var problems: [MarkdownLinks.Problem] = []
        for file in files {
            let text = Paths.read(root + "/" + file)
            problems += MarkdownLinks.problems(in: text, file: file, root: root)
        }
        #expect(problems.isEmpty, "broken links:\n\(problems.map(\.description).joined(separator: "\n"))")
    }

    /// The checker itself, on a document with one link of each kind: a test that can
    /// never fail checks nothing.
    @Test("the link check reports a missing file, a missing anchor and a link out of the repository")
    func checkerFindsBrokenLinks() {
        let document = """
        # A heading, with `code`!

        [fine](README.md) [fine too](docs/protocol.md#1-requests-and-answers) [here](#a-heading-with-code)
        [folder](Sources/) ![image](Benchmarks/benchmarks.svg "title") [web](https://example.org/x.md)
        [mail](mailto:someone@example.org) [man page](man:zend(8))
        [missing](docs/nothing-here.md) [bad anchor](README.md#no-such-heading)
        [up and out](../outside.md) [here, missing](#nowhere)
        [reference]: CONTRIBUTING.md#no-such-section

        `[in code](not-checked.md)`

            [indented code](not-checked-either.md)

        ```
        [fenced](not-checked-at-all.md)
        ```
        """
        let problems = MarkdownLinks.problems(in: document, file: "CHECK.md", root: Paths.repository)
        #expect(problems.map(\.target) == [
            "docs/nothing-here.md", "README.md#no-such-heading", "../outside.md", "#nowhere",
            "CONTRIBUTING.md#no-such-section",
        ], "\(problems.map(\.description))")
        #expect(problems.map(\.line) == [6, 6, 7, 7, 8])
    }
}

/// Finds the links of Markdown text and checks the relative ones against the repository.
enum MarkdownLinks {
    /// Markdown files git tracks (all `*.md` outside dot-folders when there is no git).
    static func trackedMarkdownFiles(root: String) -> [String] {
        if let listed = try? runCommand("/usr/bin/git", ["-C", root, "ls-files", "--", "*.md"]), listed.code == 0 {
            return listed.output.split(separator: "\n").map(String.init).sorted()
        }
        let walker = FileManager.default.enumerator(atPath: root)
        var files: [String] = []
        while let path = walker?.nextObject() as? String {
            if path.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            if path.hasSuffix(".md") { files.append(path) }
        }
        return files.sorted()
    }

    /// A broken link: where it is, where it points, and why that does not resolve.
    struct Problem: CustomStringConvertible {
        var file: String
        var line: Int
        var target: String
        var reason: String
        var description: String { "\(file):\(line): \(target): \(reason)" }
    }

    /// The broken relative links of `text`, the Markdown file `file` (relative to `root`).
    static func problems(in text: String, file: String, root: String) -> [Problem] {
        let directory = file.contains("/") ? String(file[..<file.lastIndex(of: "/")!]) : ""
        return links(in: text).compactMap { line, target in
            check(target, from: directory, in: text, root: root).map {
                Problem(file: file, line: line, target: target, reason: $0)
            }
        }
    }

    /// Why `target`, linked from a file in `directory` whose text is `text`, is broken; nil
    /// if it is fine or not relative (a URL, `mailto:`, `man:`).
    static func check(_ target: String, from directory: String, in text: String, root: String) -> String? {
        if target.range(of: "^[A-Za-z][A-Za-z0-9+.-]*:", options: .regularExpression) != nil || target.hasPrefix("//") {
            return nil
        }
        let parts = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
        let pathPart = (String(parts[0]).removingPercentEncoding ?? String(parts[0]))
        let anchor = parts.count > 1 ? String(parts[1]) : nil
        var anchorText = text
        if !pathPart.isEmpty {
            // A leading '/' means the repository root, as on the code hosts.
            let start = pathPart.hasPrefix("/") ? [] : directory.split(separator: "/").map(String.init)
            var components = start
            for component in pathPart.split(separator: "/").map(String.init) {
                switch component {
                case ".": continue
                case "..":
                    if components.isEmpty { return "leaves the repository" }
                    components.removeLast()
                default: components.append(component)
                }
            }
            let relative = components.joined(separator: "/")
            let absolute = relative.isEmpty ? root : root + "/" + relative
            guard FileManager.default.fileExists(atPath: absolute) else { return "no such file" }
            // A symbolic link inside the clone must not lead out of it either.
            let resolvedRoot = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
            let resolved = URL(fileURLWithPath: absolute).resolvingSymlinksInPath().path
            guard resolved == resolvedRoot || resolved.hasPrefix(resolvedRoot + "/") else {
                return "leaves the repository (through a symbolic link)"
            }
            guard anchor != nil else { return nil }
            guard relative.hasSuffix(".md") else { return nil }  // anchors of other files: not checked
            anchorText = (try? String(contentsOfFile: absolute, encoding: .utf8)) ?? ""
        }
        if let anchor, !anchor.isEmpty, !headingAnchors(in: anchorText).contains(anchor.lowercased()) {
            return "no heading with that anchor"
        }
        return nil
    }

    /// The links of `text` with their line numbers: inline links and images
    /// `[text](target "title")`, and reference definitions `[label]: target`. Fenced and
    /// indented code blocks and code spans are left out.
    static func links(in text: String) -> [(line: Int, target: String)] {
        var result: [(Int, String)] = []
        for (number, line) in proseLines(of: text) {
            if let match = line.firstMatch(of: /^ {0,3}\[[^\]]+\]:\s*(\S+)/) {
                result.append((number, stripBrackets(String(match.1))))
                continue
            }
            // Links whose text holds brackets ([`[x]`](y)) are rare here; the text is what
            // has no ']' and the target what has no unbalanced ')' (it may hold one pair,
            // as in man:zend(8)).
            for match in line.matches(of: /\]\(\s*(<[^>]*>|(?:[^()\s]|\([^()\s]*\))+)(?:\s+"[^"]*")?\s*\)/) {
                result.append((number, stripBrackets(String(match.1))))
            }
        }
        return result
    }

    /// The lines of `text` that are prose (numbered from 1), with code spans blanked.
    static func proseLines(of text: String) -> [(Int, String)] {
        var result: [(Int, String)] = []
        var fence: String?
        var previousBlank = true
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw)
            let trimmed = line.drop(while: { $0 == " " })
            if let open = fence {
                if trimmed.hasPrefix(open) { fence = nil }
                previousBlank = false
                continue
            }
            if trimmed.hasPrefix("```") || trimmed.hasPrefix("~~~") {
                fence = String(trimmed.prefix(3))
                continue
            }
            let indented = line.hasPrefix("    ") || line.hasPrefix("\t")
            // An indented line after a blank line starts (or continues) a code block.
            if indented && previousBlank { continue }
            previousBlank = line.allSatisfy { $0 == " " }
            result.append((index + 1, line.replacing(/`[^`]*`/, with: "``")))
        }
        return result
    }

    /// The anchors the code hosts give the headings of `text`: the heading's text in
    /// lower case, without punctuation, spaces as '-', repeats numbered -1, -2, ….
    static func headingAnchors(in text: String) -> Set<String> {
        var anchors: Set<String> = []
        var seen: [String: Int] = [:]
        for (_, line) in proseLines(of: text.replacing(/`([^`]*)`/) { $0.1 + "" }) {
            guard let match = line.firstMatch(of: /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/) else { continue }
            let title = String(match.1).replacing(/\[([^\]]*)\]\([^)]*\)/) { String($0.1) }
            var slug = ""
            for character in title.lowercased() {
                if character.isLetter || character.isNumber || character == "-" || character == "_" {
                    slug.append(character)
                } else if character == " " {
                    slug.append("-")
                }
            }
            let count = seen[slug, default: 0]
            seen[slug] = count + 1
            anchors.insert(count == 0 ? slug : "\(slug)-\(count)")
        }
        return anchors
    }

    private static func stripBrackets(_ target: String) -> String {
        target.hasPrefix("<") && target.hasSuffix(">") ? String(target.dropFirst().dropLast()) : target
    }
}
