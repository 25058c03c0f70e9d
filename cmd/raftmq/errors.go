package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/config"
)

// Exit codes a script can rely on.
const (
	exitOK          = 0
	exitNo          = 1 // the operation answered "no"
	exitUsage       = 2
	exitUnreachable = 3 // cannot reach a leader / timeout
	exitOther       = 4
)

// exitError carries an exit code and a message that says what was wrong and
// what to do.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

func nof(format string, args ...any) error {
	return &exitError{code: exitNo, msg: fmt.Sprintf(format, args...)}
}

// clientError classifies an error from package client (what is the op,
// e.g. "put to topic t") and adds what to do.
func clientError(servers []string, err error) error {
	where := strings.Join(servers, ",")
	switch {
	case errors.Is(err, client.ErrNoLeader):
		return &exitError{exitUnreachable, fmt.Sprintf("%v (servers %s have no leader: is a majority of the cluster up? `raftmq status` shows each node)", err, where)}
	case errors.Is(err, client.ErrUnreachable):
		return &exitError{exitUnreachable, fmt.Sprintf("%v (is a broker running at %s? start one with `raftmq serve`, or pass --servers/--config)", err, where)}
	case errors.Is(err, client.ErrTimeout), errors.Is(err, client.ErrShuttingDown), errors.Is(err, context.DeadlineExceeded):
		return &exitError{exitUnreachable, fmt.Sprintf("%v (servers %s; the outcome is unknown: retrying is safe, or raise --timeout)", err, where)}
	case errors.Is(err, client.ErrNoServers):
		return usagef("%v: pass --servers ip:port[,ip:port...] or --config FILE", err)
	}
	return &exitError{exitOther, err.Error()}
}

// reportError prints err as one line and returns its exit code.
func reportError(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	code := exitOther
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	} else if errors.Is(err, config.ErrInvalid) {
		code = exitUsage
	}
	fmt.Fprintf(stderr, "raftmq: %s\n", oneLine(err.Error()))
	return code
}

// oneLine joins the lines of a multi-line error (errors.Join) with "; ".
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}
