package main

import (
	"fmt"

	zmq "github.com/pebbe/zmq4"
	"github.com/urfave/cli/v2"
)

func keygenCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "keygen",
		Usage: "print a new CURVE key pair (Z85 public and secret keys)",
		Description: "Put the public key in the cluster file (\"curve_public\" of a node) or in a broker's\n" +
			"--curve-clients-file (a client); put the secret key alone in a file only its owner can read\n" +
			"(chmod 600) and pass it with --curve-secret-file.",
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("keygen takes no arguments")
			}
			pub, sec, err := zmq.NewCurveKeypair()
			if err != nil {
				return fmt.Errorf("keygen: %w (is libzmq built with CURVE?)", err)
			}
			if c.Bool(flagJSON) {
				return writeJSON(e.stdout, map[string]string{"public": pub, "secret": sec})
			}
			_, err = fmt.Fprintf(e.stdout, "public: %s\nsecret: %s\n", pub, sec)
			return err
		},
	}
}
