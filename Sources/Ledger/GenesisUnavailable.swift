/// Why the genesis a log is audited against could not be had (its loader's error, described):
/// the ledger audits against a `LedgerGenesis` and leaves reading genesis files to its callers.
public struct GenesisUnavailable: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
