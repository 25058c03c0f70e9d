// Command raftmq is the raftmq broker and its command-line client. It is
// thin: it parses flags, calls packages and prints.
//
// Exit codes: 0 ok; 1 the operation answered "no" (topic exists, no such
// topic, queue empty, inspect found problems); 2 usage or configuration
// error; 3 cannot reach a leader / timed out; 4 any other error.
package main

import (
	"context"
	"io"
	"os"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/raftmq/raftmq/broker"
	"github.com/raftmq/raftmq/config"
)

func main() {
	e := env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		stderrIsTerminal: isatty.IsTerminal(os.Stderr.Fd()) || isatty.IsCygwinTerminal(os.Stderr.Fd()),
		serve:            serveBroker,
	}
	os.Exit(run(context.Background(), e, os.Args))
}

// env is what the commands reach outside themselves; tests replace it.
type env struct {
	stdin            io.Reader
	stdout, stderr   io.Writer
	stderrIsTerminal bool
	// serve runs a broker until ctx is done.
	serve func(ctx context.Context, cfg config.Node, log zerolog.Logger) error
}

func serveBroker(ctx context.Context, cfg config.Node, log zerolog.Logger) error {
	return broker.Serve(ctx, cfg, log)
}

// run runs the app and turns its error into one line on stderr and an exit
// code.
func run(ctx context.Context, e env, args []string) int {
	app := newApp(e)
	err := app.RunContext(ctx, interspersed(app, args))
	return reportError(e.stderr, err)
}

func newApp(e env) *cli.App {
	app := &cli.App{
		Name:  "raftmq",
		Usage: "a durable, Raft-replicated queue broker and its client",
		Description: "Start a single-node broker with `raftmq serve`; the client commands reach it with no flags.\n" +
			"Exit codes: 0 ok; 1 the answer was no (topic exists, no such topic, queue empty);\n" +
			"2 usage error; 3 cannot reach a leader or timed out; 4 other error.",
		Reader:    e.stdin,
		Writer:    e.stdout,
		ErrWriter: e.stderr,
		Flags:     logFlags(),
		Commands: []*cli.Command{
			serveCommand(e), topicCommand(e), produceCommand(e), consumeCommand(e),
			statusCommand(e), inspectCommand(e), benchCommand(e), verifyCommand(e), snapshotCommand(e), memberCommand(e),
			keygenCommand(e),
		},
		HideHelpCommand: true,
		Suggest:         true,
		OnUsageError:    onUsageError,
		ExitErrHandler:  func(*cli.Context, error) {}, // run() picks the exit code
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("unknown command %q: see `raftmq --help`", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
	}
	for _, cmd := range app.Commands {
		setUsageErrors(cmd)
	}
	return app
}

func setUsageErrors(cmd *cli.Command) {
	cmd.OnUsageError = onUsageError
	for _, sub := range cmd.Subcommands {
		setUsageErrors(sub)
	}
}

func onUsageError(_ *cli.Context, err error, _ bool) error {
	return usagef("%v", err)
}
