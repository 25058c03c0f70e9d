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
	fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tTERM\tLEADER\tCOMMIT\tAPPLIED\tLAST INDEX\tHEAP\tANON RSS\tSNAPSHOT")
	for _, n := range nodes {
		if n.Err != nil {
			fmt.Fprintf(tw, "-\t%s\tunreachable\t-\t-\t-\t-\t-\t-\t-\t-\t(%v)\n", n.Server, oneLine(n.Err.Error()))
			continue
		}
		s := n.Status
		leader := s.Leader
		if leader == "" {
			leader = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", s.ID, n.Server, s.Role, s.Term, leader, s.Commit, s.Applied, s.LastIndex,
			mib(s.HeapBytes), mib(s.AnonBytes), snapshotCell(s))
	}
	return tw.Flush()
}

// mib prints a byte count in MiB; "-" when unknown (0).
func mib(b uint64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// snapshotCell says what the node's snapshot machinery is doing.
func snapshotCell(s wire.Status) string {
	var out []string
	if s.SnapshotInProgress {
		out = append(out, "writing "+mib(uint64(max(s.SnapshotBytes, 0))))
	}
	if s.SnapshotSends > 0 {
		out = append(out, fmt.Sprintf("sending to %d", s.SnapshotSends))
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ", ")
}
