// Placeholder until the SWIM state machine lands (issue 4).
import MeshBase
