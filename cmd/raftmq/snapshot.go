package main

import (
	"fmt"
	"sync"
	"text/tabwriter"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client"
	"github.com/urfave/cli/v2"
)

// snapshotRow is one server's answer to `raftmq snapshot`.
type snapshotRow struct {
	Server string `json:"server"`
	Index  uint64 `json:"index,omitempty"`
	Error  string `json:"error,omitempty"`
}

var snapshotFrame = wire.EncodeRequest(wire.Request{Type: wire.TypeSnapshot, Method: wire.MethodPut})

func snapshotCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "make every given server take a snapshot of its state now and compact its log (exit 3 if one cannot)",
		Flags: clientFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("snapshot takes no arguments")
			}
			opts, err := clientOptions(c)
			if err != nil {
				return err
			}
			addrs := opts.Servers
			rows := make([]snapshotRow, len(addrs))
			var wg sync.WaitGroup
			for i, a := range addrs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rows[i] = snapshotOne(a, c.Duration(flagTimeout), opts.Curve)
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
// (the request is idempotent, but the operator should see who failed),
// through CURVE when curve is set.
func snapshotOne(server string, timeout time.Duration, curve *client.Curve) snapshotRow {
	row := snapshotRow{Server: server}
	fail := func(err error) snapshotRow {
		row.Error = err.Error()
		return row
	}
	s, err := zmq.NewSocket(zmq.REQ)
	if err != nil {
		return fail(err)
	}
	defer s.Close()
	if err := s.SetLinger(0); err != nil {
		return fail(err)
	}
	if err := s.SetRcvtimeo(timeout); err != nil {
		return fail(err)
	}
	if curve != nil {
		if err := curve.Secure(s, server); err != nil {
			return fail(err)
		}
	}
	if err := s.Connect("tcp://" + server); err != nil {
		return fail(err)
	}
	if _, err := s.SendBytes(snapshotFrame, 0); err != nil {
		return fail(err)
	}
	raw, err := s.RecvBytes(0)
	if err != nil {
		return fail(fmt.Errorf("no answer within %s (is a broker running there?): %w", timeout, err))
	}
	reply, err := wire.DecodeResponse(raw)
	if err != nil {
		return fail(err)
	}
	if !reply.Success || reply.Index == nil {
		return fail(fmt.Errorf("%s: %s", reply.Error, reply.Detail))
	}
	row.Index = *reply.Index
	return row
}
