package stepup

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stepupauth/stepup/store"
	"golang.org/x/oauth2"
)

// A Session is a logged-in user, kept in the Store.
//
// The browser holds a cookie "<handle>.<secret>" of two 256-bit random
// values. The record is stored under the handle and keeps only a SHA-256 hash
// of the secret: reading the store (or its key list) gives no usable cookie.
// The handle is stable for the session's life and is what background jobs
// keep (Client.Session); the secret rotates at every login and step-up, so a
// cookie captured before a step-up is dead afterwards. A page load costs one
// store read, plus one write when the idle deadline must move (at most once
// per step, see Config.SessionIdleTimeout).
//
// A Store has no compare-and-set, so two writes of one session can race: an
// idle-deadline extension that read the record just before a step-up wrote
// it may put the older record back. The outcome is never a stronger session
// than the user earned: the step-up (and its new cookie) is lost, and the
// user is asked again. Extensions are rare (once per idle step) and the
// window is one store round trip.
type Session struct {
	// Handle identifies the session for background jobs. It is not a
	// credential for the browser: a request needs the cookie's secret too.
	Handle string
	// Subject is the user id (sub), e.g. "auth0|6543...".
	Subject string
	// SessionID is Auth0's session id (the ID token's sid), "" if absent.
	SessionID string
	// Connection is the key of Config.ConnectionPolicies this session
	// answers to, derived from Subject alone (the tenant signed it; the
	// connection the browser asked for never counts): an enterprise
	// connection's name ("samlp|fabrikam-saml|jane": "fabrikam-saml", or
	// "samlp" when ConnectionPolicies has no "fabrikam-saml" but has
	// "samlp"), else the provider ("auth0" for any database connection,
	// "google-oauth2", "github"); "" when Subject names none.
	Connection string
	// Email, Name and OrgID are copied from the login's ID token.
	Email, Name, OrgID string
	// Authentication is the evidence of the latest interactive login.
	Authentication Authentication
	// StepUp is the evidence of the latest login that performed a requested
	// step-up, and StepUpAt when it completed; zero when none did. Tokens
	// obtained later without interaction (refresh, silent authentication)
	// never change either.
	StepUp   Authentication
	StepUpAt time.Time
	// CreatedAt is the first login; ExpiresAt the absolute end
	// (Config.SessionLifetime); IdleExpiresAt the end if unused.
	CreatedAt, ExpiresAt, IdleExpiresAt time.Time

	secret         string // cookie secret; "" for a session loaded by handle
	connectionHint string // the connection requested at login, consistent with Subject (send it again)
	rec            *sessionRecord
}

// sessionRecord is a session as stored: JSON with a version number; tokens
// sealed. decodeSession is a parser of untrusted input.
type sessionRecord struct {
	V          int                     `json:"v"`
	SecretHash []byte                  `json:"sh"`
	Subject    string                  `json:"sub"`
	SID        string                  `json:"sid,omitempty"`
	Connection string                  `json:"conn,omitempty"` // requested (ConnSent) or derived from Subject
	ConnSent   bool                    `json:"cs,omitempty"`   // Connection is the requested one, kept as a hint
	Email      string                  `json:"em,omitempty"`
	Name       string                  `json:"nm,omitempty"`
	OrgID      string                  `json:"org,omitempty"`
	Auth       evidence                `json:"a"`
	StepUp     *evidence               `json:"su,omitempty"`
	StepUpAt   int64                   `json:"sat,omitempty"` // unix ms
	Created    int64                   `json:"c"`             // unix ms
	Expires    int64                   `json:"x"`             // unix ms, absolute
	Idle       int64                   `json:"i"`             // unix ms, idle deadline
	Tokens     map[string]*tokenRecord `json:"t,omitempty"`   // by audience
}

type evidence struct {
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AuthTime int64    `json:"at,omitempty"` // unix seconds; 0 = absent
}

type tokenRecord struct {
	Access  []byte `json:"a,omitempty"` // sealed
	Refresh []byte `json:"r,omitempty"` // sealed
	Type    string `json:"ty,omitempty"`
	Expiry  int64  `json:"x,omitempty"` // unix seconds; 0 = unknown
	Scope   string `json:"sc,omitempty"`
}

const sessionVersion = 1

func (c *Client) sessionKey(handle string) string { return c.cfg.KeyPrefix + "sess:" + handle }

func secretHash(secret string) []byte {
	h := sha256.Sum256([]byte("stepup session\x00" + secret))
	return h[:]
}

// sealAAD binds a sealed token to its session handle, audience and kind, so
// that it cannot be opened once moved to another record or field.
func sealAAD(handle, audience, kind string) []byte {
	return []byte("stepup/session/v1\x00" + handle + "\x00" + audience + "\x00" + kind)
}

func toEvidence(a Authentication) evidence {
	e := evidence{ACR: a.ACR, AMR: slices.Clone(a.AMR)}
	if !a.AuthTime.IsZero() {
		e.AuthTime = a.AuthTime.Unix()
	}
	return e
}

func (e evidence) authentication() Authentication {
	a := Authentication{ACR: e.ACR, AMR: slices.Clone(e.AMR)}
	if e.AuthTime != 0 {
		a.AuthTime = time.Unix(e.AuthTime, 0)
	}
	return a
}

func encodeSession(r *sessionRecord) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("stepup: encoding a session: %w", err)
	}
	return b, nil
}

func decodeSession(data []byte) (*sessionRecord, error) {
	var r sessionRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: session: %v", errCorruptRecord, err)
	}
	switch {
	case r.V != sessionVersion:
		return nil, fmt.Errorf("%w: session version %d", errCorruptRecord, r.V)
	case len(r.SecretHash) != sha256.Size:
		return nil, fmt.Errorf("%w: session secret", errCorruptRecord)
	case r.Subject == "":
		return nil, fmt.Errorf("%w: session subject", errCorruptRecord)
	case r.Created <= 0 || r.Expires < r.Created || r.Idle <= 0:
		return nil, fmt.Errorf("%w: session times", errCorruptRecord)
	case r.StepUp == nil && r.StepUpAt != 0:
		return nil, fmt.Errorf("%w: session step-up", errCorruptRecord)
	}
	for aud, t := range r.Tokens {
		if t == nil {
			return nil, fmt.Errorf("%w: session token %q", errCorruptRecord, aud)
		}
	}
	return &r, nil
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }

func (c *Client) sessionFrom(handle string, r *sessionRecord) *Session {
	s := &Session{
		Handle:         handle,
		Subject:        r.Subject,
		SessionID:      r.SID,
		Connection:     connectionKey(c.cfg.ConnectionPolicies, r.Subject),
		Email:          r.Email,
		Name:           r.Name,
		OrgID:          r.OrgID,
		Authentication: r.Auth.authentication(),
		CreatedAt:      msTime(r.Created),
		ExpiresAt:      msTime(r.Expires),
		IdleExpiresAt:  msTime(r.Idle),
		rec:            r,
	}
	if r.ConnSent && connectionConsistent(r.Connection, r.Subject) {
		s.connectionHint = r.Connection
	}
	if r.StepUp != nil {
		s.StepUp = r.StepUp.authentication()
		s.StepUpAt = msTime(r.StepUpAt)
	}
	return s
}

// idleStep is how far the idle deadline may lag behind the last request
// before a page load writes it: a tenth of the idle timeout, at most a minute.
func (c *Client) idleStep() time.Duration {
	return min(c.cfg.SessionIdleTimeout/10, time.Minute)
}

// writeSession stores r under handle until its idle or absolute deadline.
func (c *Client) writeSession(ctx context.Context, handle string, r *sessionRecord, now time.Time) error {
	ttl := time.Duration(min(r.Idle, r.Expires)-now.UnixMilli()) * time.Millisecond
	if ttl <= 0 {
		return ErrNoSession
	}
	data, err := encodeSession(r)
	if err != nil {
		return err
	}
	sctx, done := c.storeContext(ctx)
	if err := done(c.store.Set(sctx, c.sessionKey(handle), data, ttl)); err != nil {
		return fmt.Errorf("stepup: saving the session: %w", err)
	}
	return nil
}

// parseCookie splits a session cookie value into handle and secret.
func parseCookie(v string) (handle, secret string, ok bool) {
	handle, secret, ok = strings.Cut(v, ".")
	if !ok || !isRandomToken(handle) || !isRandomToken(secret) {
		return "", "", false
	}
	return handle, secret, true
}

// LoadSession returns the live session whose cookie value is given, and
// ErrNoSession when there is none (no cookie, unknown, rotated, expired).
// A failing store gives an error matching store.ErrUnavailable: callers
// must fail closed. It costs one store read, plus one write when the idle
// deadline must be extended.
func (c *Client) LoadSession(ctx context.Context, cookieValue string) (*Session, error) {
	handle, secret, ok := parseCookie(cookieValue)
	if !ok {
		return nil, ErrNoSession
	}
	r, err := c.readSession(ctx, handle)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(secretHash(secret), r.SecretHash) != 1 {
		return nil, ErrNoSession
	}
	now := c.now()
	nowMS := now.UnixMilli()
	if !r.live(nowMS) {
		return nil, ErrNoSession
	}
	// Extend the idle deadline only when it lags by a full step: most page
	// loads then cost no write.
	idle := c.cfg.SessionIdleTimeout.Milliseconds()
	if next := min(nowMS+idle, r.Expires); next-r.Idle >= c.idleStep().Milliseconds() {
		r.Idle = next
		if err := c.writeSession(ctx, handle, r, now); err != nil {
			return nil, err
		}
	}
	s := c.sessionFrom(handle, r)
	s.secret = secret
	return s, nil
}

// Session returns the session with the given handle, for background jobs
// that act for a user (see Session.Handle). It does not extend the session's
// idle deadline. ErrNoSession when it has ended.
func (c *Client) Session(ctx context.Context, handle string) (*Session, error) {
	if !isRandomToken(handle) {
		return nil, ErrNoSession
	}
	r, err := c.readLiveSession(ctx, handle)
	if err != nil {
		return nil, err
	}
	return c.sessionFrom(handle, r), nil
}

// live reports whether r has not ended at nowMS (unix ms): neither its
// absolute nor its idle deadline has passed.
func (r *sessionRecord) live(nowMS int64) bool { return nowMS < r.Expires && nowMS < r.Idle }

// readLiveSession is readSession, with ErrNoSession for a session that has
// ended by the Client's clock.
func (c *Client) readLiveSession(ctx context.Context, handle string) (*sessionRecord, error) {
	r, err := c.readSession(ctx, handle)
	if err != nil {
		return nil, err
	}
	if !r.live(c.now().UnixMilli()) {
		return nil, ErrNoSession
	}
	return r, nil
}

func (c *Client) readSession(ctx context.Context, handle string) (*sessionRecord, error) {
	sctx, done := c.storeContext(ctx)
	data, err := c.store.Get(sctx, c.sessionKey(handle))
	err = done(err)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("stepup: reading the session: %w", err)
	}
	r, err := decodeSession(data)
	if err != nil {
		c.log.ErrorContext(ctx, "stepup: unreadable session record", "error", err)
		return nil, fmt.Errorf("%w: %w", ErrNoSession, err)
	}
	return r, nil
}

// StartSession records a LoginResult as a session, with one store write, and
// returns it; set its cookie with SessionCookie. The cookie's secret is
// always new (rotation at every login and step-up: the previous cookie stops
// working). When previous is a live session of the same user, the session
// continues under the same handle: its absolute lifetime and tokens for other
// audiences are kept, and a step-up adds to its evidence. Otherwise a new
// session starts and previous is deleted.
//
// The step-up evidence comes from interactive logins only: a silent login
// (prompt=none) changes neither Authentication nor StepUp.
//
// The authorization code behind login is spent, so StartSession's store
// calls are detached from ctx's cancellation and deadline (a client that
// disconnects, or a request deadline that is nearly over, must not lose the
// login); each is bounded by Config.StoreTimeout instead.
func (c *Client) StartSession(ctx context.Context, login *LoginResult, previous *Session) (*Session, error) {
	if login == nil || login.IDToken == nil {
		return nil, errors.New("stepup: StartSession needs the LoginResult returned by Exchange")
	}
	ctx, cancel := c.detach(ctx)
	defer cancel()
	now := c.now()
	nowMS := now.UnixMilli()
	idt := login.IDToken
	var (
		handle string
		r      *sessionRecord
		fresh  bool
	)
	if previous != nil && previous.rec != nil && previous.Subject == idt.Subject && previous.rec.live(nowMS) {
		handle = previous.Handle
		cp := *previous.rec
		cp.Tokens = make(map[string]*tokenRecord, len(previous.rec.Tokens)+1)
		for aud, t := range previous.rec.Tokens {
			tc := *t
			cp.Tokens[aud] = &tc
		}
		r = &cp
	} else {
		if previous != nil && previous.Handle != "" {
			sctx, done := c.storeContext(ctx)
			if err := done(c.store.Delete(sctx, c.sessionKey(previous.Handle))); err != nil {
				return nil, fmt.Errorf("stepup: ending the previous session: %w", err)
			}
		}
		handle, fresh = randomToken(), true
		r = &sessionRecord{
			V:       sessionVersion,
			Subject: idt.Subject,
			Created: nowMS,
			Expires: now.Add(c.cfg.SessionLifetime).UnixMilli(),
			Tokens:  map[string]*tokenRecord{},
		}
	}
	secret := randomToken()
	r.SecretHash = secretHash(secret)
	r.SID = idt.SessionID
	// The session's policy key is derived from sub on every load; the
	// connection the browser asked for is kept only as a hint for later
	// step-ups, and only when sub agrees with it. A login at the chooser
	// keeps an earlier hint (the session continues only for the same sub).
	switch {
	case connectionConsistent(login.Connection, idt.Subject):
		r.Connection, r.ConnSent = login.Connection, true
	case login.Connection != "" || !r.ConnSent:
		r.Connection, r.ConnSent = connectionKey(c.cfg.ConnectionPolicies, idt.Subject), false
	}
	r.OrgID = idt.OrgID
	if idt.Email != "" {
		r.Email = idt.Email
	}
	if idt.Name != "" {
		r.Name = idt.Name
	}
	if !login.Silent {
		r.Auth = toEvidence(idt.Authentication())
		if login.Policy.RequiresStepUp() {
			ev := r.Auth
			r.StepUp = &ev
			r.StepUpAt = nowMS
		}
	} else if fresh {
		// A new session from a silent login: record what it says about the
		// authentication, except amr, which Auth0 leaves out.
		r.Auth = evidence{ACR: idt.ACR, AuthTime: toEvidence(idt.Authentication()).AuthTime}
	}
	r.Idle = min(now.Add(c.cfg.SessionIdleTimeout).UnixMilli(), r.Expires)
	if login.Token != nil && (login.Token.AccessToken != "" || login.Token.RefreshToken != "") {
		c.putToken(r, handle, login.Audience, login.Token)
	}
	if err := c.writeSession(ctx, handle, r, now); err != nil {
		return nil, err
	}
	s := c.sessionFrom(handle, r)
	s.secret = secret
	return s, nil
}

// putToken seals tok into r for audience.
func (c *Client) putToken(r *sessionRecord, handle, audience string, tok *oauth2.Token) {
	t := &tokenRecord{Type: tok.TokenType}
	if tok.AccessToken != "" {
		t.Access = c.ring.seal([]byte(tok.AccessToken), sealAAD(handle, audience, "access"))
	}
	if tok.RefreshToken != "" {
		t.Refresh = c.ring.seal([]byte(tok.RefreshToken), sealAAD(handle, audience, "refresh"))
	} else if old := r.Tokens[audience]; old != nil {
		t.Refresh = old.Refresh // a login without offline_access keeps the earlier refresh token
	}
	if !tok.Expiry.IsZero() {
		t.Expiry = tok.Expiry.Unix()
	}
	if sc, ok := tok.Extra("scope").(string); ok {
		t.Scope = sc
	}
	if r.Tokens == nil {
		r.Tokens = map[string]*tokenRecord{}
	}
	r.Tokens[audience] = t
}

// Token returns the tokens a session holds for audience ("" is the login's
// default audience), opened from their sealed form; ErrNoSession wrapped in
// an error when there are none. The access token may have expired (see
// Token.Valid); refreshing is the job of a token source.
func (c *Client) Token(s *Session, audience string) (*oauth2.Token, error) {
	if s == nil || s.rec == nil {
		return nil, ErrNoSession
	}
	t := s.rec.Tokens[audience]
	if t == nil {
		return nil, fmt.Errorf("%w: no token for audience %q", ErrNoSession, audience)
	}
	tok := &oauth2.Token{TokenType: t.Type}
	if t.Expiry != 0 {
		tok.Expiry = time.Unix(t.Expiry, 0)
	}
	if t.Access != nil {
		b, err := c.ring.open(t.Access, sealAAD(s.Handle, audience, "access"))
		if err != nil {
			return nil, err
		}
		tok.AccessToken = string(b)
	}
	if t.Refresh != nil {
		b, err := c.ring.open(t.Refresh, sealAAD(s.Handle, audience, "refresh"))
		if err != nil {
			return nil, err
		}
		tok.RefreshToken = string(b)
	}
	return tok, nil
}

// EndSession deletes the session from the store: its cookie and handle stop
// working at once, on every replica.
func (c *Client) EndSession(ctx context.Context, s *Session) error {
	if s == nil || !isRandomToken(s.Handle) {
		return nil
	}
	sctx, done := c.storeContext(ctx)
	if err := done(c.store.Delete(sctx, c.sessionKey(s.Handle))); err != nil {
		return fmt.Errorf("stepup: deleting the session: %w", err)
	}
	return nil
}

// CheckSession returns nil when s satisfies p (as adapted to the session's
// connection by PolicyFor) now, and otherwise a *StepUpError. Both the latest
// interactive login and the latest step-up count as evidence.
func (c *Client) CheckSession(s *Session, p Policy) error {
	eff := c.PolicyFor(p, s.Connection)
	return c.checkSession(s, &eff)
}

// checkSession is CheckSession with a policy already adapted to s's
// connection.
func (c *Client) checkSession(s *Session, eff *Policy) error {
	now := c.now()
	err := eff.Check(s.Authentication, now)
	if err == nil || s.StepUpAt.IsZero() {
		return err
	}
	// The step-up's shortfall (say, too old) says more than the plain login's.
	return eff.Check(s.StepUp, now)
}

// SessionCookie returns the cookie that carries s, a session returned by
// StartSession or LoadSession (a session read by handle carries no cookie
// secret: its cookie clears the browser's), to the browser: HttpOnly,
// SameSite=Lax, Path=/, and Secure with the __Host- prefix on https. It
// expires with the session's absolute lifetime.
func (c *Client) SessionCookie(s *Session) *http.Cookie {
	maxAge := int(s.ExpiresAt.Sub(c.now()) / time.Second)
	if maxAge <= 0 || s.secret == "" {
		return c.ClearSessionCookie()
	}
	return &http.Cookie{
		Name: c.sessionCookie, Value: s.Handle + "." + s.secret, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	}
}

// ClearSessionCookie returns the cookie that removes the session cookie.
func (c *Client) ClearSessionCookie() *http.Cookie {
	return &http.Cookie{Name: c.sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode}
}
