package broker

// The one mapping between the two id spaces (decision 2). raftlog numbers
// nodes from 1 and uses 0 for "none"; the cluster file, the CLI, status and
// every log field the broker writes number them from 0, by their index in
// the cluster file's addresses.

// raftID is the raftlog id of the node at index i of the cluster file.
func raftID(i int) uint64 { return uint64(i) + 1 }

// nodeIndex is the cluster-file index of raftlog id id (-1 for none).
func nodeIndex(id uint64) int { return int(id) - 1 }
