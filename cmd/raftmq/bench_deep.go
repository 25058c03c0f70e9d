package main

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/raftmq/raftmq/client/bench"
)

func benchDeepCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "deep",
		Usage: "measure put and pop rates and broker memory as one queue grows deep",
		Description: "Creates --topic, puts and pops one --step to measure an empty queue, then puts --messages\n" +
			"in steps of --step (nothing consumed) and pops one step at full depth. After each step it\n" +
			"prints the rate, p99 and the RSS and anonymous RSS of each --pids process (read from /proc).",
		Flags: append(clientFlags(),
			&cli.IntFlag{Name: "clients", Value: 64, EnvVars: envVar("bench-clients"), Usage: "workers, one request in flight each"},
			&cli.IntFlag{Name: "size", Value: 256, EnvVars: envVar("bench-size"), Usage: "message size in bytes"},
			&cli.IntFlag{Name: "messages", Value: 1_000_000, EnvVars: envVar("bench-messages"), Usage: "queue depth to reach"},
			&cli.IntFlag{Name: "step", Value: 50_000, EnvVars: envVar("bench-step"), Usage: "messages per measured step"},
			&cli.StringFlag{Name: flagTopic, Value: "deep", EnvVars: envVar("bench-topic"), Usage: "topic to fill (must not exist)"},
			&cli.IntSliceFlag{Name: "pids", EnvVars: envVar("bench-pids"), Usage: "broker process ids whose memory is sampled after each step"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("bench deep takes no arguments")
			}
			opts, err := clientOptions(c)
			if err != nil {
				return err
			}
			cfg := bench.DeepConfig{
				Client: opts, Clients: c.Int("clients"), SizeBytes: c.Int("size"), Messages: c.Int("messages"),
				Step: c.Int("step"), Topic: c.String(flagTopic), PIDs: c.IntSlice("pids"), Seed: uint64(time.Now().UnixNano()),
			}
			if err := cfg.Validate(); err != nil {
				return usagef("%v", err)
			}
			return runBench(c, e, cfg.Client.Servers, func(ctx context.Context, progress func(string, ...any)) (bench.DeepReport, error) {
				return bench.RunDeep(ctx, cfg, func(s bench.DeepStep) {
					progress("%s to depth %d: %.0f/s", s.Phase, s.DepthAfter, s.PerSec)
				})
			})
		},
	}
}
