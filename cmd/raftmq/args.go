package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed lets flags follow arguments (`raftmq topic create q
// --servers X`), which urfave/cli v2 does not: it moves the leaf command's
// flags before its arguments and puts "--" before the arguments. An unknown
// "-x" stays a flag (urfave rejects it, exit 2); arguments that start with
// "-" go after a "--" the user writes, which is kept as is.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	flags, cmds := app.Flags, app.Commands
	var leaf *cli.Command
	i := 0
	for i < len(rest) {
		a := rest[i]
		if a == "--" {
			return args
		}
		if strings.HasPrefix(a, "-") { // a flag of this level, before the command name
			out = append(out, a)
			i++
			if known, takesValue := lookupFlag(flags, a); known && takesValue && i < len(rest) {
				out = append(out, rest[i])
				i++
			}
			continue
		}
		cmd := findCommand(cmds, a)
		if cmd == nil {
			return args
		}
		out = append(out, a)
		i++
		leaf, flags, cmds = cmd, cmd.Flags, cmd.Subcommands
		if len(cmds) == 0 {
			break
		}
	}
	if leaf == nil || len(leaf.Subcommands) > 0 {
		return args
	}
	var opts, pos []string
	for j := i; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			pos = append(pos, rest[j+1:]...)
			break
		}
		known, takesValue := lookupFlag(leaf.Flags, a)
		if !known && (!strings.HasPrefix(a, "-") || a == "-") {
			pos = append(pos, a)
			continue
		}
		opts = append(opts, a)
		if takesValue && j+1 < len(rest) {
			opts = append(opts, rest[j+1])
			j++
		}
	}
	out = append(out, opts...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out
}

// lookupFlag tells whether arg ("-x", "--name", "--name=v") names one of
// flags (or help), and whether it takes the next argument as its value.
func lookupFlag(flags []cli.Flag, arg string) (known, takesValue bool) {
	if !strings.HasPrefix(arg, "-") || arg == "-" {
		return false, false
	}
	name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	if name == "h" || name == "help" {
		return true, false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return true, !isBool && !hasValue
			}
		}
	}
	return false, false
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
