import Foundation

/// The system's words for a failure, never a bare errno number.
public enum SystemReason {
    /// The system's text for an errno value (`strerror`).
    public static func text(errno code: Int32) -> String { String(cString: strerror(code)) }

    /// The system's reason inside a Foundation error (its underlying POSIX error), not the
    /// "Error Domain=NSCocoaErrorDomain Code=4 …" text.
    public static func of(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] {
            if let posix = underlying as? POSIXError { return text(errno: posix.code.rawValue) }
            if let inner = underlying as? Error, (inner as NSError).domain == NSPOSIXErrorDomain {
                return text(errno: Int32((inner as NSError).code))
            }
        }
        if ns.domain == NSPOSIXErrorDomain { return text(errno: Int32(ns.code)) }
        return ns.localizedDescription
    }
}
