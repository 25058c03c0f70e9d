package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client"
)

// statusRow is one server in `status --json`.
type statusRow struct {
	Server string       `json:"server"`
	Status *wire.Status `json:"status,omitempty"`
	Error  string       `json:"error,omitempty"`
}

func statusCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show every server's role, term, leader and log indexes (exit 3 if none answers)",
		Flags: clientFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("status takes no arguments")
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			nodes, err := cl.StatusAll(c.Context)
			if err != nil {
				return clientError(cl.Servers(), err)
			}
			if c.Bool(flagJSON) {
				rows := make([]statusRow, len(nodes))
				for i, n := range nodes {
					rows[i] = statusRow{Server: n.Server}
					if n.Err != nil {
						rows[i].Error = n.Err.Error()
					} else {
						rows[i].Status = &n.Status
					}
				}
				if err := writeJSON(e.stdout, rows); err != nil {
					return err
				}
			} else if err := writeStatusTable(e, nodes); err != nil {
				return err
			}
			for _, n := range nodes {
				if n.Err == nil {
					return nil
				}
			}
			return clientError(cl.Servers(), fmt.Errorf("no server answered: %w", nodes[0].Err))
		},
	}
}

func writeStatusTable(e env, nodes []client.NodeStatus) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tTERM\tLEADER\tCOMMIT\tAPPLIED\tLAST INDEX\tDATA\tDISK FREE\tHEAP\tANON RSS\tSNAPSHOT")
	for _, n := range nodes {
		if n.Err != nil {
			fmt.Fprintf(tw, "-\t%s\tunreachable\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t(%v)\n", n.Server, oneLine(n.Err.Error()))
			continue
		}
		s := n.Status
		leader := s.Leader
		if leader == "" {
			leader = "-"
		}
		free := humanBytes(s.DiskFreeBytes) + " of " + humanBytes(s.DiskTotalBytes)
		if s.DiskFull {
			free += " FULL (" + s.DiskFullReason + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", s.ID, n.Server, s.Role, s.Term, leader, s.Commit, s.Applied, s.LastIndex,
			humanBytes(s.DataBytes), free, knownBytes(s.HeapBytes), knownBytes(s.AnonBytes), snapshotCell(s))
	}
	return tw.Flush()
}

// knownBytes is humanBytes, or "-" for 0 (unknown).
func knownBytes(b uint64) string {
	if b == 0 {
		return "-"
	}
	return humanBytes(b)
}

// snapshotCell says what the node's snapshot machinery is doing.
func snapshotCell(s wire.Status) string {
	var out []string
	if s.SnapshotInProgress {
		out = append(out, "writing "+humanBytes(uint64(max(s.SnapshotBytes, 0))))
	}
	if s.SnapshotSends > 0 {
		out = append(out, fmt.Sprintf("sending to %d", s.SnapshotSends))
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ", ")
}

// humanBytes formats a byte count with a binary unit: 512 B, 3.0 MiB.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
