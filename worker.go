package stepup

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/oauth2"
)

// Errors of out-of-band step-ups (CIBA and the MFA API's push challenges).
var (
	// ErrStepUpDenied: the user refused the request on their device.
	ErrStepUpDenied = errors.New("stepup: the user denied the step-up request")
	// ErrStepUpExpired: the user did not answer before the request expired.
	ErrStepUpExpired = errors.New("stepup: the step-up request expired before the user answered")
)

// SessionFor is what a background job calls first: it returns the session
// with the given handle (see Session.Handle; a job stores the handle, never
// the cookie) and checks it against the action's policy p, as adapted to the
// session's connection (Client.PolicyFor). Each action has its own policy,
// freshness included: "export salaries" may need MFA within 5 minutes where
// the pages of the same session accept 10.
//
// It returns the session and nil when p is satisfied; the session and a
// *StepUpError when it is not (the job may then ask the user out of band
// with Client.StepUpCIBA); nil and ErrNoSession when the session has ended;
// nil and an error matching store.ErrUnavailable when the store fails. It
// costs one store read and does not extend the session's idle deadline.
func (c *Client) SessionFor(ctx context.Context, handle string, p Policy) (*Session, error) {
	s, err := c.Session(ctx, handle)
	if err != nil {
		return nil, err
	}
	if err := c.CheckSession(s, p); err != nil {
		return s, err
	}
	return s, nil
}

// Logout ends the session with the given handle for good: it deletes the
// session and its token records from the store, so that no worker or
// browser can use them any more, then revokes its refresh tokens at the
// tenant's /oauth/revoke (Auth0 revokes the token's whole family). It
// returns nil when the session had already ended. A revocation failure is
// returned (joined, one per token) after the local deletion: the tokens are
// then unusable by us but still valid at the tenant until they expire.
func (c *Client) Logout(ctx context.Context, handle string) error {
	if !isRandomToken(handle) {
		return nil
	}
	r, err := c.readSession(ctx, handle)
	if errors.Is(err, ErrNoSession) {
		return nil
	}
	if err != nil {
		return err
	}
	var refresh []string
	var keys []string
	for aud, t := range r.Tokens {
		if t.Refresh != nil {
			if b, err := c.ring.open(t.Refresh, sealAAD(handle, aud, "refresh")); err == nil {
				refresh = append(refresh, string(b))
			}
		}
		keys = append(keys, c.rotationKey(handle, aud))
		// An unreadable rotation record is deleted below all the same.
		if rec, _ := c.readRotation(ctx, handle, aud); rec != nil {
			if b, err := c.ring.open(rec.T.Refresh, sealAAD(handle, aud, "refresh")); err == nil && !slices.Contains(refresh, string(b)) {
				refresh = append(refresh, string(b))
			}
		}
	}
	if err := c.store.Delete(ctx, c.sessionKey(handle)); err != nil {
		return fmt.Errorf("stepup: deleting the session: %w", err)
	}
	for _, k := range keys {
		if err := c.store.Delete(ctx, k); err != nil {
			return fmt.Errorf("stepup: deleting a token rotation record: %w", err)
		}
	}
	var errs []error
	for _, rt := range refresh {
		if err := c.RevokeRefreshToken(ctx, rt); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// recordStepUp adds a step-up's evidence to the session with the given
// handle (and, when tok is not nil, stores tok as the session's tokens for
// audience), with one read and one write of the session record. The session's
// Authentication (its interactive login) is left alone.
func (c *Client) recordStepUp(ctx context.Context, handle string, ev Authentication, audience string, tok *oauth2.Token) (*Session, error) {
	r, err := c.readSession(ctx, handle)
	if err != nil {
		return nil, err
	}
	now := c.now()
	if nowMS := now.UnixMilli(); nowMS >= r.Expires || nowMS >= r.Idle {
		return nil, ErrNoSession
	}
	e := toEvidence(ev)
	r.StepUp = &e
	r.StepUpAt = now.UnixMilli()
	if tok != nil && (tok.AccessToken != "" || tok.RefreshToken != "") {
		c.putToken(r, handle, audience, tok)
	}
	if err := c.writeSession(ctx, handle, r, now); err != nil {
		return nil, err
	}
	return c.sessionFrom(handle, r), nil
}
