//go:build !skipfsync

package storage

// skipRaftFsync is false in every real build: raft.db commits are fsynced.
const skipRaftFsync = false
