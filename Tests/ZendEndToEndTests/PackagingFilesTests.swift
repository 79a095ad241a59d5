import Testing
import TestSupport

extension EndToEnd {
    /// The shell completions the package installs, made by packaging/generate-completions
    /// from the built commands as debian/rules makes them (they are not checked in).
    @Suite("shell completions")
    struct CompletionTests {
        /// The six scripts, generated into a scratch directory.
        private func generate() throws -> (directory: String, read: (String) -> String) {
            let directory = Paths.scratchDirectory("completions")
            let result = try runCommand(Paths.repository + "/packaging/generate-completions",
                                        [Paths.products, directory + "/out"], timeout: .seconds(60))
            #expect(result.code == 0, "\(result.output)")
            return (directory, { Paths.read(directory + "/out/" + $0) })
        }

        /// What bash offers for `words` (the last one being completed) with `script` loaded.
        private func bashCompletions(_ script: String, _ words: [String]) throws -> [String] {
            let driver = """
            source "$1"; shift
            COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
            spec=$(complete -p "$1"); spec=${spec##*-F }; spec=${spec%% *}
            "$spec" "$1" "${!#}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\\n' "${COMPREPLY[@]}"
            """
            let result = try runCommand("/bin/bash", ["-c", driver, "bash", script] + words)
            #expect(result.code == 0, "\(words): \(result.output)")
            return result.output.split(separator: "\n").map(String.init)
        }

        @Test("bash completes file names for --aphorisms, --control and --unix")
        func bashFileNames() throws {
            let (directory, _) = try generate()
            defer { Paths.remove(directory) }
            Paths.write("Beautiful is better than? Ugly.\n", to: directory + "/aphorisms.conf")
            let file = directory + "/aphorisms.conf"
            let partial = directory + "/aph"
            for (script, words) in [
                ("zend.bash", ["zend", "--aphorisms", partial]),
                ("zend.bash", ["zend", "--control", partial]),
                ("zen.bash", ["zen", "ask", "--unix", partial]),
                ("zen.bash", ["zen", "bench", "--unix", partial]),
                ("zen.bash", ["zen", "stats", "--control", partial]),
            ] {
                #expect(try bashCompletions(directory + "/out/" + script, words) == [file], "\(words)")
            }
        }

        @Test("zend's completions offer no help subcommand (zend has none); zen's keep theirs")
        func noHelpSubcommandForZend() throws {
            let (directory, read) = try generate()
            defer { Paths.remove(directory) }
            #expect(try !bashCompletions(directory + "/out/zend.bash", ["zend", "h"]).contains("help"))
            #expect(try bashCompletions(directory + "/out/zen.bash", ["zen", "h"]) == ["help"])
            #expect(!read("zend.bash").contains("_zend_help") && !read("zend.bash").contains("compgen -W 'help'"))
            #expect(!read("_zend").contains("'help:") && !read("_zend").contains("_zend_help"))
            #expect(read("_zend").contains("'::HOST:_hosts'"))
            #expect(!read("zend.fish").contains("-fa 'help'") && !read("zend.fish").contains("\"zend help\""))
            #expect(read("zen.fish").contains("-fa 'help'"))
        }

        @Test("zsh and fish complete file names for --aphorisms, --control and --unix")
        func zshAndFishFileNames() throws {
            let (directory, read) = try generate()
            defer { Paths.remove(directory) }
            for option in ["aphorisms", "control"] {
                #expect(zshCompletesFiles(read("_zend"), option), "zend --\(option)")
                #expect(fishCompletesFiles(read("zend.fish"), option), "zend --\(option)")
            }
            #expect(zshCompletesFiles(read("_zen"), "unix", count: 2) && zshCompletesFiles(read("_zen"), "control"))
            #expect(fishCompletesFiles(read("zen.fish"), "unix", count: 2) && fishCompletesFiles(read("zen.fish"), "control"))
        }

        private func zshCompletesFiles(_ script: String, _ option: String, count: Int = 1) -> Bool {
            script.split(separator: "\n").filter { $0.contains("'--\(option)[") && $0.hasSuffix(":_files'") }.count == count
        }

        private func fishCompletesFiles(_ script: String, _ option: String, count: Int = 1) -> Bool {
            script.split(separator: "\n").filter { $0.contains("-l '\(option)'") && $0.hasSuffix(" -rF") }.count == count
        }
    }

    /// The man pages' parts that no generator checks.
    @Suite("man pages")
    struct ManPageTests {
        @Test("zend(8) says .Os zend VERSION, the version zend --version prints")
        func zendOs() throws {
            let version = try runCommand(Paths.product("zend"), ["--version"]).output
                .split(separator: "\n").first.map(String.init) ?? ""
            #expect(version.hasPrefix("zend "))
            let page = Paths.read(Paths.repository + "/packaging/zend.8")
            #expect(page.split(separator: "\n").contains { $0 == ".Os \(version)" }, "\(version)")
        }

        @Test("zen(1)'s EXIT STATUS lists 0, 64 and every code of ZenExit")
        func zenExitStatus() throws {
            let source = Paths.read(Paths.repository + "/Sources/ZenClient/ZenExit.swift")
            let codes = source.matches(of: /static let \w+: Int32 = (\d+)/).map { String($0.1) }
            #expect(codes.count >= 7, "\(codes)")
            let sections = Paths.read(Paths.repository + "/packaging/zen.1-sections")
            for code in ["0", "64"] + codes {
                #expect(sections.contains("\n.It \(code)\n"), "zen.1-sections does not list exit status \(code)")
            }
            for section in ["EXIT STATUS", "EXAMPLES", "SEE ALSO"] {
                #expect(sections.contains(".Sh \(section)\n"))
            }
        }
    }
}
