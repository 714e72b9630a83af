import Testing
@testable import MeshConfig
