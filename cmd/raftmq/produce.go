package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

func produceCommand(e env) *cli.Command {
	return &cli.Command{
		Name:      "produce",
		Usage:     "put messages to a topic: the arguments, or one per stdin line",
		ArgsUsage: "[MSG...]",
		Flags:     append(clientFlags(), topicFlag("topic to put to (required)")),
		Action: func(c *cli.Context) error {
			topic, err := requireTopic(c)
			if err != nil {
				return err
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			next := argsSource(c.Args().Slice())
			if !c.Args().Present() {
				next = linesSource(bufio.NewReader(e.stdin))
			}
			n := 0
			for {
				msg, ok, err := next()
				if err != nil {
					return fmt.Errorf("produce: reading stdin after %d messages: %w", n, err)
				}
				if !ok {
					break
				}
				put, err := cl.Put(c.Context, topic, msg)
				if err != nil {
					return clientError(cl.Servers(), fmt.Errorf("after %d messages: %w", n, err))
				}
				if !put {
					return nof("no such topic %q (after %d messages): create it with `raftmq topic create %s`", topic, n, topic)
				}
				n++
			}
			if c.Bool(flagJSON) {
				return writeJSON(e.stdout, map[string]any{"topic": topic, "produced": n})
			}
			fmt.Fprintf(e.stdout, "produced %d %s to %s\n", n, plural(n, "message"), topic)
			return nil
		},
	}
}

func argsSource(args []string) func() (string, bool, error) {
	return func() (string, bool, error) {
		if len(args) == 0 {
			return "", false, nil
		}
		msg := args[0]
		args = args[1:]
		return msg, true, nil
	}
}

// linesSource yields each line of r without its "\n" or "\r\n"; a last
// line without a newline counts too.
func linesSource(r *bufio.Reader) func() (string, bool, error) {
	return func() (string, bool, error) {
		line, err := r.ReadString('\n')
		if errors.Is(err, io.EOF) {
			if line == "" {
				return "", false, nil
			}
			err = nil
		}
		if err != nil {
			return "", false, err
		}
		line = strings.TrimSuffix(line, "\n")
		return strings.TrimSuffix(line, "\r"), true, nil
	}
}
