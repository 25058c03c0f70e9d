package main

import (
	"context"
	"fmt"
	"sync"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/raftmq/raftmq/client"
)

// snapshotRow is one server's answer to `raftmq snapshot`.
type snapshotRow struct {
	Server string `json:"server"`
	Index  uint64 `json:"index,omitempty"`
	Error  string `json:"error,omitempty"`
}

func snapshotCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "make every given server make its state durable as its snapshot now and compact its log (exit 3 if one cannot)",
		Flags: clientFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("snapshot takes no arguments")
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			addrs := cl.Servers()
			rows := make([]snapshotRow, len(addrs))
			var wg sync.WaitGroup
			for i, a := range addrs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rows[i] = snapshotOne(c.Context, cl, a)
				}()
			}
			wg.Wait()
			if c.Bool(flagJSON) {
				err = writeJSON(e.stdout, rows)
			} else {
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SERVER\tSNAPSHOT INDEX\tERROR")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%d\t%s\n", r.Server, r.Index, r.Error)
				}
				err = tw.Flush()
			}
			if err != nil {
				return err
			}
			for _, r := range rows {
				if r.Error != "" {
					return &exitError{exitUnreachable, fmt.Sprintf("%s: %s", r.Server, r.Error)}
				}
			}
			return nil
		},
	}
}

// snapshotOne asks one server to snapshot itself: one request, no retry
// (the request is idempotent, but the operator should see who failed).
func snapshotOne(ctx context.Context, cl *client.Client, server string) snapshotRow {
	row := snapshotRow{Server: server}
	idx, err := cl.Snapshot(ctx, server)
	if err != nil {
		row.Error = err.Error()
		return row
	}
	row.Index = idx
	return row
}
