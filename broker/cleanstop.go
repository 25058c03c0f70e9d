package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/raftmq/raftmq/internal/fsutil"
	"github.com/raftmq/raftmq/storage"
)

// cleanStopFile marks a data directory whose broker stopped gracefully:
// both bbolt files closed after their last commit succeeded. It lets the
// next start skip decision 9's full check of every file (decision 26).
const cleanStopFile = "clean-stop"

// cleanStop is the marker's content: the size and modification time of
// the files it vouches for, so a file written, replaced or truncated while
// the broker was down is still checked in full.
type cleanStop struct {
	RaftDB  fileStamp `json:"raft_db"`
	StateDB fileStamp `json:"state_db"`
}

type fileStamp struct {
	Bytes     int64 `json:"bytes"`
	ModTimeNs int64 `json:"mtime_ns"`
}

func currentCleanStop(dir string) (cleanStop, error) {
	var c cleanStop
	for _, f := range []struct {
		name  string
		stamp *fileStamp
	}{{storage.RaftDBFile, &c.RaftDB}, {storage.StateDBFile, &c.StateDB}} {
		st, err := os.Stat(filepath.Join(dir, f.name))
		if err != nil {
			return c, err
		}
		*f.stamp = fileStamp{Bytes: st.Size(), ModTimeNs: st.ModTime().UnixNano()}
	}
	return c, nil
}

// writeCleanStop records a graceful stop: temp file, fsync, rename, fsync
// of the directory. Called after both stores closed without error.
func writeCleanStop(dir string) error {
	c, err := currentCleanStop(dir)
	if err != nil {
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, cleanStopFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("broker: write %s: %w", tmp, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, cleanStopFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("broker: write the clean-stop marker: %w", err)
	}
	return fsutil.SyncDir(dir)
}

// takeCleanStop reports whether the data directory was left by a graceful
// stop with its files as they were then, and removes the marker durably
// before anything opens the files for writing: a crash from now on must
// lead to a full check at the next start.
func takeCleanStop(dir string) (bool, error) {
	path := filepath.Join(dir, cleanStopFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("broker: read %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return false, fmt.Errorf("broker: remove %s: %w", path, err)
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return false, err
	}
	var want cleanStop
	if json.Unmarshal(b, &want) != nil {
		return false, nil
	}
	got, err := currentCleanStop(dir)
	return err == nil && got == want, nil
}
