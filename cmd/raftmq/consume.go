package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/raftmq/raftmq/client"
)

// Backoff of consume --follow while the queue is empty.
const (
	followMinWait = 50 * time.Millisecond
	followMaxWait = time.Second
)

func consumeCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "consume",
		Usage: "pop messages from a topic and print each on its own line",
		Description: "Pops -n messages (0 = until the queue is empty); exit 1 when none was there.\n" +
			"--follow keeps polling until interrupted. A pop in flight when interrupted completes and is printed.",
		Flags: append(clientFlags(),
			topicFlag("topic to pop from (required)"),
			&cli.IntFlag{Name: "n", Value: 1, Usage: "messages to pop; 0 = until empty (or forever with --follow)"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep polling with backoff until interrupted"},
		),
		Action: func(c *cli.Context) error {
			topic, err := requireTopic(c)
			if err != nil {
				return err
			}
			n, follow := c.Int("n"), c.Bool("follow")
			if n < 0 {
				return usagef("-n %d must be >= 0", n)
			}
			if c.NArg() != 0 {
				return usagef("consume takes no arguments (did you mean --topic %s?)", c.Args().First())
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx := c.Context
			if follow {
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			got, err := consume(ctx, cl, topic, n, follow, func(msg string) error {
				if c.Bool(flagJSON) {
					return writeJSON(e.stdout, map[string]string{"topic": topic, "message": msg})
				}
				_, err := fmt.Fprintln(e.stdout, msg)
				return err
			})
			if err != nil {
				return err
			}
			if got == 0 && !follow {
				return emptyOrMissing(c.Context, cl, topic)
			}
			if n > 0 && got < n && !follow {
				fmt.Fprintf(e.stderr, "raftmq: queue %q emptied after %d of %d messages\n", topic, got, n)
			}
			return nil
		},
	}
}

// consume pops up to n messages (0 = no limit) and passes each to out.
// Without follow it stops at the first "no"; with follow it waits with
// backoff until ctx is done. Pops run on a context that the interrupt does
// not cancel, so a message popped on the server is never dropped here.
func consume(ctx context.Context, cl *client.Client, topic string, n int, follow bool, out func(string) error) (int, error) {
	popCtx := context.WithoutCancel(ctx)
	got := 0
	wait := followMinWait
	checked := false
	for n == 0 || got < n {
		if ctx.Err() != nil {
			return got, nil
		}
		msg, ok, err := cl.Pop(popCtx, topic)
		if err != nil {
			return got, clientError(cl.Servers(), err)
		}
		if ok {
			if err := out(msg); err != nil {
				return got, err
			}
			got++
			wait = followMinWait
			continue
		}
		if !follow {
			return got, nil
		}
		if !checked { // a missing topic will not fill up: say so
			if err := mustExist(popCtx, cl, topic); err != nil {
				return got, err
			}
			checked = true
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return got, nil
		case <-t.C:
		}
		wait = min(2*wait, followMaxWait)
	}
	return got, nil
}

func mustExist(ctx context.Context, cl *client.Client, topic string) error {
	topics, err := cl.ListTopics(ctx)
	if err != nil {
		return clientError(cl.Servers(), err)
	}
	if !slices.Contains(topics, topic) {
		return nof("no such topic %q: create it with `raftmq topic create %s`", topic, topic)
	}
	return nil
}

// emptyOrMissing tells which "no" a first pop got.
func emptyOrMissing(ctx context.Context, cl *client.Client, topic string) error {
	if err := mustExist(ctx, cl, topic); err != nil {
		return err
	}
	return nof("queue %q is empty", topic)
}
