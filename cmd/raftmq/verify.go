package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/raftmq/raftmq/internal/verify"
)

// verifyCommand runs the fault-injection suite against freshly started
// brokers (this binary, or --bin).
func verifyCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "run the fault-injection suite on fresh local brokers; exit 1 on any violation",
		Description: "Starts --nodes brokers (in network namespaces when run as root), drives producers and consumers\n" +
			"on 16 topics while killing, pausing, partitioning nodes and cutting their power (power-cut: each data dir\n" +
			"on a FUSE filesystem that forgets what was not fsynced; needs root and /dev/fuse), seeded by --seed;\n" +
			"then heals, drains and checks:\n" +
			"linearizability per topic, no acknowledged message lost or duplicated, identical nodes, no minority ack.\n" +
			"Each round writes summary.txt, report.json, history.jsonl and node logs under --out.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nodes", Value: 3, Usage: "brokers per cluster: 3 or 5"},
			&cli.DurationFlag{Name: "duration", Value: 30 * time.Second, Usage: "workload under faults per round, before healing"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the first round (0 = random, printed); round k uses seed+k"},
			&cli.StringFlag{Name: "faults", Value: strings.Join(verify.AllFamilies, ","), Usage: "fault families: " + strings.Join(verify.AllFamilies, ",") + "; opt-in: " + verify.FamilyPowerCut + " (needs root and /dev/fuse), " +
				verify.FamilyMembership + " (replace members; loopback, no --curve)"},
			&cli.IntFlag{Name: "rounds", Value: 1, Usage: "rounds, each on a fresh cluster (0 = until --total)"},
			&cli.DurationFlag{Name: "total", Usage: "stop starting rounds after this long (with --rounds 0)"},
			&cli.BoolFlag{Name: "alternate-nodes", Usage: "alternate 3- and 5-node rounds"},
			&cli.PathFlag{Name: "out", Usage: "directory for the run dirs and summary.txt (default: a new temp dir)"},
			&cli.PathFlag{Name: "bin", Usage: "broker binary (default: this raftmq)"},
			&cli.BoolFlag{Name: "loopback", Usage: "run on 127.0.0.1 without network namespaces (no network faults)"},
			&cli.BoolFlag{Name: "curve", Usage: "run the brokers with CURVE on both ports (fresh keys per round; the workload uses a client key)"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("verify takes no arguments")
			}
			cfg := verify.DefaultConfig()
			cfg.Nodes, cfg.Duration, cfg.Loopback, cfg.Curve = c.Int("nodes"), c.Duration("duration"), c.Bool("loopback"), c.Bool("curve")
			if cfg.Nodes != 3 && cfg.Nodes != 5 {
				return usagef("--nodes %d: use 3 or 5", cfg.Nodes)
			}
			cfg.Seed = c.Uint64("seed")
			if cfg.Seed == 0 {
				cfg.Seed = rand.Uint64N(1<<32) + 1
			}
			cfg.Families = nil
			for _, f := range strings.Split(c.String("faults"), ",") {
				if f = strings.TrimSpace(f); f != "" {
					cfg.Families = append(cfg.Families, f)
				}
			}
			cfg.Bin = c.Path("bin")
			if cfg.Bin == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("verify: find this binary: %w (pass --bin)", err)
				}
				cfg.Bin = exe
			}
			out := c.Path("out")
			if out == "" {
				d, err := os.MkdirTemp("", "raftmq-verify-")
				if err != nil {
					return fmt.Errorf("verify: %w", err)
				}
				out = d
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("verify: %w", err)
			}
			cfg.Dir = out
			if err := cfg.Validate(); err != nil {
				return usagef("verify: %v", err)
			}
			if !c.Bool(flagJSON) {
				cfg.Log = e.stderr
			}
			sumPath := filepath.Join(out, "summary.txt")
			sumFile, err := os.Create(sumPath)
			if err != nil {
				return fmt.Errorf("verify: %w", err)
			}
			defer sumFile.Close()
			var sum io.Writer = sumFile
			if !c.Bool(flagJSON) {
				sum = io.MultiWriter(sumFile, e.stdout)
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			totals, err := verify.RunSeries(ctx, verify.SeriesConfig{
				Base: cfg, Rounds: c.Int("rounds"), Until: c.Duration("total"), AlternateNodes: c.Bool("alternate-nodes"),
			}, sum)
			if c.Bool(flagJSON) {
				if jerr := writeJSON(e.stdout, map[string]any{"out": out, "summary": sumPath, "totals": totals}); jerr != nil {
					return jerr
				}
			} else {
				fmt.Fprintf(e.stdout, "summary: %s\n", sumPath)
			}
			if err != nil {
				return fmt.Errorf("verify: %w", err)
			}
			if totals.Errors > 0 {
				return fmt.Errorf("verify: %d round(s) could not run (seeds %v): see %s", totals.Errors, totals.FailedSeeds, sumPath)
			}
			if totals.Failed > 0 {
				return nof("verify: violations in %d round(s), seeds %v: see %s", totals.Failed, totals.FailedSeeds, sumPath)
			}
			return nil
		},
	}
}
