import NIOCore
import NIOPosix
import Logging
import Metrics
import Prometheus
