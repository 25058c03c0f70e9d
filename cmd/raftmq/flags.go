package main

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/config"
)

// envVar is the environment variable of a flag: RAFTMQ_<NAME>.
func envVar(flag string) []string {
	return []string{"RAFTMQ_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))}
}

// Shared flag names.
const (
	flagLogLevel  = "log-level"
	flagLogFormat = "log-format"
	flagConfig    = "config"
	flagServers   = "servers"
	flagTimeout   = "timeout"
	flagJSON      = "json"
	flagTopic     = "topic"
	flagDataDir   = "data-dir"
	flagRecover   = "recover" // serve: the data directory was wiped; rejoin without voting until caught up
	flagJoin      = "join"    // serve: a new node; wait to be added (raftmq member add)

	flagCurveSecretFile  = "curve-secret-file"  // this node's or client's Z85 CURVE secret key
	flagCurveClientsFile = "curve-clients-file" // serve: the client public keys allowed, or "*"
)

const defaultTimeout = 10 * time.Second

// logFlags are global, and repeated on serve so `raftmq serve --log-level
// debug` works too.
func logFlags() []cli.Flag {
	def := config.Default()
	return []cli.Flag{
		&cli.StringFlag{Name: flagLogLevel, Value: def.LogLevel, EnvVars: envVar(flagLogLevel), Usage: "debug|info|warn|error"},
		&cli.StringFlag{Name: flagLogFormat, Value: def.LogFormat, EnvVars: envVar(flagLogFormat), Usage: "auto|console|json (auto: console when stderr is a terminal)"},
	}
}

// lineageString is the value of a flag defined at several levels: the
// innermost level where it was set, else the innermost default.
func lineageString(c *cli.Context, name string) string {
	for _, cc := range c.Lineage() {
		if cc.IsSet(name) {
			return cc.String(name)
		}
	}
	return c.String(name)
}

func configFlag() cli.Flag {
	return &cli.PathFlag{Name: flagConfig, EnvVars: envVar(flagConfig), Usage: "cluster `FILE` (JSON: {\"addresses\":[{\"ip\",\"port\",\"internal_port\"},...]})"}
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: flagJSON, EnvVars: envVar(flagJSON), Usage: "print JSON for programs"}
}

// clientFlags are the flags of every command that talks to a cluster.
func clientFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: flagServers, Value: cli.NewStringSlice(config.DefaultClientAddr), EnvVars: envVar(flagServers),
			Usage: "client addresses `ip:port[,ip:port...]` (ignored when --config is given)"},
		configFlag(),
		&cli.DurationFlag{Name: flagTimeout, Value: defaultTimeout, EnvVars: envVar(flagTimeout), Usage: "per request, including retries and leader changes"},
		curveSecretFlag("this client's Z85 CURVE secret key (needs --config: the brokers' public keys come from the cluster file)"),
		jsonFlag(),
	}
}

func curveSecretFlag(usage string) cli.Flag {
	return &cli.PathFlag{Name: flagCurveSecretFile, EnvVars: envVar(flagCurveSecretFile), Usage: "`FILE` holding " + usage + "; mode 0600"}
}

// servers returns the cluster's client addresses: from --config when
// given, else --servers.
func servers(c *cli.Context) ([]string, error) {
	srv, _, err := serversAndCluster(c)
	return srv, err
}

// serversAndCluster is servers, and the cluster file when --config names
// one.
func serversAndCluster(c *cli.Context) ([]string, *config.Cluster, error) {
	if path := c.Path(flagConfig); path != "" {
		cl, err := config.LoadCluster(path)
		if err != nil {
			return nil, nil, usagef("%v", err)
		}
		var out []string
		for _, a := range cl.Addresses {
			out = append(out, a.ClientAddr())
		}
		if len(out) == 0 {
			return nil, nil, usagef("--config %s lists no addresses", path)
		}
		return out, &cl, nil
	}
	var out []string
	for _, s := range c.StringSlice(flagServers) {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, nil, usagef("--servers: %q is not ip:port (%v)", s, err)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, nil, usagef("--servers is empty: pass ip:port[,ip:port...] or --config FILE")
	}
	return out, nil, nil
}

// clientOptions builds client.Options from the client flags.
func clientOptions(c *cli.Context) (client.Options, error) {
	srv, cl, err := serversAndCluster(c)
	if err != nil {
		return client.Options{}, err
	}
	curve, err := clientCurve(c, cl)
	if err != nil {
		return client.Options{}, err
	}
	timeout := c.Duration(flagTimeout)
	if timeout <= 0 {
		return client.Options{}, usagef("--timeout %s must be positive", timeout)
	}
	return client.Options{Servers: srv, Timeout: timeout, AttemptTimeout: min(timeout, client.DefaultAttemptTimeout), Curve: curve}, nil
}

// clientCurve is the client's CURVE setup: nil when the cluster file (if
// any) carries no keys and no --curve-secret-file is given.
func clientCurve(c *cli.Context, cl *config.Cluster) (*client.Curve, error) {
	path := c.Path(flagCurveSecretFile)
	curveCluster := cl != nil && cl.Curve()
	switch {
	case path == "" && !curveCluster:
		return nil, nil
	case path == "":
		return nil, usagef("the cluster file %s carries \"curve_public\" keys, so the brokers speak CURVE only: pass --%s (env %s)",
			c.Path(flagConfig), flagCurveSecretFile, envVar(flagCurveSecretFile)[0])
	case cl == nil:
		return nil, usagef("--%s needs --config: the brokers' public keys come from the cluster file", flagCurveSecretFile)
	case !curveCluster:
		return nil, usagef("--%s is set, but the cluster file %s carries no \"curve_public\" keys", flagCurveSecretFile, c.Path(flagConfig))
	}
	secret, err := config.LoadCurveSecret(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	keys := map[string]string{}
	for _, a := range cl.Addresses {
		keys[a.ClientAddr()] = a.CurvePublic
	}
	curve, err := client.NewCurve(secret, keys)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return curve, nil
}

// newClient is clientOptions then client.New.
func newClient(c *cli.Context) (*client.Client, error) {
	o, err := clientOptions(c)
	if err != nil {
		return nil, err
	}
	cl, err := client.New(o)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return cl, nil
}

// oneArg returns the single positional argument named what.
func oneArg(c *cli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", usagef("%s takes exactly one %s, got %d arguments: %s", c.Command.FullName(), what, c.NArg(), fmt.Sprint(c.Args().Slice()))
	}
	return c.Args().First(), nil
}

// requireTopic returns --topic or a usage error.
func requireTopic(c *cli.Context) (string, error) {
	t := c.String(flagTopic)
	if t == "" {
		return "", usagef("%s needs --topic NAME", c.Command.FullName())
	}
	return t, nil
}

func topicFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: flagTopic, Aliases: []string{"t"}, EnvVars: envVar(flagTopic), Usage: usage}
}
