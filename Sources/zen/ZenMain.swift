import ZenClient

/// The development build's `zen`: the installed one is zend run under the name `zen`.
@main
enum ZenMain {
    static func main() {
        ZenCommandLine.main()
    }
}
