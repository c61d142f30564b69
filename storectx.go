package stepup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stepupauth/stepup/store"
)

// storeContext bounds one store call by Config.StoreTimeout, on top of ctx.
// done cancels the bound and returns the call's error, made to match
// store.ErrUnavailable when the bound (not ctx) ran out: a store that does
// not answer in time is a store that is down, and the request fails closed.
func (c *Client) storeContext(ctx context.Context) (context.Context, func(error) error) {
	if c.cfg.StoreTimeout < 0 || c.localStore {
		// No bound asked for, or the store is the in-process memory store,
		// which answers without I/O: a timer per call would cost more than
		// the call (a page load is one call).
		return ctx, passErr
	}
	// sctx is not a named result: the closure would capture that by
	// reference and move it to the heap on every call, the local path's too.
	sctx, cancel := context.WithTimeout(ctx, c.cfg.StoreTimeout)
	return sctx, func(err error) error {
		timedOut := errors.Is(sctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		if err != nil && timedOut && !errors.Is(err, store.ErrUnavailable) {
			return fmt.Errorf("%w: no answer within StoreTimeout (%s): %w", store.ErrUnavailable, c.cfg.StoreTimeout, err)
		}
		return err
	}
}

func passErr(err error) error { return err }

// detachedStoreTimeout bounds the store calls made after a code was redeemed
// when Config.StoreTimeout is negative (no bound of the Client's own).
const detachedStoreTimeout = 5 * time.Second

// detach returns a context that keeps ctx's values but not its cancellation
// or deadline, for the work that follows the redemption of an authorization
// code: the code is spent, so a client that disconnects (or a tight request
// deadline) must not lose the login between the tenant's answer and the
// session write. Each store call under it is still bounded by
// Config.StoreTimeout (storeContext); the whole is bounded by the longer of
// twice StoreTimeout and detachedStoreTimeout (as TokenSource bounds the
// writes that follow a refresh), so nothing waits forever.
func (c *Client) detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return detachedTimeout(ctx, max(2*c.cfg.StoreTimeout, detachedStoreTimeout))
}

// detachedTimeout returns a context that keeps ctx's values but not its
// cancellation or deadline, bounded by d instead: for work that must not be
// cut off by a caller that gives up (a spent code, a rotated refresh token),
// yet must not wait forever.
func detachedTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

// storeAttemptTimeout bounds one detached store call that must end within
// budget: at most 5 s, at least 10 ms.
func storeAttemptTimeout(budget time.Duration) time.Duration {
	return max(min(5*time.Second, budget), 10*time.Millisecond)
}
