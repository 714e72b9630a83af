import Dataset

/// Why a model cannot run on a data set: its input shape differs from the images, or its
/// classifier has fewer outputs than the labels name classes. Checked wherever data meets a model
/// (`train`, `prune`, a node's start and restart, a genesis against the node's data), so that
/// neither reaches the network, where the first is a precondition and the second would read past
/// the logits.
public struct ModelDataMismatch: Error, Equatable, Sendable, CustomStringConvertible {
    public let model: ModelSpec
    /// The data's image shape (height, width, channels) and class count.
    public let imageHeight: Int, imageWidth: Int, imageChannels: Int, classes: Int

    public var inputMatches: Bool {
        model.inputHeight == imageHeight && model.inputWidth == imageWidth && model.inputChannels == imageChannels
    }

    public var description: String {
        let data = "\(imageHeight)x\(imageWidth)x\(imageChannels)"
        if !inputMatches {
            return "the model \(model) takes \(model.inputHeight)x\(model.inputWidth)x\(model.inputChannels) inputs but the data's "
                + "images are \(data); use a model spec starting \(data): (or data of the model's shape)"
        }
        return "the model \(model) has a classifier of \(model.classes) outputs (its last layer, dense\(model.classes)) but the data's "
            + "labels name \(classes) classes (0…\(classes - 1)); its last layer must be dense\(classes) (or wider)"
    }
}

extension ModelSpec {
    /// Throws unless this model takes images of the given shape and has at least `classes` outputs.
    public func checkFits(imageHeight: Int, imageWidth: Int, imageChannels: Int, classes: Int) throws(ModelDataMismatch) {
        let mismatch = ModelDataMismatch(
            model: self, imageHeight: imageHeight, imageWidth: imageWidth,
            imageChannels: imageChannels, classes: classes)
        guard mismatch.inputMatches, self.classes >= classes else { throw mismatch }
    }

    /// Throws unless this model can train and evaluate on `data`.
    public func checkFits(_ data: LabeledImages) throws(ModelDataMismatch) {
        try checkFits(imageHeight: data.height, imageWidth: data.width, imageChannels: data.channels, classes: data.classes)
    }

    /// Throws unless this model can train and evaluate on both sets of `data`.
    public func checkFits(_ data: DataSplit) throws(ModelDataMismatch) {
        try checkFits(data.train)
        try checkFits(data.test)
    }
}
