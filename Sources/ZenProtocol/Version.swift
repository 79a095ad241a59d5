/// zend's release version, shared by the daemon, the client and the package.
public enum ZendVersion {
    public static let string = "0.1.0"
}
