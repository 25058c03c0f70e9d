package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/raftmq/raftmq/client/bench"
)

const defaultBenchDuration = 5 * time.Second

func benchCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure put throughput, latency and messages per fsync against a running cluster",
		Description: "For each --clients count: that many workers (one client each) put --size byte messages\n" +
			"for --duration or until --messages puts are done. Also measures the raw fsync rate of --fsync-dir\n" +
			"(put it on the brokers' disk) and prints puts/s ÷ fsyncs/s. Messages stay queued in --topic.",
		Flags: append(clientFlags(),
			&cli.IntSliceFlag{Name: "clients", Value: cli.NewIntSlice(1, 32), EnvVars: envVar("bench-clients"), Usage: "client counts, one run each"},
			&cli.IntFlag{Name: "size", Value: 256, EnvVars: envVar("bench-size"), Usage: "message size in bytes"},
			&cli.IntFlag{Name: "messages", EnvVars: envVar("bench-messages"), Usage: "puts per run (instead of --duration)"},
			&cli.DurationFlag{Name: "duration", EnvVars: envVar("bench-duration"), Usage: fmt.Sprintf("length of each run (default %s unless --messages)", defaultBenchDuration)},
			&cli.StringFlag{Name: flagTopic, Value: "bench", EnvVars: envVar("bench-topic"), Usage: "topic to put to (created if missing)"},
			&cli.PathFlag{Name: "fsync-dir", Value: ".", EnvVars: envVar("fsync-dir"), Usage: "directory whose filesystem's fsync rate is measured"},
			&cli.IntFlag{Name: "fsync-count", Value: 200, EnvVars: envVar("fsync-count"), Usage: "4 KiB writes + fdatasync in the probe"},
		),
		Subcommands: []*cli.Command{benchDeepCommand(e)},
		Action: func(c *cli.Context) error {
			cfg, err := benchConfig(c)
			if err != nil {
				return err
			}
			return runBench(c, e, cfg.Client.Servers, func(ctx context.Context, progress func(string, ...any)) (bench.Report, error) {
				return bench.Run(ctx, cfg, func(r bench.Result) {
					progress("clients=%d: %d puts, %.0f puts/s", r.Clients, r.Puts, r.PutsPerSec)
				})
			})
		},
	}
}

// runBench runs a benchmark until it ends or Ctrl-C, prints run's progress
// lines on stderr unless --json, and writes the report: aligned text, or
// JSON with --json.
func runBench[R interface{ WriteText(io.Writer) error }](c *cli.Context, e env, servers []string,
	run func(ctx context.Context, progress func(format string, args ...any)) (R, error)) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	jsonOut := c.Bool(flagJSON)
	rep, err := run(ctx, func(format string, args ...any) {
		if !jsonOut {
			fmt.Fprintf(e.stderr, format+"\n", args...)
		}
	})
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) || errors.Is(err, context.Canceled) {
			return err
		}
		return clientError(servers, err)
	}
	if jsonOut {
		return writeJSON(e.stdout, rep)
	}
	return rep.WriteText(e.stdout)
}

func benchConfig(c *cli.Context) (bench.Config, error) {
	if c.NArg() != 0 {
		return bench.Config{}, usagef("bench takes no arguments")
	}
	opts, err := clientOptions(c)
	if err != nil {
		return bench.Config{}, err
	}
	cfg := bench.Config{
		Client:     opts,
		Clients:    c.IntSlice("clients"),
		SizeBytes:  c.Int("size"),
		Messages:   c.Int("messages"),
		Duration:   c.Duration("duration"),
		Topic:      c.String(flagTopic),
		FsyncDir:   c.Path("fsync-dir"),
		FsyncCount: c.Int("fsync-count"),
		Seed:       uint64(time.Now().UnixNano()),
	}
	switch {
	case cfg.Messages != 0 && cfg.Duration != 0:
		return cfg, usagef("give --messages or --duration, not both")
	case cfg.Messages < 0 || cfg.Duration < 0:
		return cfg, usagef("--messages and --duration must be positive")
	case cfg.Messages == 0 && cfg.Duration == 0:
		cfg.Duration = defaultBenchDuration
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("%v", err)
	}
	return cfg, nil
}
