// Package storage holds raftmq's two bbolt files.
//
// raft.db (RaftDB) is the Raft log and the node's hard state: term, vote,
// cluster id, membership and log entries, each entry CRC32C-checked on the
// way in and on the way out. RaftDB implements raftlog.Storage.
//
// state.db (StateDB) is the topic store, raftmq's deterministic state
// machine: topics in creation order, a FIFO queue per topic, client sessions
// and the applied index, all changed together in one transaction per Apply.
//
// Inspect reads both files offline for `raftmq inspect`.
//
// Every bbolt access is a managed Update or View. A file that bbolt cannot
// read, or whose contents fail a check, is reported as ErrCorrupt naming the
// file and telling the operator what to do; it is never served.
package storage
