package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/config"
)

const (
	flagID       = "id"
	flagCatchUp  = "catch-up-timeout"
	pollInterval = 250 * time.Millisecond
	// promoteLag is how far behind the leader's last index a learner may be
	// when member add asks to promote it (the leader checks again, with
	// raftlog.DefaultMaxPromoteLag).
	promoteLag = 1000
)

func memberCommand(e env) *cli.Command {
	idFlag := &cli.IntFlag{Name: flagID, Usage: "the node's `ID` (its index in the cluster file, or its \"id\")", Required: true}
	return &cli.Command{
		Name:  "member",
		Usage: "list, add or remove the cluster's members",
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("unknown member command %q: use `member list`, `member add --id N` or `member remove --id N`", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "show each member's id, addresses, role, match index and lag (the leader's view)",
				Flags: clientFlags(),
				Action: func(c *cli.Context) error {
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					defer cl.Close()
					ms, err := cl.Members(c.Context)
					if err != nil {
						return clientError(cl.Servers(), err)
					}
					if c.Bool(flagJSON) {
						return writeJSON(e.stdout, map[string]any{"members": ms})
					}
					tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tCLIENT\tPEER\tROLE\tMATCH\tLAG")
					for _, m := range ms {
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\n", m.ID, net.JoinHostPort(m.IP, strconv.Itoa(m.Port)),
							net.JoinHostPort(m.IP, strconv.Itoa(m.InternalPort)), m.Role, m.MatchIndex, m.Lag)
					}
					return tw.Flush()
				},
			},
			{
				Name: "add",
				Usage: "add node --id (its addresses come from --config) as a learner, wait until it has caught up, " +
					"and promote it to voter; if it does not catch up in time, remove it again",
				Flags: append(clientFlags(), idFlag,
					&cli.DurationFlag{Name: flagCatchUp, Value: time.Minute, Usage: "give up (and remove the learner) if it has not caught up by then"}),
				Action: func(c *cli.Context) error {
					path := c.Path(flagConfig)
					if path == "" {
						return usagef("member add needs --config FILE: the new node's addresses come from it")
					}
					file, err := config.LoadCluster(path)
					if err != nil {
						return usagef("%v", err)
					}
					id := c.Int(flagID)
					i, ok := file.Index(id)
					if !ok {
						return usagef("--config %s has no node with id %d (ids %v)", path, id, file.NodeIDs())
					}
					if file.ClusterID == "" {
						return usagef("--config %s has no \"cluster_id\": a cluster whose membership changes needs one, since the id derived from the "+
							"addresses changes with them; set it to the running cluster's id (logged as cluster_id when a broker starts) in every node's file", path)
					}
					a := file.Addresses[i]
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					defer cl.Close()
					return addMember(c.Context, e, cl, wire.MemberSpec{ID: id, IP: a.IP, Port: a.Port, InternalPort: a.InternalPort},
						c.Duration(flagCatchUp), c.Bool(flagJSON))
				},
			},
			{
				Name:  "remove",
				Usage: "remove node --id from the cluster (the leader too); it stops, and its id never comes back",
				Flags: append(clientFlags(), idFlag),
				Action: func(c *cli.Context) error {
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					defer cl.Close()
					id := c.Int(flagID)
					if err := cl.RemoveMember(c.Context, id); err != nil {
						return memberError(cl, err)
					}
					if c.Bool(flagJSON) {
						return writeJSON(e.stdout, map[string]any{"id": id, "removed": true})
					}
					fmt.Fprintf(e.stdout, "removed node %d\n", id)
					return nil
				},
			},
		},
	}
}

// memberError reports a refused change as a "no" (exit 1), anything else
// as clientError does.
func memberError(cl *client.Client, err error) error {
	var se *client.ServerError
	if errors.As(err, &se) && (se.Code == wire.ErrMemberRefused || se.Code == wire.ErrBadRequest) {
		return nof("%v", err)
	}
	return clientError(cl.Servers(), err)
}

// addMember adds m as a learner, shows its catch-up, and promotes it once
// it is within promoteLag of the leader. If it has not become a voter
// within catchUp, it removes the learner again and fails.
func addMember(ctx context.Context, e env, cl *client.Client, m wire.MemberSpec, catchUp time.Duration, asJSON bool) error {
	if err := cl.AddLearner(ctx, m); err != nil {
		return memberError(cl, err)
	}
	fmt.Fprintf(e.stderr, "added node %d as a learner; waiting for it to catch up (at most %v)\n", m.ID, catchUp)
	deadline := time.Now().Add(catchUp)
	lastLag := int64(-1)
	for {
		ms, err := cl.Members(ctx)
		if err == nil {
			for _, x := range ms {
				if x.ID != m.ID {
					continue
				}
				if int64(x.Lag) != lastLag {
					fmt.Fprintf(e.stderr, "node %d: match index %d, %d entries behind\n", m.ID, x.MatchIndex, x.Lag)
					lastLag = int64(x.Lag)
				}
				if x.MatchIndex > 0 && x.Lag <= promoteLag {
					perr := cl.PromoteMember(ctx, m.ID)
					var se *client.ServerError
					switch {
					case perr == nil:
						if asJSON {
							return writeJSON(e.stdout, map[string]any{"id": m.ID, "role": wire.RoleVoter})
						}
						fmt.Fprintf(e.stdout, "node %d is a voter\n", m.ID)
						return nil
					case errors.As(perr, &se) && se.Code == wire.ErrMemberRefused:
						// Not close enough yet, or a change in progress: poll on.
					default:
						return clientError(cl.Servers(), perr)
					}
				}
			}
		}
		if time.Now().After(deadline) {
			rerr := cl.RemoveMember(context.WithoutCancel(ctx), m.ID)
			if rerr != nil {
				return &exitError{exitOther, fmt.Sprintf("node %d did not catch up within %v, and removing the learner again failed: %v; "+
					"remove it with `raftmq member remove --id %d`", m.ID, catchUp, rerr, m.ID)}
			}
			return nof("node %d did not catch up within %v (is it running, started with `raftmq serve --join`?); "+
				"it was removed again and the cluster is as it was: start it with a new id to retry", m.ID, catchUp)
		}
		select {
		case <-ctx.Done():
			return clientError(cl.Servers(), ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}
