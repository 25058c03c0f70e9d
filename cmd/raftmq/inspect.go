package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/snapshot"
	"github.com/raftmq/raftmq/storage"
)

// inspectReport is storage.Inspect's report plus the snapshot files.
type inspectReport struct {
	storage.Report
	Snapshots []snapshotInfo `json:"snapshots"`
}

// snapshotInfo is one snapshot file: its header and whether it verifies.
type snapshotInfo struct {
	File     string `json:"file"`
	Index    uint64 `json:"index"`
	Term     uint64 `json:"term"`
	Bytes    int64  `json:"bytes"`
	Verified bool   `json:"verified"`
	Error    string `json:"error,omitempty"`
}

// inspectSnapshots reads every snapshot file in dataDir/snapshots, newest
// last, read-only. A file that does not verify is a problem.
func inspectSnapshots(rep *inspectReport) error {
	dir := filepath.Join(rep.DataDir, storage.SnapshotsDir)
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect %s: %w", dir, err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".snap") || !e.Type().IsRegular() {
			continue
		}
		info := snapshotInfo{File: e.Name()}
		m, err := snapshot.VerifyFile(filepath.Join(dir, e.Name()), rep.ClusterID)
		info.Index, info.Term, info.Bytes = m.Index, m.Term, m.Size
		if err != nil {
			info.Error = err.Error()
			rep.Problems = append(rep.Problems, err.Error())
		} else {
			info.Verified = true
		}
		rep.Snapshots = append(rep.Snapshots, info)
	}
	return nil
}

func inspectCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "inspect",
		Usage: "check a stopped broker's data directory offline, read-only (exit 1 if problems are found)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagDataDir, Value: config.Default().DataDir, EnvVars: envVar(flagDataDir), Usage: "the broker's data directory"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("inspect takes no arguments (did you mean --data-dir %s?)", c.Args().First())
			}
			dir := c.String(flagDataDir)
			srep, err := storage.Inspect(dir)
			if err != nil {
				return fmt.Errorf("inspect %s: %w", dir, err)
			}
			rep := inspectReport{Report: srep, Snapshots: []snapshotInfo{}}
			if err := inspectSnapshots(&rep); err != nil {
				return err
			}
			if c.Bool(flagJSON) {
				err = writeJSON(e.stdout, rep)
			} else {
				err = writeInspectText(e, rep)
			}
			if err != nil {
				return err
			}
			if !rep.OK() {
				return nof("%s: %d problems found: %s", dir, len(rep.Problems), strings.Join(rep.Problems, "; "))
			}
			return nil
		},
	}
}

func writeInspectText(e env, r inspectReport) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, kv := range [][2]any{
		{"data dir", r.DataDir}, {"raft.db", r.RaftDB}, {"state.db", r.StateDB}, {"cluster id", r.ClusterID},
		{"term", r.Term}, {"vote", r.Vote}, {"commit hint", fmt.Sprintf("%d (last persisted; may lag the applied index)", r.Commit)}, {"voters", fmt.Sprint(r.Voters)},
		{"snapshot index", r.SnapshotIndex}, {"log", fmt.Sprintf("%d entries, %d..%d", r.Entries, r.FirstIndex, r.LastIndex)},
		{"checksum errors", r.ChecksumErrors}, {"applied index", r.AppliedIndex}, {"sessions", r.Sessions},
	} {
		fmt.Fprintf(tw, "%s:\t%v\n", kv[0], kv[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\ntopics: %d\n", len(r.Topics))
	if len(r.Topics) > 0 {
		tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tDEPTH\tBYTES")
		for _, t := range r.Topics {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", t.Name, t.Depth, t.Bytes)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "\nsnapshots: %d\n", len(r.Snapshots))
	if len(r.Snapshots) > 0 {
		tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FILE\tINDEX\tTERM\tBYTES\tVERIFIED")
		for _, s := range r.Snapshots {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%v\n", s.File, s.Index, s.Term, s.Bytes, s.Verified)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Problems) == 0 {
		_, err := fmt.Fprintln(e.stdout, "\nno problems found")
		return err
	}
	fmt.Fprintf(e.stdout, "\nproblems: %d\n", len(r.Problems))
	for _, p := range r.Problems {
		fmt.Fprintf(e.stdout, "  - %s\n", p)
	}
	return nil
}
