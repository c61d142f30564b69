package stepup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stepupauth/stepup/store"
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
// The evidence it accepts is the session's (its interactive login and
// step-up, as CheckSession sees them) and, for jobs only, the latest
// out-of-band step-up (CIBA, or the MFA API through CompleteMFA; see
// Client.OutOfBandStepUp). Out-of-band evidence never reaches the browser:
// an out-of-band step-up does not rotate the session's cookie, so a cookie
// captured before it must not gain its strength; RequireStepUp and
// CheckSession ignore it, and a page that needs the step-up sends the user
// through an interactive one.
//
// It returns the session and nil when p is satisfied; the session and a
// *StepUpError when it is not (the job may then ask the user out of band
// with Client.StepUpCIBA); nil and ErrNoSession when the session has ended;
// nil and an error matching store.ErrUnavailable when the store fails. It
// costs one store read when the session's own evidence satisfies p, two
// otherwise, and does not extend the session's idle deadline.
func (c *Client) SessionFor(ctx context.Context, handle string, p Policy) (*Session, error) {
	s, err := c.Session(ctx, handle)
	if err != nil {
		return nil, err
	}
	eff := c.PolicyFor(p, s.Connection)
	checkErr := c.checkSession(s, &eff)
	if checkErr == nil {
		return s, nil
	}
	ob, err := c.readOutOfBand(ctx, handle, s)
	if err != nil {
		return nil, err
	}
	if ob == nil {
		return s, checkErr
	}
	// The out-of-band step-up is the latest: its shortfall says more.
	if err := eff.Check(ob.Ev.authentication(), c.now()); err != nil {
		return s, err
	}
	return s, nil
}

// OutOfBandStepUp returns the evidence of the latest out-of-band step-up
// (CIBA, or the MFA API through CompleteMFA) of the session with the given
// handle, and when it completed; zero values when there was none. It is
// the evidence SessionFor accepts besides the session's own, and that the
// browser middleware never does. Errors: ErrNoSession, store failures.
func (c *Client) OutOfBandStepUp(ctx context.Context, handle string) (Authentication, time.Time, error) {
	s, err := c.Session(ctx, handle)
	if err != nil {
		return Authentication{}, time.Time{}, err
	}
	ob, err := c.readOutOfBand(ctx, handle, s)
	if err != nil || ob == nil {
		return Authentication{}, time.Time{}, err
	}
	return ob.Ev.authentication(), msTime(ob.At), nil
}

// outOfBandRecord is the evidence of a session's latest out-of-band
// step-up, kept apart from the session record (which the browser's cookie
// reads) under its own key. It names the session it belongs to (subject and
// creation time) so that it never counts for another. decodeOutOfBand is a
// parser of untrusted input.
type outOfBandRecord struct {
	V       int        `json:"v"`
	Subject string     `json:"sub"`
	Created int64      `json:"c"`  // the session's creation, unix ms
	Ev      obEvidence `json:"ev"` // the step-up's evidence
	At      int64      `json:"at"` // when it completed, unix ms
}

// obEvidence is evidence in the out-of-band record's JSON.
type obEvidence struct {
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AuthTime int64    `json:"at,omitempty"` // unix seconds; 0 = absent
}

func (e obEvidence) authentication() Authentication {
	return evidence(e).authentication()
}

// outOfBandVersion 2: sealed (version 1 records are absent).
const outOfBandVersion = 2

func (c *Client) outOfBandKey(handle string) string { return c.cfg.KeyPrefix + "oob:" + handle }

func encodeOutOfBand(r *outOfBandRecord) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic("stepup: encoding an out-of-band record: " + err.Error()) // plain data: cannot fail
	}
	return b
}

func decodeOutOfBand(data []byte) (*outOfBandRecord, error) {
	var r outOfBandRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: out-of-band step-up: %v", errCorruptRecord, err)
	}
	switch {
	case r.V != outOfBandVersion:
		return nil, fmt.Errorf("%w: out-of-band step-up version %d", errCorruptRecord, r.V)
	case r.Subject == "" || r.Created <= 0 || r.At <= 0 || r.Ev.AuthTime < 0:
		return nil, fmt.Errorf("%w: out-of-band step-up fields", errCorruptRecord)
	}
	return &r, nil
}

// readOutOfBand returns the out-of-band record of session s (read by
// handle), nil when there is none, it belongs to another session, or it
// does not open (absent, and logged).
func (c *Client) readOutOfBand(ctx context.Context, handle string, s *Session) (*outOfBandRecord, error) {
	data, err := c.getRecord(ctx, kindOutOfBand, c.outOfBandKey(handle), 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stepup: reading the out-of-band step-up: %w", err)
	}
	r, err := decodeOutOfBand(data)
	if err != nil {
		c.unreadable(ctx, kindOutOfBand, err)
		return nil, nil
	}
	if r.Subject != s.Subject || r.Created != s.CreatedAt.UnixMilli() {
		return nil, nil
	}
	return r, nil
}

// recordStepUp records an out-of-band step-up's evidence for the session
// with the given handle (and, when tok is not nil, stores tok as the
// session's tokens for audience). The evidence goes to the session's
// out-of-band record, never into the session record: the browser's cookie
// is not rotated by an out-of-band step-up, so the session's own evidence
// (Authentication, StepUp: what RequireStepUp checks) is left alone, and a
// cookie captured before stays as weak as it was. It costs one read of the
// session record, the token record's write (and index entry) when tok is
// given, and one write of the out-of-band record.
func (c *Client) recordStepUp(ctx context.Context, handle string, ev Authentication, audience string, tok *oauth2.Token) (*Session, error) {
	ls, err := c.readSession(ctx, handle, 0)
	if err != nil {
		return nil, err
	}
	r := &ls.r
	now := c.now()
	if !r.live(now.UnixMilli()) {
		return nil, ErrNoSession
	}
	if tok != nil && (tok.AccessToken != "" || tok.RefreshToken != "") {
		if err := c.storeLoginToken(ctx, handle, r, audience, tok, true, now); err != nil {
			return nil, err
		}
	}
	ob := &outOfBandRecord{V: outOfBandVersion, Subject: r.Subject, Created: r.Created, Ev: obEvidence(toEvidence(ev)), At: now.UnixMilli()}
	ttl := time.Duration(r.Expires-now.UnixMilli()) * time.Millisecond
	if err := c.putRecord(ctx, c.outOfBandKey(handle), encodeOutOfBand(ob), ttl); err != nil {
		return nil, fmt.Errorf("stepup: saving the out-of-band step-up: %w", err)
	}
	c.fillSession(&ls.s, handle, r)
	return &ls.s, nil
}
