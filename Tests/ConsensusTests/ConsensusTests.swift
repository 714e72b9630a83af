import Testing
@testable import Consensus
