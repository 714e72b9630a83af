import Foundation
import Learner
import Sodium
import SpecExamples
import Testing
import Wire

@testable import MeshConfig

/// The worked examples of `Sources/MeshConfig/MeshConfig.docc`: a genesis file, its canonical
/// bytes field by field and its mesh id, and which edits keep or change the id. A drifting spec
/// fails here.
@Suite struct MeshConfigSpecExampleTests {
    static let doc = "Sources/MeshConfig/MeshConfig.docc/GenesisAndMeshID.md"

    static func yaml() throws -> String { try SpecExamples.block("genesis-lab", in: doc) }

    @Test func theGenesisItsCanonicalBytesAndItsID() throws {
        let genesis = try Genesis(yaml: try Self.yaml(), file: "genesis-lab")
        let bytes = genesis.canonicalBytes()
        #expect(try SpecExamples.hex("genesis-lab-canonical", in: Self.doc) == bytes, "\(SpecExamples.hexString(bytes))")
        let f = try SpecExamples.fields("genesis-lab-id", in: Self.doc)
        #expect(f["canonical_bytes"] == "\(bytes.count)")
        #expect(f["mesh_id"] == genesis.meshID.hex)
        #expect(MeshID(genesisBytes: try SpecExamples.hex("genesis-lab-canonical", in: Self.doc)).hex == f["mesh_id"])
        // The canonical bytes decode to the same genesis (a peer could send them).
        #expect(try Genesis(canonicalBytes: bytes).canonicalBytes() == bytes)
    }

    /// Each documented edit of one field either keeps the mesh id, changes it, or is refused.
    @Test func editsThatKeepChangeOrBreakTheID() throws {
        let base = try Genesis(yaml: try Self.yaml(), file: "genesis-lab").meshID
        let f = try SpecExamples.fields("genesis-edits", in: Self.doc)
        #expect(f.count >= 6)
        for (edit, outcome) in f {
            let parts = edit.split(separator: " ", maxSplits: 1).map(String.init)
            let leaf = String(parts[0].split(separator: ".").last!)
            let value = parts[1]
            let written = value.contains(":") ? "\"\(value)\"" : value
            let text = try Self.yaml().split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
                let trimmed = line.drop { $0 == " " }
                guard trimmed.hasPrefix(leaf + ":") else { return String(line) }
                return String(line.prefix(line.count - trimmed.count)) + leaf + ": " + written
            }.joined(separator: "\n")
            #expect(text != (try Self.yaml()), "\(edit): no line for \(leaf)")
            let result = Result { try Genesis(yaml: text, file: "edit").meshID }
            switch outcome {
            case "same id": #expect((try? result.get()) == base, "\(edit)")
            case "another id":
                let id = try? result.get()
                #expect(id != nil && id != base, "\(edit)")
            default:
                #expect(outcome.hasPrefix("refused"), "\(edit): unknown outcome \(outcome)")
                #expect((try? result.get()) == nil, "\(edit) should be refused")
            }
        }
    }

    /// The optional `training_privacy` section: appended after the members, its bytes and the id.
    @Test func theTrainingPrivacySectionAppendsItsBytes() throws {
        let (genesis, bytes, f) = try Self.sectionExample("genesis-lab-dp")
        #expect(try Genesis(canonicalBytes: bytes).canonicalBytes() == bytes)
        let terms = try #require(genesis.trainingPrivacyTerms)
        #expect(f["steps_per_round"] == "\(terms.stepsPerRound)")
        let epsilon = try terms.epsilon(steps: terms.stepsPerRound).epsilon
        // Printed to 12 significant digits (libm may differ in the last bits between machines).
        let documented = try #require(f["epsilon_one_round"].flatMap(Double.init))
        #expect(abs(documented - epsilon) <= 1e-11 * epsilon, "\(epsilon)")
    }

    /// The optional `federation` section: tag 2 and the canonical rule text, after the members.
    @Test func theFederationSectionAppendsItsBytes() throws {
        let (_, bytes, _) = try Self.sectionExample("genesis-lab-federation")
        #expect(try Genesis(canonicalBytes: bytes).federation == FederationParameters(aggregation: .fedAvg))
    }

    /// `federation.encoding: int8`: tag 3 and the encoding text after the rule.
    @Test func theInt8EncodingAppendsItsTag() throws {
        let (_, bytes, _) = try Self.sectionExample("genesis-lab-federation-int8")
        #expect(try Genesis(canonicalBytes: bytes).federation == FederationParameters(aggregation: .fedAvg, encoding: .int8))
    }

    /// `federation.server_rate: 1.5`: tag 4 and the f64 after the encoding.
    @Test func theServerRateAppendsItsTag() throws {
        let (_, bytes, _) = try Self.sectionExample("genesis-lab-federation-rate")
        #expect(
            try Genesis(canonicalBytes: bytes).federation == FederationParameters(aggregation: .fedAvg, encoding: .int8, serverRate: 1.5))
    }

    /// An optional-section example `name`: the lab genesis with block `<name>-section` appended
    /// has the lab's canonical bytes followed by `<name>-tail`, and the byte count and mesh id
    /// of `<name>-id`. Returns the genesis, its bytes and the id block's fields.
    static func sectionExample(
        _ name: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> (Genesis, [UInt8], [String: String]) {
        let lab = try Genesis(yaml: try Self.yaml(), file: "genesis-lab")
        let text = try Self.yaml() + "\n" + (try SpecExamples.block("\(name)-section", in: Self.doc)) + "\n"
        let genesis = try Genesis(yaml: text, file: "\(name)-section")
        let bytes = genesis.canonicalBytes()
        let tail = try SpecExamples.hex("\(name)-tail", in: Self.doc)
        #expect(
            bytes == lab.canonicalBytes() + tail, "\(SpecExamples.hexString(Array(bytes.dropFirst(lab.canonicalBytes().count))))",
            sourceLocation: sourceLocation)
        let f = try SpecExamples.fields("\(name)-id", in: Self.doc)
        #expect(f["canonical_bytes"] == "\(bytes.count)", "\(bytes.count)", sourceLocation: sourceLocation)
        #expect(f["mesh_id"] == genesis.meshID.hex, "\(genesis.meshID.hex)", sourceLocation: sourceLocation)
        return (genesis, bytes, f)
    }
}
