package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func topicCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "topic",
		Usage: "create or list topics",
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("unknown topic command %q: use `topic create NAME` or `topic list`", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a topic (exit 1 if it exists)",
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
					created, err := cl.CreateTopic(c.Context, name)
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
