package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"os/signal"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/raftmq/raftmq/config"
)

// nodeOpt is one config.Node option exposed as a flag (and env var), its
// default taken from config.Default().
type nodeOpt struct {
	flag  cli.Flag
	apply func(c *cli.Context, n *config.Node)
}

func durationOpt(name, usage string, field func(*config.Node) *time.Duration) nodeOpt {
	def := config.Default()
	return nodeOpt{
		flag:  &cli.DurationFlag{Name: name, Value: *field(&def), EnvVars: envVar(name), Usage: usage},
		apply: func(c *cli.Context, n *config.Node) { *field(n) = c.Duration(name) },
	}
}

func intOpt(name, usage string, field func(*config.Node) *int) nodeOpt {
	def := config.Default()
	return nodeOpt{
		flag:  &cli.IntFlag{Name: name, Value: *field(&def), EnvVars: envVar(name), Usage: usage},
		apply: func(c *cli.Context, n *config.Node) { *field(n) = c.Int(name) },
	}
}

func uint64Opt(name, usage string, field func(*config.Node) *uint64) nodeOpt {
	def := config.Default()
	return nodeOpt{
		flag:  &cli.Uint64Flag{Name: name, Value: *field(&def), EnvVars: envVar(name), Usage: usage},
		apply: func(c *cli.Context, n *config.Node) { *field(n) = c.Uint64(name) },
	}
}

func int64Opt(name, usage string, field func(*config.Node) *int64) nodeOpt {
	def := config.Default()
	return nodeOpt{
		flag:  &cli.Int64Flag{Name: name, Value: *field(&def), EnvVars: envVar(name), Usage: usage},
		apply: func(c *cli.Context, n *config.Node) { *field(n) = c.Int64(name) },
	}
}

func stringOpt(name, usage string, field func(*config.Node) *string) nodeOpt {
	def := config.Default()
	return nodeOpt{
		flag:  &cli.StringFlag{Name: name, Value: *field(&def), EnvVars: envVar(name), Usage: usage},
		apply: func(c *cli.Context, n *config.Node) { *field(n) = c.String(name) },
	}
}

// nodeOpts lists every config.Node option but the cluster (from --config)
// and the log options (global flags, see logFlags).
func nodeOpts() []nodeOpt {
	return []nodeOpt{
		intOpt("id", "this node's index in the cluster file's addresses", func(n *config.Node) *int { return &n.ID }),
		stringOpt(flagDataDir, "directory for raft.db, state.db and snapshots", func(n *config.Node) *string { return &n.DataDir }),
		{flag: &cli.BoolFlag{Name: flagRecover, EnvVars: envVar(flagRecover), Usage: "the data directory was wiped or lost: rejoin from the peers and neither vote nor lead until caught up (start a wiped node with it once)"}, apply: func(c *cli.Context, n *config.Node) { n.Recover = c.Bool(flagRecover) }},
		{flag: &cli.BoolFlag{Name: flagJoin, EnvVars: envVar(flagJoin), Usage: "a new node of a running cluster: start with an empty log and no membership, never campaign, and wait to be added (raftmq member add --id N); ignored once a membership is recorded"}, apply: func(c *cli.Context, n *config.Node) { n.Join = c.Bool(flagJoin) }},
		stringOpt("listen-ip", "IP to bind instead of the node's own address (0.0.0.0 in containers)", func(n *config.Node) *string { return &n.ListenIP }),
		durationOpt("tick-interval", "one Raft tick", func(n *config.Node) *time.Duration { return &n.TickInterval }),
		intOpt("election-ticks", "election timeout in ticks, randomized in [E, 2E)", func(n *config.Node) *int { return &n.ElectionTicks }),
		intOpt("heartbeat-ticks", "leader heartbeat interval in ticks", func(n *config.Node) *int { return &n.HeartbeatTicks }),
		durationOpt("request-timeout", "a client request not answered by then gets \"timeout\"", func(n *config.Node) *time.Duration { return &n.RequestTimeout }),
		durationOpt("shutdown-timeout", "budget for a graceful stop", func(n *config.Node) *time.Duration { return &n.ShutdownTimeout }),
		intOpt("max-message-bytes", "largest message", func(n *config.Node) *int { return &n.MaxMessageBytes }),
		intOpt("max-topic-bytes", "longest topic name", func(n *config.Node) *int { return &n.MaxTopicBytes }),
		intOpt("max-pending-requests", "in-flight client requests per node", func(n *config.Node) *int { return &n.MaxPendingRequests }),
		intOpt("max-client-connections", "concurrent client connections; more are cut at once (bounds the client port's memory)", func(n *config.Node) *int { return &n.MaxClientConnections }),
		uint64Opt("max-batch-bytes", "bytes of proposals committed together / per append message", func(n *config.Node) *uint64 { return &n.MaxBatchBytes }),
		intOpt("max-inflight-msgs", "unacknowledged append messages per follower", func(n *config.Node) *int { return &n.MaxInflightMsgs }),
		intOpt("max-sessions", "client sessions kept for exactly-once retries", func(n *config.Node) *int { return &n.MaxSessions }),
		uint64Opt("snapshot-entries", "compact the log when this many entries were applied since the last compaction", func(n *config.Node) *uint64 { return &n.SnapshotEntries }),
		uint64Opt("snapshot-log-percent", "no effect since decision 26 (accepted for old scripts)", func(n *config.Node) *uint64 { return &n.SnapshotLogPercent }),
		uint64Opt("trailing-entries", "entries kept behind a snapshot for slow followers", func(n *config.Node) *uint64 { return &n.TrailingEntries }),
		intOpt("snapshots-kept", "no effect since decision 26: no snapshot file is kept (accepted for old scripts)", func(n *config.Node) *int { return &n.SnapshotsKept }),
		intOpt("snapshot-chunk-bytes", "bytes per snapshot chunk sent to a follower", func(n *config.Node) *int { return &n.SnapshotChunkBytes }),
		stringOpt("metrics-listen", "`host:port` for /metrics, /healthz and /readyz over HTTP (empty: off)", func(n *config.Node) *string { return &n.MetricsListen }),
		intOpt("metrics-topics", "topics with their own metrics series; the rest are summed under topic=\"other\"", func(n *config.Node) *int { return &n.MetricsTopics }),
		int64Opt("min-free-bytes", "disk-space guard: below this much free space the leader refuses puts and topic creation (disk_full) and a follower stops appending; -1: 256 MiB or 5% of the filesystem, whichever is less; 0: off", func(n *config.Node) *int64 { return &n.MinFreeBytes }),
		uint64Opt("max-data-bytes", "disk-space guard: the same once the data directory holds more than this (0: unlimited)", func(n *config.Node) *uint64 { return &n.MaxDataBytes }),
	}
}

func serveCommand(e env) *cli.Command {
	opts := nodeOpts()
	flags := []cli.Flag{configFlag()}
	for _, o := range opts {
		flags = append(flags, o.flag)
	}
	flags = append(flags,
		curveSecretFlag("this node's Z85 CURVE secret key: CURVE on both ports (the cluster file then carries every node's \"curve_public\")"),
		&cli.PathFlag{Name: flagCurveClientsFile, EnvVars: envVar(flagCurveClientsFile),
			Usage: "`FILE` listing the client public keys allowed, one per line, or \"*\" for any client with a key pair (CURVE on and no file: no client)"})
	flags = append(flags, logFlags()...)
	return &cli.Command{
		Name:  "serve",
		Usage: "run a broker node until SIGINT/SIGTERM",
		Description: "With no flags: a single node on 127.0.0.1:5550 (internal 5560), data in ./raftmq-data.\n" +
			"In a cluster: raftmq serve --config cluster.json --id N --data-dir DIR",
		Flags: flags,
		Action: func(c *cli.Context) error {
			cfg, err := nodeConfig(c, opts)
			if err != nil {
				return err
			}
			log, err := newLogger(cfg.LogLevel, cfg.LogFormat, e.stderr, e.stderrIsTerminal)
			if err != nil {
				return usagef("%v", err)
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() { <-ctx.Done(); stop() }() // a second signal kills at once
			if err := e.serve(ctx, cfg, log); err != nil {
				return fmt.Errorf("serve node %d (data dir %s): %w", cfg.ID, cfg.DataDir, err)
			}
			return nil
		},
	}
}

// nodeConfig is config.Default(), then the cluster file (--config), then
// flags and env vars, validated.
func nodeConfig(c *cli.Context, opts []nodeOpt) (config.Node, error) {
	cfg := config.Default()
	if path := c.Path(flagConfig); path != "" {
		cl, err := config.LoadCluster(path)
		if err != nil {
			return cfg, usagef("%v", err)
		}
		cfg.Cluster = cl
	}
	for _, o := range opts {
		o.apply(c, &cfg)
	}
	if path := c.Path(flagCurveSecretFile); path != "" {
		secret, err := config.LoadCurveSecret(path)
		if err != nil {
			return cfg, usagef("%v", err)
		}
		cfg.CurveSecret = secret
	}
	if path := c.Path(flagCurveClientsFile); path != "" {
		cc, err := config.LoadCurveClients(path)
		if err != nil {
			return cfg, usagef("%v", err)
		}
		cfg.CurveClients = cc
	}
	cfg.LogLevel = lineageString(c, flagLogLevel)
	cfg.LogFormat = lineageString(c, flagLogFormat)
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("%v", err)
	}
	return cfg, nil
}

// newLogger builds the broker's logger: console output when format is
// "console" (or "auto" and stderr is a terminal), else JSON lines.
func newLogger(level, format string, w io.Writer, isTerminal bool) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || lvl == zerolog.NoLevel {
		return zerolog.Logger{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	switch format {
	case "console":
	case "json":
	case "auto":
		format = "json"
		if isTerminal {
			format = "console"
		}
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format %q: want auto, console or json", format)
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
