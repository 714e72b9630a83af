import MeshBase
import Sodium

/// The words a caller must write to obtain seeded (predictable) privacy noise.
public enum InsecureNoiseAcknowledgement: Sendable {
    /// Seeded noise is reproducible, so anyone who knows the seed can subtract it: it protects
    /// nothing. It exists for tests and the deterministic simulator only.
    case testsAndSimulationOnly
}

/// Where privacy noise comes from: the operating system's CSPRNG in production, or — only through
/// the loudly named `insecureSeeded(seed:acknowledged:)` — a reproducible generator for tests and
/// the simulator. The production release path refuses the seeded kind unless told otherwise.
public struct NoiseSource: RandomNumberGenerator, Sendable {
    enum Kind: Sendable {
        case secure(SecureRandom)
        case seeded(SeededGenerator)
    }

    var kind: Kind

    private init(kind: Kind) { self.kind = kind }

    /// libsodium's `randombytes_buf`: the only acceptable source for real releases.
    public static var secure: NoiseSource { NoiseSource(kind: .secure(SecureRandom())) }

    /// Reproducible noise from `seed`. Never for a real release: the noise is as public as the seed.
    public static func insecureSeeded(seed: UInt64, acknowledged: InsecureNoiseAcknowledgement) -> NoiseSource {
        NoiseSource(kind: .seeded(SeededGenerator(seed: seed)))
    }

    /// Reproducible noise for one simulated node (`stream`) of a run seeded with `seed`.
    public static func insecureSeeded(
        seed: UInt64, stream: UInt64,
        acknowledged: InsecureNoiseAcknowledgement
    ) -> NoiseSource {
        NoiseSource(kind: .seeded(SeededGenerator(seed: seed, stream: stream)))
    }

    /// True for the CSPRNG, false for seeded noise.
    public var isSecure: Bool {
        if case .secure = kind { return true }
        return false
    }

    public mutating func next() -> UInt64 {
        switch kind {
        case .secure(var generator):
            let value = generator.next()
            kind = .secure(generator)
            return value
        case .seeded(var generator):
            let value = generator.next()
            kind = .seeded(generator)
            return value
        }
    }
}
