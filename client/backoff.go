package client

import (
	"context"
	"time"
)

// backoffLocked is the wait after the n-th consecutive failure (n from 0):
// d = min(BackoffMax, BackoffBase*2^n), jittered uniformly in [d/2, d] so
// clients that failed together do not retry together.
func (c *Client) backoffLocked(n int) time.Duration {
	return backoff(c.opts.BackoffBase, c.opts.BackoffMax, n, c.rng.Int64N)
}

func backoff(base, limit time.Duration, n int, int64n func(int64) int64) time.Duration {
	d := limit
	if n < 62 && base<<n > 0 && base<<n < limit {
		d = base << n
	}
	half := d / 2
	return half + time.Duration(int64n(int64(d-half)+1))
}

// sleepCtx waits d, or until ctx is done (its error) or abort is closed
// (ErrClosed).
func sleepCtx(ctx context.Context, abort <-chan struct{}, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-abort:
		return ErrClosed
	}
}
