package broker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/internal/testwait"
	"github.com/raftmq/raftmq/storage"
)

// TestStartupRefusals: a data directory that does not belong to this
// cluster, or whose files disagree, is refused with a message that says
// what to do, and nothing is served from it.
func TestStartupRefusals(t *testing.T) {
	t.Run("other cluster", func(t *testing.T) {
		cfg := testCluster(t, 1)[0]
		b, err := New(cfg, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		b.closeStores()
		other := testCluster(t, 1)[0] // other ports: another cluster id
		other.DataDir = cfg.DataDir
		_, err = New(other, zerolog.Nop())
		if !errors.Is(err, storage.ErrClusterMismatch) {
			t.Fatalf("New on another cluster's data: %v, want ErrClusterMismatch", err)
		}
	})
	t.Run("the persisted membership wins over the file", func(t *testing.T) {
		cfgs := testCluster(t, 3)
		for i := range cfgs {
			cfgs[i].Cluster.ClusterID = "fixed"
		}
		b, err := New(cfgs[0], zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		b.closeStores()
		smaller := cfgs[0]
		smaller.Cluster.Addresses = smaller.Cluster.Addresses[:1]
		// The file only gives addresses: the node keeps the 3 voters its
		// data records (a file may list fewer nodes than the membership).
		b2, err := New(smaller, zerolog.Nop())
		if err != nil {
			t.Fatalf("New with 1 address on a 3-node data dir: %v", err)
		}
		defer b2.closeStores()
		if got := b2.core.Conf().Voters; len(got) != 3 {
			t.Fatalf("voters %v, want the 3 recorded", got)
		}
	})
	t.Run("state ahead of log", func(t *testing.T) {
		cfg := testCluster(t, 1)[0]
		r := startBroker(t, cfg)
		c := dialRaw(t, cfg.Self().ClientAddr())
		testwait.For(t, 2*time.Second, "leader", func() bool { return c.status().Role == "Leader" })
		c.do(`{"type":"topic","method":"PUT","topic":"q"}`)
		r.stop(t)
		if err := os.Remove(filepath.Join(cfg.DataDir, "raft.db")); err != nil {
			t.Fatal(err)
		}
		_, err := New(cfg, zerolog.Nop())
		if err == nil || !strings.Contains(err.Error(), "different histories") {
			t.Fatalf("New with raft.db removed: %v, want a refusal", err)
		}
	})
}
