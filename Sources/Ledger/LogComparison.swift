import Sodium
import Wire

/// `prunemesh audit --compare`: are the decision logs of several nodes prefixes of one another?
/// Each log is first audited in full from its genesis (entry hashes leave the certificates out,
/// so a log whose entries lack their quorum of signatures chains like an honest one); then the
/// entry hashes are compared position by position up to the first divergence. A divergence
/// among audited logs means more than f faulty validators.
public enum LogComparison {
    /// One log as read: where it is, its file (or why it could not be read), and the genesis it
    /// is audited against (or why there is none). `genesis` is not looked at when `file` failed.
    public struct Log {
        public var path: String
        public var file: Result<(meshID: MeshID, entries: [[UInt8]]), DecisionLogError>
        public var genesisPath: String
        /// The genesis, or the reason it could not be had (its loader's error, in words).
        public var genesis: Result<LedgerGenesis, GenesisUnavailable>

        public init(
            path: String, file: Result<(meshID: MeshID, entries: [[UInt8]]), DecisionLogError>, genesisPath: String,
            genesis: Result<LedgerGenesis, GenesisUnavailable>
        ) {
            self.path = path
            self.file = file
            self.genesisPath = genesisPath
            self.genesis = genesis
        }
    }

    /// What `--compare` reports of one log (JSON keys in snake_case).
    public struct LogInfo: Encodable, Equatable {
        public var path: String
        public var meshId: String?
        public var entries: Int
        public var head: String?
        public var error: String?
        /// Entries that passed the full audit from the genesis (certificates included).
        public var verified: Int = 0
        public var genesis: String?
    }

    /// The first position where the logs differ, and each log's entry hash there (or its mesh,
    /// for logs of different meshes).
    public struct Divergence: Encodable, Equatable {
        public var index: Int
        public var hashes: [String: String]
    }

    public struct Report: Encodable {
        public var ok: Bool
        public var logs: [LogInfo]
        /// Entries every log shares (up to the first divergence, or the shortest log).
        public var commonPrefix: Int
        public var firstDivergence: Divergence?
        /// Every log was read and passed its audit.
        public var readable: Bool { logs.allSatisfy { $0.error == nil } }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(ok, forKey: .ok)
            try c.encode(logs, forKey: .logs)
            try c.encode(commonPrefix, forKey: .commonPrefix)
            try c.encode(firstDivergence, forKey: .firstDivergence)
        }
        enum CodingKeys: String, CodingKey { case ok, logs, commonPrefix, firstDivergence }
    }

    /// Reads the log at `path` and, if it could be read, its genesis with `loadGenesis(genesisPath)`.
    public static func read(path: String, genesisPath: String, loadGenesis: (String) throws -> LedgerGenesis) -> Log {
        let file: Result<(meshID: MeshID, entries: [[UInt8]]), DecisionLogError>
        do { file = .success(try DecisionLog.readEntries(path: path)) } catch { file = .failure(error) }
        var genesis: Result<LedgerGenesis, GenesisUnavailable> = .failure(GenesisUnavailable("not loaded: the log could not be read"))
        if case .success = file {
            do { genesis = .success(try loadGenesis(genesisPath)) } catch { genesis = .failure(GenesisUnavailable("\(error)")) }
        }
        return Log(path: path, file: file, genesisPath: genesisPath, genesis: genesis)
    }

    /// Audits every log against its genesis and compares their entry hashes. Logs are named by
    /// their paths in `Divergence.hashes` (give distinct paths).
    public static func compare(_ logs: [Log]) -> Report {
        var infos: [LogInfo] = []
        var hashes: [[Digest32]] = []
        var meshIDs: [MeshID?] = []
        for log in logs {
            switch log.file {
            case let .success(file):
                let h = file.entries.map { LogEntry.hash(encoded: $0) }
                hashes.append(h)
                meshIDs.append(file.meshID)
                var info = LogInfo(
                    path: log.path, meshId: file.meshID.hex, entries: h.count,
                    head: (h.last ?? file.meshID.digest).hex, genesis: log.genesisPath)
                switch log.genesis {
                case let .success(genesis):
                    if genesis.meshID != file.meshID {
                        info.error = "the log is for mesh \(file.meshID.hex), the genesis \(log.genesisPath) is mesh \(genesis.meshID.hex)"
                    } else {
                        let result = LogVerifier.verify(entries: file.entries, genesis: genesis)
                        info.verified = result.summaries.count
                        if let e = result.error {
                            info.error = "audit FAILED at entry \(e.index) (height \(e.index + 1)): \(e.fault.description)"
                        }
                    }
                case let .failure(problem):
                    info.error = "cannot audit it: genesis \(log.genesisPath): \(problem) (give the mesh's genesis with --mesh)"
                }
                infos.append(info)
            case let .failure(error):
                hashes.append([])
                meshIDs.append(nil)
                infos.append(
                    LogInfo(path: log.path, meshId: nil, entries: 0, head: nil, error: error.description, genesis: log.genesisPath))
            }
        }
        let paths = logs.map(\.path)
        var divergence: Divergence?
        var common = hashes.map(\.count).min() ?? 0
        let readable = infos.allSatisfy { $0.error == nil }
        if readable, Set(meshIDs.compactMap { $0 }).count > 1 {
            divergence = Divergence(
                index: 0,
                hashes: Dictionary(
                    zip(paths, meshIDs.map { "mesh " + ($0?.hex ?? "?") }),
                    uniquingKeysWith: { a, _ in a }))
            common = 0
        } else if readable {
            let longest = hashes.map(\.count).max() ?? 0
            for i in 0..<longest {
                let present = hashes.enumerated().filter { i < $0.element.count }
                if Set(present.map { $0.element[i] }).count > 1 {
                    divergence = Divergence(
                        index: i,
                        hashes: Dictionary(
                            present.map { (paths[$0.offset], $0.element[i].hex) },
                            uniquingKeysWith: { a, _ in a }))
                    common = i
                    break
                }
            }
        }
        return Report(ok: readable && divergence == nil, logs: infos, commonPrefix: common, firstDivergence: divergence)
    }
}
