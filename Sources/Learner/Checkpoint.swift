import Gzip
import MeshBase

/// Why a checkpoint could not be read.
public struct CheckpointError: Error, CustomStringConvertible {
    public let path: String
    public let problem: String
    public var description: String { "checkpoint \(path): \(problem)" }

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }
}

/// The model file: versioned, length-checked, with a CRC-32 over everything before it.
///
/// Layout (all integers little-endian):
///
///     magic        8   "PMMODEL\0"
///     version      u32 1
///     spec         u16 length + UTF-8 original model spec (canonical text)
///     inputMean    f32
///     inputStd     f32
///     layers       u16 number of prunable layers, then for each: u32 count + count × u32 original indices
///     tensors      u16 number of parameter layers, then for each: u32 weight count + f32s, u32 bias count + f32s
///     crc32        u32 of all bytes above
///
/// Every count is checked against the shape the spec and mask imply before anything is allocated.
public enum Checkpoint {
    static let magic: [UInt8] = Array("PMMODEL".utf8) + [0]
    static let version: UInt32 = 1

    public static func encode(_ model: Model) -> [UInt8] {
        var w = ByteWriter(capacity: 4 * model.cost.params + 1024)
        w.write(raw: magic)
        w.write(version)
        w.write(string: model.originalSpec.description)
        w.write(model.inputMean)
        w.write(model.inputStd)
        w.write(UInt16(model.mask.kept.count))
        for layer in model.mask.kept {
            w.write(UInt32(layer.count))
            for index in layer { w.write(UInt32(index)) }
        }
        w.write(UInt16(model.weights.count))
        for (weights, biases) in zip(model.weights, model.biases) {
            w.write(UInt32(weights.count))
            w.write(floats: weights)
            w.write(UInt32(biases.count))
            w.write(floats: biases)
        }
        w.write(CRC32.checksum(w.bytes))
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws(CheckpointError) -> Model {
        func fail(_ problem: String) -> CheckpointError { CheckpointError(path: path, problem: problem) }
        guard bytes.count >= magic.count + 8 else { throw fail("too short (\(bytes.count) bytes) to be a model file") }
        guard Array(bytes.prefix(magic.count)) == magic else { throw fail("not a PruneMesh model file (bad magic)") }
        let body = bytes.count - 4
        let stored = bytes[body...].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        guard CRC32.checksum(Array(bytes[..<body])) == stored else { throw fail("checksum mismatch: the file is corrupt") }
        var r = ByteReader(Array(bytes[magic.count..<body]))
        do {
            let version = try r.readUInt32("version")
            guard version == Self.version else { throw fail("unsupported version \(version) (this build reads \(Self.version))") }
            let specText = try r.readString("spec", limit: Limits.model_spec_bytes_max)
            let spec: ModelSpec
            do { spec = try ModelSpec(parsing: specText) } catch { throw fail("\(error)") }
            let arch = Architecture(spec)
            let mean = try r.readFloat("inputMean"), std = try r.readFloat("inputStd")
            guard mean.isFinite, std.isFinite, std > 0 else { throw fail("bad input normalisation \(mean), \(std)") }
            let layerCount = Int(try r.readUInt16("layers"))
            guard layerCount == arch.prunable.count else { throw fail("\(layerCount) mask layers, spec has \(arch.prunable.count)") }
            var kept: [[Int]] = []
            for p in arch.prunable {
                let count = Int(try r.readUInt32("mask.count"))
                guard count >= 1, count <= p.units else { throw fail("mask layer keeps \(count) of \(p.units) units") }
                var layer: [Int] = []
                for _ in 0..<count { layer.append(Int(try r.readUInt32("mask.index"))) }
                kept.append(layer)
            }
            let mask = PruneMask(kept: kept)
            do { try mask.validate(originalSpec: spec) } catch { throw fail("\(error)") }
            let current = Architecture(spec.withPrunableWidths(mask.widths))
            let tensorCount = Int(try r.readUInt16("tensors"))
            guard tensorCount == current.paramLayers.count else {
                throw fail("\(tensorCount) tensors, model has \(current.paramLayers.count) layers")
            }
            var weights: [[Float]] = [], biases: [[Float]] = []
            for (i, p) in current.paramLayers.enumerated() {
                let wc = Int(try r.readUInt32("weights.count"))
                guard wc == p.weightCount else { throw fail("layer \(i) has \(wc) weights, its shape needs \(p.weightCount)") }
                weights.append(try r.readFloats(wc, "weights"))
                let bc = Int(try r.readUInt32("biases.count"))
                guard bc == p.units else { throw fail("layer \(i) has \(bc) biases, its shape needs \(p.units)") }
                biases.append(try r.readFloats(bc, "biases"))
            }
            try r.expectEnd()
            var model: Model
            do { model = try Model(originalSpec: spec, mask: mask, weights: weights, biases: biases) } catch { throw fail("\(error)") }
            model.inputMean = mean
            model.inputStd = std
            return model
        } catch let e as ByteReaderError {
            throw fail("\(e)")
        } catch let e as CheckpointError {
            throw e
        } catch {
            throw fail("\(error)")
        }
    }
}
