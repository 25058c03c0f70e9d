//go:build !failpoints

package broker

// failpointsEnabled reports whether this build has failpoints compiled in.
const failpointsEnabled = false

// failpoint does nothing in a normal build: it inlines away, and nothing
// reads FailpointsEnv.
func (n *node) failpoint(failpoint) {}
