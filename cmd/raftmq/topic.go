package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/raftmq/raftmq/client"
)

func topicCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "topic",
		Usage: "create, list or inspect topics",
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("unknown topic command %q: use `topic create NAME`, `topic info NAME` or `topic list`", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a topic (exit 1 if it exists)",
				ArgsUsage: "NAME",
				Flags: append(clientFlags(),
					&cli.Uint64Flag{Name: "max-deliveries", Usage: "move a message to --dead-letter after this many deliveries (0 = no limit)"},
					&cli.StringFlag{Name: "dead-letter", Usage: "existing `TOPIC` that receives messages after their last delivery"},
				),
				Action: func(c *cli.Context) error {
					name, err := oneArg(c, "topic NAME")
					if err != nil {
						return err
					}
					opts := client.TopicOptions{MaxDeliveries: c.Uint64("max-deliveries"), DeadLetter: c.String("dead-letter")}
					if (opts.MaxDeliveries > 0) != (opts.DeadLetter != "") {
						return usagef("--max-deliveries and --dead-letter go together: after the last delivery a message moves to the dead-letter topic, never dropped")
					}
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					defer cl.Close()
					created, err := cl.CreateTopicWith(c.Context, name, opts)
					if err != nil {
						return clientError(cl.Servers(), err)
					}
					if c.Bool(flagJSON) {
						if err := writeJSON(e.stdout, map[string]any{"topic": name, "created": created}); err != nil {
							return err
						}
					} else if created {
						fmt.Fprintf(e.stdout, "created topic %s\n", name)
					}
					if !created {
						return nof("topic %q already exists", name)
					}
					return nil
				},
			},
			{
				Name:      "info",
				Usage:     "show a topic's ready, leased and delayed counts and its delivery settings",
				ArgsUsage: "NAME",
				Flags:     clientFlags(),
				Action: func(c *cli.Context) error {
					name, err := oneArg(c, "topic NAME")
					if err != nil {
						return err
					}
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					defer cl.Close()
					info, ok, err := cl.TopicInfo(c.Context, name)
					if err != nil {
						return clientError(cl.Servers(), err)
					}
					if !ok {
						return nof("no such topic %q", name)
					}
					if c.Bool(flagJSON) {
						return writeJSON(e.stdout, info)
					}
					limit, dl := "none", "-"
					if info.MaxDeliveries > 0 {
						limit, dl = fmt.Sprint(info.MaxDeliveries), info.DeadLetter
					}
					tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
					for _, row := range [][2]string{
						{"topic", info.Name}, {"ready", fmt.Sprint(info.Ready)}, {"leased", fmt.Sprint(info.Leased)},
						{"delayed", fmt.Sprint(info.Delayed)}, {"max deliveries", limit}, {"dead letter", dl},
					} {
						fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
					}
					return tw.Flush()
				},
			},
			{
				Name:  "list",
				Usage: "list topics in creation order",
				Flags: clientFlags(),
				Action: func(c *cli.Context) error {
					if c.NArg() != 0 {
						return usagef("topic list takes no arguments")
					}
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					defer cl.Close()
					topics, err := cl.ListTopics(c.Context)
					if err != nil {
						return clientError(cl.Servers(), err)
					}
					if c.Bool(flagJSON) {
						return writeJSON(e.stdout, topics)
					}
					for _, t := range topics {
						fmt.Fprintln(e.stdout, t)
					}
					return nil
				},
			},
		},
	}
}
