//go:build skipfsync

package storage

// skipRaftFsync: this build (tag skipfsync) commits raft.db without fsync.
// It exists only so e2e's power-loss suite can show it catches the loss
// (TestPowerCatchesASkippedFsync); never ship it.
const skipRaftFsync = true
