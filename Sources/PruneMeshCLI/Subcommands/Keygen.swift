import ArgumentParser
import Sodium
import Wire

/// `prunemesh keygen`: make a node identity (an Ed25519 key pair), or show an existing one.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate an Ed25519 node key (mode 0600 file) or show the public key of one.",
        discussion: """
            The key file holds three lines: the header 'prunemesh-ed25519-secret-key v1', the 32-byte \
            seed in hex and the public key in hex. It is created with mode 0600 and O_EXCL (refusing an \
            existing file unless --force, which replaces it atomically). Loading refuses a file that \
            group or others may access.

            Examples:
              prunemesh keygen --out node.key
              prunemesh keygen --show node.key --json
            """)

    @Option(help: "Write a new secret key to this file.")
    var out: String?

    @Option(help: "Print the public key of this existing key file.")
    var show: String?

    @Flag(help: "With --out: replace an existing file.")
    var force = false

    @Flag(help: "Print one JSON object.")
    var json = false

    struct Report: Encodable {
        var file: String
        var publicKey: String
        var fingerprint: String
        var created: Bool
    }

    func validate() throws {
        guard (out == nil) != (show == nil) else { throw ValidationError("give exactly one of --out FILE or --show FILE") }
        if force && out == nil { throw ValidationError("--force only applies to --out") }
    }

    func run() throws {
        let report: Report
        if let path = out {
            let key = SigningKey.generate()
            try SecretKeyFile.write(key, to: path, overwrite: force)
            report = Report(file: path, publicKey: key.publicKey.hex, fingerprint: key.publicKey.fingerprint, created: true)
        } else {
            let path = show!
            let key = try SecretKeyFile.load(path)
            report = Report(file: path, publicKey: key.publicKey.hex, fingerprint: key.publicKey.fingerprint, created: false)
        }
        if json {
            try printJSON(report)
        } else {
            if report.created { print("wrote secret key: \(report.file) (mode 0600)") }
            print("public key:  \(report.publicKey)")
            print("fingerprint: \(report.fingerprint)")
        }
    }
}
