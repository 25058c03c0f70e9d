package verify

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client"
)

// The membership family replaces a member under load: a fresh node starts
// with `serve --join`, `raftmq member add` makes it a learner and promotes
// it once it has caught up, then `raftmq member remove` removes the leader
// or a follower, which stops by itself. Adding first keeps at least as many
// voters as the run started with. It runs on loopback without CURVE: a new
// node has no network namespace and its key is in nobody's cluster file.

// memberCatchUp bounds `member add`'s wait for the learner.
const memberCatchUp = 30 * time.Second

// memberCommand runs `raftmq member args...` against the cluster file, the
// way an operator does, and returns its combined output.
func (n *nemesis) memberCommand(ctx context.Context, args ...string) (string, error) {
	args = append([]string{"member"}, args...)
	args = append(args, "--config", n.c.ConfigPath)
	if n.c.Curve() {
		args = append(args, "--curve-secret-file", n.c.ClientSecretPath())
	}
	ctx, cancel := context.WithTimeout(ctx, memberCatchUp+15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, n.c.Bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("raftmq %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// replace adds a fresh node, then removes target, and checks that the
// cluster's voters are then exactly n.members. It returns the new node's
// index (-1 if none was made).
func (n *nemesis) replace(ctx context.Context, ev, target int) (int, error) {
	id, err := n.c.AddNode("--join")
	if err != nil {
		return -1, err
	}
	if err := n.c.Start(id); err != nil {
		return id, err
	}
	n.mu.Lock()
	n.events[ev].Detail = fmt.Sprintf("add %d (serve --join, learner, promoted), then remove %d", id, target)
	n.mu.Unlock()
	// The whole change is made even if the phase ends meanwhile: a
	// half-made change would leave the cluster as the checks do not expect.
	ctx = context.WithoutCancel(ctx)
	if _, err := n.member(ctx, "add", "--id", strconv.Itoa(id), "--catch-up-timeout", memberCatchUp.String()); err != nil {
		return id, err
	}
	if err := n.checkVoters(ctx, append(n.voters(), id)); err != nil {
		return id, err
	}
	n.mu.Lock()
	n.members = append(n.members, id)
	n.mu.Unlock()
	if _, err := n.member(ctx, "remove", "--id", strconv.Itoa(target)); err != nil {
		return id, err
	}
	want := slices.DeleteFunc(n.voters(), func(m int) bool { return m == target })
	if err := n.checkVoters(ctx, want); err != nil {
		return id, err
	}
	n.mu.Lock()
	n.members = want
	n.removed[target] = true
	n.mu.Unlock()
	// A removed node learns it from the members and stops by itself.
	if n.c.Running(target) {
		if _, err := n.c.WaitExit(target, 20*time.Second); err != nil {
			_ = n.c.Kill(target)
			return id, fmt.Errorf("removed node %d did not stop by itself: %w", target, err)
		}
	}
	return id, nil
}

// member is memberCommand, or the test hook memberCmd when set.
func (n *nemesis) member(ctx context.Context, args ...string) (string, error) {
	if n.memberCmd != nil {
		return n.memberCmd(ctx, args...)
	}
	return n.memberCommand(ctx, args...)
}

// checkVoters asks the cluster for its membership until the voters are
// want and there is no learner left, so a change that did not happen (or a
// family that did nothing) is an error of its event.
func (n *nemesis) checkVoters(ctx context.Context, want []int) error {
	want = slices.Clone(want)
	slices.Sort(want)
	cl, err := n.c.Client(client.Options{Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer cl.Close()
	var got []int
	deadline := time.Now().Add(10 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ms, err := cl.Members(cctx)
		cancel()
		if err == nil {
			got = got[:0]
			learners := 0
			for _, m := range ms {
				if m.Role == wire.RoleVoter {
					got = append(got, m.ID)
				} else {
					learners++
				}
			}
			slices.Sort(got)
			if slices.Equal(got, want) && learners == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("membership after the change: %w", err)
			}
			return fmt.Errorf("membership did not change: voters %v, want %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// removedNodes returns the nodes the membership family removed.
func (n *nemesis) removedNodes() map[int]bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[int]bool{}
	for i := range n.removed {
		out[i] = true
	}
	return out
}
