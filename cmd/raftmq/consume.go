package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client"
)

// consume --follow waits this long per long poll unless --wait says
// otherwise: a pop (destructive) in flight when interrupted completes, so
// its wait bounds how long an interrupt takes; a receive is abandoned at
// once (its lease ends and the message is delivered again).
const (
	followPopWait     = 5 * time.Second
	followReceiveWait = wire.MaxWaitMs * time.Millisecond
	// A broker that answers a long poll early (none does) is asked again
	// after at least this long, so a follow loop never spins.
	followMinWait = 50 * time.Millisecond
	followMaxWait = time.Second
	// execNackDelay keeps a message --exec failed on away for a moment, so
	// a failing command does not spin on it.
	execNackDelay = time.Second
)

func consumeCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "consume",
		Usage: "pop (or receive and ack) messages from a topic and print each on its own line",
		Description: "Pops -n messages (0 = until the queue is empty); exit 1 when none was there.\n" +
			"--ack receives each message under a lease, prints it, then acks it: a crash in between\n" +
			"loses nothing (the lease ends and the message is delivered again).\n" +
			"--exec CMD runs `sh -c CMD` once per message with the message on stdin, and acks it when\n" +
			"CMD exits 0, nacks it otherwise (it is ready again after 1s). Exit 1 if any was not acked.\n" +
			"--wait waits for a message to arrive; --follow keeps consuming until interrupted, waiting\n" +
			"on the broker (long polling). A pop in flight when interrupted completes and is printed.",
		Flags: append(clientFlags(),
			topicFlag("topic to consume from (required)"),
			&cli.IntFlag{Name: "n", Value: 1, Usage: "messages to consume; 0 = until empty (or forever with --follow)"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep consuming until interrupted, waiting on the broker for messages"},
			&cli.BoolFlag{Name: "ack", Usage: "receive under a lease, print, then ack"},
			&cli.StringFlag{Name: "exec", Usage: "run `CMD` (sh -c) per message, message on stdin; ack on exit 0, nack otherwise"},
			&cli.DurationFlag{Name: "lease", Value: wire.DefaultLeaseMs * time.Millisecond, Usage: "with --ack/--exec: how long a message stays invisible to others (100ms to 12h)"},
			&cli.DurationFlag{Name: "wait", Usage: "wait up to this long (at most 20s) for a message (default 0; 5s with --follow, 20s with --follow --ack/--exec)"},
		),
		Action: func(c *cli.Context) error {
			topic, err := requireTopic(c)
			if err != nil {
				return err
			}
			o, err := consumeOptionsOf(c, topic)
			if err != nil {
				return err
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx := c.Context
			if o.follow {
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			o.print = func(d client.Delivery) error {
				if c.Bool(flagJSON) {
					out := map[string]any{"topic": topic, "message": d.Message}
					if d.Receipt != "" {
						out["deliveries"] = d.Deliveries
					}
					return writeJSON(e.stdout, out)
				}
				_, err := fmt.Fprintln(e.stdout, d.Message)
				return err
			}
			o.stdout, o.stderr = e.stdout, e.stderr
			got, failed, err := consume(ctx, cl, &o)
			if err != nil {
				return err
			}
			if failed > 0 && !o.follow {
				return nof("%d of %d %s not acked; last: %s", failed, got, plural(got, "message"), o.lastFailure)
			}
			if got == 0 && !o.follow {
				return emptyOrMissing(c.Context, cl, topic)
			}
			if o.n > 0 && got < o.n && !o.follow {
				fmt.Fprintf(e.stderr, "raftmq: queue %q emptied after %d of %d messages\n", topic, got, o.n)
			}
			return nil
		},
	}
}

// consumeOptions is what consume does.
type consumeOptions struct {
	topic  string
	n      int
	follow bool
	leased bool // receive + ack/nack instead of pop
	exec   string
	lease  time.Duration
	wait   time.Duration
	print  func(client.Delivery) error // prints a message (not with exec)
	stdout io.Writer                   // exec's stdout and stderr
	stderr io.Writer
	// lastFailure says why the last message not acked was not; with
	// --follow each is reported as it happens.
	lastFailure string
}

func consumeOptionsOf(c *cli.Context, topic string) (consumeOptions, error) {
	o := consumeOptions{topic: topic, n: c.Int("n"), follow: c.Bool("follow"), exec: c.String("exec"),
		lease: c.Duration("lease"), wait: c.Duration("wait")}
	o.leased = c.Bool("ack") || o.exec != ""
	switch {
	case o.n < 0:
		return o, usagef("-n %d must be >= 0", o.n)
	case c.NArg() != 0:
		return o, usagef("consume takes no arguments (did you mean --topic %s?)", c.Args().First())
	case c.IsSet("exec") && strings.TrimSpace(o.exec) == "":
		return o, usagef("--exec needs a command")
	case c.IsSet("lease") && !o.leased:
		return o, usagef("--lease needs --ack or --exec (a plain consume pops, with no lease)")
	case o.leased && (o.lease < wire.MinLeaseMs*time.Millisecond || o.lease > wire.MaxLeaseMs*time.Millisecond):
		return o, usagef("--lease %s is out of range: 100ms to 12h", o.lease)
	case o.wait < 0 || o.wait > wire.MaxWaitMs*time.Millisecond:
		return o, usagef("--wait %s is out of range: 0 to 20s", o.wait)
	}
	if o.follow && !c.IsSet("wait") {
		o.wait = followPopWait
		if o.leased {
			o.wait = followReceiveWait
		}
	}
	return o, nil
}

// consume takes up to o.n messages (0 = no limit) and handles each. Without
// follow it stops at the first "no"; with follow it long-polls until ctx
// is done. Pops run on a context the interrupt does not cancel, so a
// message popped on the server is never dropped here; a receive may be
// abandoned, its lease ends and the message is delivered again.
//
// got counts the messages handled, failed those of them not acked.
func consume(ctx context.Context, cl *client.Client, o *consumeOptions) (got, failed int, err error) {
	noCancel := context.WithoutCancel(ctx)
	backoff := followMinWait
	checked := false
	for o.n == 0 || got < o.n {
		if ctx.Err() != nil {
			return got, failed, nil
		}
		start := time.Now()
		var d client.Delivery
		var ok bool
		var err error
		if o.leased {
			d, ok, err = cl.Receive(ctx, o.topic, client.ReceiveOptions{Lease: o.lease, Wait: o.wait})
			if ctx.Err() != nil {
				return got, failed, nil // interrupted: whatever was leased comes back
			}
		} else {
			d.Message, ok, err = cl.PopWait(noCancel, o.topic, o.wait)
		}
		if err != nil {
			return got, failed, clientError(cl.Servers(), err)
		}
		if ok {
			acked, err := handle(noCancel, cl, o, d)
			if err != nil {
				return got, failed, err
			}
			got++
			if !acked {
				failed++
			}
			backoff = followMinWait
			continue
		}
		if !o.follow {
			return got, failed, nil
		}
		if !checked { // a missing topic will not fill up: say so
			if err := mustExist(noCancel, cl, o.topic); err != nil {
				return got, failed, err
			}
			checked = true
		}
		if time.Since(start) >= o.wait/2 && o.wait > 0 {
			continue // the broker waited for us: ask again at once
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return got, failed, nil
		case <-t.C:
		}
		backoff = min(2*backoff, followMaxWait)
	}
	return got, failed, nil
}

// handle prints or runs one message and, when leased, acks or nacks it.
// acked is false when a leased message was nacked or its ack came too late.
func handle(ctx context.Context, cl *client.Client, o *consumeOptions, d client.Delivery) (acked bool, err error) {
	if !o.leased {
		return true, o.print(d)
	}
	if o.exec == "" {
		if err := o.print(d); err != nil {
			return false, err
		}
		return settle(ctx, cl, o, d, true)
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", o.exec)
	cmd.Stdin = strings.NewReader(d.Message)
	cmd.Stdout, cmd.Stderr = o.stdout, o.stderr
	cmd.Env = append(os.Environ(), fmt.Sprintf("RAFTMQ_TOPIC=%s", o.topic), fmt.Sprintf("RAFTMQ_DELIVERIES=%d", d.Deliveries))
	runErr := cmd.Run()
	var exitErr *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exitErr) {
		return false, &exitError{exitOther, fmt.Sprintf("--exec %q: %v", o.exec, runErr)}
	}
	if runErr != nil {
		o.failed(fmt.Sprintf("%q exited %d; the message was nacked (delivery %d)", o.exec, exitErr.ExitCode(), d.Deliveries))
	}
	return settle(ctx, cl, o, d, runErr == nil)
}

// failed records why a message was not acked.
func (o *consumeOptions) failed(why string) {
	o.lastFailure = why
	if o.follow {
		fmt.Fprintf(o.stderr, "raftmq: %s\n", why)
	}
}

func settle(ctx context.Context, cl *client.Client, o *consumeOptions, d client.Delivery, ack bool) (bool, error) {
	var err error
	if ack {
		err = cl.Ack(ctx, o.topic, d.Receipt)
	} else {
		err = cl.Nack(ctx, o.topic, d.Receipt, execNackDelay)
	}
	switch {
	case errors.Is(err, client.ErrStaleReceipt):
		o.failed(fmt.Sprintf("the lease ended before the %s (raise --lease); the message will be delivered again", map[bool]string{true: "ack", false: "nack"}[ack]))
		return false, nil
	case err != nil:
		return false, clientError(cl.Servers(), err)
	}
	return ack, nil
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
