import Testing
@testable import NodeRuntime
