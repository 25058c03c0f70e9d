package raftlog

import (
	"fmt"
	"math/rand"
)

// Logger receives the core's rare diagnostic lines. The broker adapts
// zerolog to it; nil discards.
type Logger interface {
	Debugf(format string, args ...any)
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

type discardLogger struct{}

func (discardLogger) Debugf(string, ...any) {}
func (discardLogger) Infof(string, ...any)  {}
func (discardLogger) Warnf(string, ...any)  {}

// Limits on Config values that are surely mistakes.
const (
	maxElectionTicks   = 1 << 20
	maxInflightMsgsCap = 1 << 16
	maxVoters          = 64
)

// Config configures a Core. Zero values are invalid unless a default is named.
type Config struct {
	// ID is this node, != None.
	ID uint64
	// Peers are the voters (normally including ID); used only when
	// Storage's ConfState is empty (a fresh node). The caller should
	// persist them as the ConfState so that snapshots carry the
	// membership. Both empty: the node is joining; it has no membership
	// until a leader's log or snapshot gives it one, and it never campaigns
	// before it is a voter.
	Peers []uint64
	// ElectionTicks: the randomized election timeout is in
	// [ElectionTicks, 2*ElectionTicks).
	ElectionTicks int
	// HeartbeatTicks < ElectionTicks.
	HeartbeatTicks int
	Storage        Storage
	// Applied is the last index applied to the state machine before this
	// start (from state.db); 0 means none.
	Applied uint64
	// Rand is the only source of randomness; required.
	Rand        *rand.Rand
	PreVote     bool
	CheckQuorum bool
	// MaxSizePerMsg is the max bytes of entries in one MsgApp, counting
	// Data and EntryOverheadBytes per entry (at least one entry is always
	// sent), so an encoded MsgApp is at most about MaxSizePerMsg or its
	// first entry, whichever is larger.
	MaxSizePerMsg uint64
	// MaxInflightMsgs is the max MsgApp in flight per follower in replicate
	// state.
	MaxInflightMsgs int
	// MaxUncommittedEntriesBytes bounds the Data bytes of a leader's
	// uncommitted entries; 0 = no limit. Proposals beyond it are dropped.
	MaxUncommittedEntriesBytes uint64
	// MaxCommittedSizePerReady bounds CommittedEntries Data bytes per Ready
	// (at least one entry); 0 = no limit.
	MaxCommittedSizePerReady uint64
	// MaxPromoteLag: a leader promotes a learner to voter only when the
	// learner's match index is at most this many entries behind the
	// leader's last index; 0 means DefaultMaxPromoteLag.
	MaxPromoteLag uint64
	// Logger is optional; nil discards.
	Logger Logger
	// Recovering starts the node in recovering mode: its data was lost or
	// damaged, so it may have forgotten a vote and entries it acknowledged.
	// It never campaigns and rejects every Vote/PreVote until its commit
	// index (entries persisted) reaches the leader's commit index learned
	// from the first MsgApp whose commit index covers an entry of the
	// leader's term; SoftState.Recovering then turns false. Invalid in a one-voter cluster (nothing to recover
	// from).
	Recovering bool
}

func (cfg *Config) validate() error {
	switch {
	case cfg.ID == None:
		return fmt.Errorf("ID must not be %d: %w", None, ErrBadConfig)
	case cfg.Storage == nil:
		return fmt.Errorf("storage is required: %w", ErrBadConfig)
	case cfg.Rand == nil:
		return fmt.Errorf("rand is required: %w", ErrBadConfig)
	case cfg.HeartbeatTicks <= 0:
		return fmt.Errorf("heartbeat ticks %d must be > 0: %w", cfg.HeartbeatTicks, ErrBadConfig)
	case cfg.ElectionTicks <= cfg.HeartbeatTicks || cfg.ElectionTicks > maxElectionTicks:
		return fmt.Errorf("election ticks %d must be in (heartbeat ticks %d, %d]: %w",
			cfg.ElectionTicks, cfg.HeartbeatTicks, maxElectionTicks, ErrBadConfig)
	case cfg.MaxSizePerMsg == 0:
		return fmt.Errorf("max size per msg must be > 0: %w", ErrBadConfig)
	case cfg.MaxInflightMsgs <= 0 || cfg.MaxInflightMsgs > maxInflightMsgsCap:
		return fmt.Errorf("max inflight msgs %d must be in [1, %d]: %w", cfg.MaxInflightMsgs, maxInflightMsgsCap, ErrBadConfig)
	}
	return nil
}

// DefaultMaxPromoteLag is Config.MaxPromoteLag's default: about one
// MsgApp window of small entries, so a promoted voter is a round trip or
// two from holding everything.
const DefaultMaxPromoteLag = 1024
