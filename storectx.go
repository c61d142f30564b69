package stepup

import (
	"context"
	"errors"
	"fmt"

	"github.com/stepupauth/stepup/store"
)

// storeContext bounds one store call by Config.StoreTimeout, on top of ctx.
// done cancels the bound and returns the call's error, made to match
// store.ErrUnavailable when the bound (not ctx) ran out: a store that does
// not answer in time is a store that is down, and the request fails closed.
func (c *Client) storeContext(ctx context.Context) (sctx context.Context, done func(error) error) {
	if c.cfg.StoreTimeout < 0 {
		return ctx, func(err error) error { return err }
	}
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
