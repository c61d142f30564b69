package stepup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/stepupauth/stepup/store"
)

// A Session is a logged-in user, kept in the Store.
//
// The browser holds a cookie "<handle>.<secret>.<expiry>": two 256-bit
// random values and the session's absolute end (unix milliseconds). The
// record is stored under the handle and keeps only a SHA-256 hash of the
// secret: reading the store (or its key list) gives no usable cookie. The
// handle is stable for the session's life and is what background jobs keep
// (Client.Session); the secret rotates at every login and step-up, so a
// cookie captured before a step-up is dead afterwards.
//
// A page load is one store command: the session record is read and its TTL
// moved in the same atomic command (Store.GetEx; Redis GETEX PX). The idle
// deadline is the record's TTL and nothing else: a page load never rewrites
// the record, so it cannot undo a step-up written meanwhile. The cookie
// carries the absolute end so that the new TTL (the idle timeout, capped at
// that end) is known before the record is read; a cookie past its end costs
// no store call, and the end it carries must equal the record's (it is
// checked after reading), so editing it gains nothing. Since the TTL moves
// before the secret is compared, a cookie with the right handle but a wrong
// or rotated secret also moves the idle deadline (to the idle timeout from
// now, whatever end the cookie claims, so that it can neither shorten the
// session nor grant anything; a record kept past its absolute end is
// refused): the idle timeout ends sessions nobody uses, not sessions whose
// stolen stale cookie is replayed.
//
// The page-load record holds what a page needs only: the user, Auth0's
// session id, the connection hint, the evidence of the latest login and
// step-up, deadlines, email, name, organization (org_id, org_name) and the
// custom claims of Config.BeforeSession (Session.Claim). It is a compact
// binary record, sealed and bound to
// its key (see Client.LoadSession). Tokens, the rotation chain and the
// latest interactive login's raw ID token live in token records of their
// own, read only by Client.Token, Client.IDToken, TokenSource and
// APIClient.
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
	// Email, Name and OrgID are copied from the login's ID token. OrgName
	// is its org_name (present when the tenant puts organization names in
	// tokens). OrgID and OrgName follow the latest login: a login for
	// another organization (or none) replaces them.
	Email, Name, OrgID, OrgName string
	// Authentication is the evidence of the latest interactive login.
	Authentication Authentication
	// StepUp is the evidence of the latest login that performed a requested
	// step-up, and StepUpAt when it completed; zero when none did. Tokens
	// obtained later without interaction (refresh, silent authentication)
	// never change either.
	StepUp   Authentication
	StepUpAt time.Time
	// CreatedAt is the first login; ExpiresAt the absolute end
	// (Config.SessionLifetime). IdleExpiresAt is the end if unused: the TTL
	// that the load (LoadSession, StartSession) set on the record. It is
	// zero for a session read by handle (Client.Session, SessionFor), which
	// neither reads nor moves the TTL.
	CreatedAt, ExpiresAt, IdleExpiresAt time.Time

	secret         string // cookie secret; "" for a session loaded by handle
	connectionHint string // the connection requested at login, consistent with Subject (send it again)
	rec            *sessionRecord
}

// sessionRecord is a session as stored (see encodeSession). decodeSession
// is a parser of untrusted input.
type sessionRecord struct {
	SecretHash string // sha256.Size bytes
	Subject    string
	SID        string
	Connection string // requested (ConnSent) or derived from Subject
	ConnSent   bool   // Connection is the requested one, kept as a hint
	Email      string
	Name       string
	OrgID      string
	Auth       evidence
	HasStepUp  bool
	StepUp     evidence
	StepUpAt   int64 // unix ms
	Created    int64 // unix ms
	Expires    int64 // unix ms, absolute
	// Claims are the custom claims Config.BeforeSession kept, encoded by
	// encodeClaims ("" when none).
	Claims string
	// OrgName is the ID token's org_name (flag sessFlagOrgName; written
	// after Claims, so records without it keep their layout).
	OrgName string
}

type evidence struct {
	ACR      string
	AMR      []string
	AuthTime int64 // unix seconds; 0 = absent
}

// Bounds of a session record's fields: the decoder refuses anything larger,
// and StartSession refuses an ID token whose claims exceed them.
const (
	sessionVersion  = 2
	maxFieldLen     = 1024 // sub, sid, connection, email, name, org_id, acr
	maxAMR          = 16
	maxAMRLen       = 64
	maxClaimsLen    = 4096
	sessFlagConn    = 1 << 0
	sessFlagStepUp  = 1 << 1
	sessFlagOrgName = 1 << 2
	sessKnownFlags  = sessFlagConn | sessFlagStepUp | sessFlagOrgName
	cookieExpDigits = 16
)

func (c *Client) sessionKey(handle string) string { return c.cfg.KeyPrefix + "sess:" + handle }

func secretHash(secret string) []byte {
	var buf [16 + 64]byte
	h := sha256.Sum256(append(append(buf[:0], "stepup session\x00"...), secret...))
	return h[:]
}

func toEvidence(a Authentication) evidence {
	e := evidence{ACR: a.ACR, AMR: append([]string(nil), a.AMR...)}
	if !a.AuthTime.IsZero() {
		e.AuthTime = a.AuthTime.Unix()
	}
	return e
}

// authentication returns e as an Authentication. Its AMR shares e's slice
// (capacity-capped, so an append by the caller copies).
func (e evidence) authentication() Authentication {
	a := Authentication{ACR: e.ACR, AMR: e.AMR[:len(e.AMR):len(e.AMR)]}
	if len(e.AMR) == 0 {
		a.AMR = nil
	}
	if e.AuthTime != 0 {
		a.AuthTime = time.Unix(e.AuthTime, 0)
	}
	return a
}

func (e evidence) valid() bool {
	if len(e.ACR) > maxFieldLen || len(e.AMR) > maxAMR || e.AuthTime < 0 {
		return false
	}
	for _, m := range e.AMR {
		if len(m) > maxAMRLen {
			return false
		}
	}
	return true
}

func writeEvidence(w *recWriter, e *evidence) {
	w.str(e.ACR)
	w.uvarint(uint64(len(e.AMR)))
	for _, m := range e.AMR {
		w.str(m)
	}
	w.varint(e.AuthTime)
}

// readEvidence reads an evidence; its AMR is a substring list of the
// record (one small allocation).
func readEvidence(rd *recReader, e *evidence) {
	e.ACR = rd.str(maxFieldLen)
	n := rd.uvarint()
	if n > maxAMR || n > uint64(len(rd.s)) {
		rd.bad = true
		return
	}
	if n > 0 {
		e.AMR = make([]string, n)
		for i := range e.AMR {
			e.AMR[i] = rd.str(maxAMRLen)
		}
	}
	e.AuthTime = rd.varint()
}

// encodeSession writes r in the session record's binary layout:
//
//	version (1 byte, 2) | flags (1 byte) | secret hash (32 bytes)
//	| created, expires, step-up time (zig-zag varints, unix ms)
//	| sub, sid, connection, email, name, org_id (uvarint length + bytes)
//	| login evidence [| step-up evidence] (acr, amr count and items, auth_time)
//	| custom claims (uvarint length + bytes, at most 4 KiB, see encodeClaims)
//	[| org_name (uvarint length + bytes; flag 4)]
//
// It fails on a field over its bound (see maxFieldLen).
func encodeSession(r *sessionRecord) ([]byte, error) {
	if !r.validFields() {
		return nil, errors.New("stepup: a session field is over its bound (sub, sid, email, name, org_id and acr: 1 KiB each; 16 amr values of 64 bytes)")
	}
	w := recWriter{b: make([]byte, 0, 160+len(r.Subject)+len(r.SID)+len(r.Email)+len(r.Name)+len(r.OrgID)+len(r.Claims))}
	w.byte(sessionVersion)
	var flags byte
	if r.ConnSent {
		flags |= sessFlagConn
	}
	if r.HasStepUp {
		flags |= sessFlagStepUp
	}
	if r.OrgName != "" {
		flags |= sessFlagOrgName
	}
	w.byte(flags)
	w.b = append(w.b, r.SecretHash...)
	w.varint(r.Created)
	w.varint(r.Expires)
	w.varint(r.StepUpAt)
	for _, s := range [...]string{r.Subject, r.SID, r.Connection, r.Email, r.Name, r.OrgID} {
		w.str(s)
	}
	writeEvidence(&w, &r.Auth)
	if r.HasStepUp {
		writeEvidence(&w, &r.StepUp)
	}
	w.str(r.Claims)
	if r.OrgName != "" {
		w.str(r.OrgName)
	}
	return w.b, nil
}

func (r *sessionRecord) validFields() bool {
	for _, s := range [...]string{r.Subject, r.SID, r.Connection, r.Email, r.Name, r.OrgID, r.OrgName} {
		if len(s) > maxFieldLen {
			return false
		}
	}
	return len(r.SecretHash) == sha256.Size && len(r.Claims) <= maxClaimsLen && r.Auth.valid() && r.StepUp.valid()
}

// decodeSession parses a session record into r (plaintext: opened already).
func decodeSession(data []byte, r *sessionRecord) error {
	rd := recReader{s: string(data)}
	if v := rd.byte(); v != sessionVersion {
		return fmt.Errorf("%w: session version %d", errCorruptRecord, v)
	}
	flags := rd.byte()
	if flags&^sessKnownFlags != 0 {
		return fmt.Errorf("%w: session flags", errCorruptRecord)
	}
	r.ConnSent, r.HasStepUp = flags&sessFlagConn != 0, flags&sessFlagStepUp != 0
	r.SecretHash = rd.fixed(sha256.Size)
	r.Created, r.Expires, r.StepUpAt = rd.varint(), rd.varint(), rd.varint()
	for _, f := range [...]*string{&r.Subject, &r.SID, &r.Connection, &r.Email, &r.Name, &r.OrgID} {
		*f = rd.str(maxFieldLen)
	}
	readEvidence(&rd, &r.Auth)
	if r.HasStepUp {
		readEvidence(&rd, &r.StepUp)
	}
	r.Claims = rd.str(maxClaimsLen)
	if flags&sessFlagOrgName != 0 {
		if r.OrgName = rd.str(maxFieldLen); r.OrgName == "" {
			rd.bad = true
		}
	}
	switch {
	case !rd.done():
		return fmt.Errorf("%w: session layout", errCorruptRecord)
	case r.Subject == "":
		return fmt.Errorf("%w: session subject", errCorruptRecord)
	case r.Created <= 0 || r.Expires < r.Created:
		return fmt.Errorf("%w: session times", errCorruptRecord)
	case r.Auth.AuthTime < 0 || r.StepUp.AuthTime < 0:
		return fmt.Errorf("%w: session auth_time", errCorruptRecord)
	case !r.HasStepUp && r.StepUpAt != 0, r.HasStepUp && r.StepUpAt <= 0:
		return fmt.Errorf("%w: session step-up", errCorruptRecord)
	case r.Claims != "" && checkEncodedClaims(r.Claims) != nil:
		return fmt.Errorf("%w: session claims", errCorruptRecord)
	}
	return nil
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }

// loadedSession holds a Session and its record in one allocation.
type loadedSession struct {
	s Session
	r sessionRecord
}

func (c *Client) fillSession(s *Session, handle string, r *sessionRecord) {
	*s = Session{
		Handle:         handle,
		Subject:        r.Subject,
		SessionID:      r.SID,
		Connection:     connectionKey(c.cfg.ConnectionPolicies, r.Subject),
		Email:          r.Email,
		Name:           r.Name,
		OrgID:          r.OrgID,
		OrgName:        r.OrgName,
		Authentication: r.Auth.authentication(),
		CreatedAt:      msTime(r.Created),
		ExpiresAt:      msTime(r.Expires),
		rec:            r,
	}
	if r.ConnSent && connectionConsistent(r.Connection, r.Subject) {
		s.connectionHint = r.Connection
	}
	if r.HasStepUp {
		s.StepUp = r.StepUp.authentication()
		s.StepUpAt = msTime(r.StepUpAt)
	}
}

// idleTTL is the TTL a use of the session at nowMS gives its record: the
// idle timeout, capped at the absolute end expMS.
func (c *Client) idleTTL(nowMS, expMS int64) time.Duration {
	return time.Duration(min(c.cfg.SessionIdleTimeout.Milliseconds(), expMS-nowMS)) * time.Millisecond
}

// writeSession stores r under handle with the TTL of a use at now.
func (c *Client) writeSession(ctx context.Context, handle string, r *sessionRecord, now time.Time) (time.Duration, error) {
	ttl := c.idleTTL(now.UnixMilli(), r.Expires)
	if ttl <= 0 {
		return 0, ErrNoSession
	}
	data, err := encodeSession(r)
	if err != nil {
		return 0, err
	}
	err = c.putRecord(ctx, c.sessionKey(handle), data, ttl)
	c.sessions.drop(handle) // the bytes changed (or may have): the entry can no longer answer
	if err != nil {
		return 0, fmt.Errorf("stepup: saving the session: %w", err)
	}
	return ttl, nil
}

// parseCookie splits a session cookie value "<handle>.<secret>.<exp>":
// handle and secret are random tokens (isRandomToken: they hold no dot, so
// the dots are at fixed offsets), exp a positive decimal number.
func parseCookie(v string) (handle, secret string, expMS int64, ok bool) {
	const h, s = randomTokenLen, 2*randomTokenLen + 1 // the two dots
	if len(v) <= s+1 || len(v) > s+1+cookieExpDigits || v[h] != '.' || v[s] != '.' {
		return "", "", 0, false
	}
	handle, secret, exp := v[:h], v[h+1:s], v[s+1:]
	if !isRandomToken(handle) || !isRandomToken(secret) {
		return "", "", 0, false
	}
	// At most cookieExpDigits (16) decimal digits: no overflow.
	var n int64
	for i := 0; i < len(exp); i++ {
		if exp[i] < '0' || exp[i] > '9' {
			return "", "", 0, false
		}
		n = n*10 + int64(exp[i]-'0')
	}
	if n <= 0 {
		return "", "", 0, false
	}
	return handle, secret, n, true
}

// LoadSession returns the live session whose cookie value is given, and
// ErrNoSession when there is none (no cookie, unknown, rotated, expired,
// or a record that does not open: see below). A failing store gives an
// error matching store.ErrUnavailable: callers must fail closed.
//
// It costs one store command, which reads the record and moves its idle
// deadline (Store.GetEx), and no write: see Session. A cookie past the
// absolute end it carries costs none. The record is sealed with the
// Client's key ring and bound to its key: a record written without the
// keys (a forged session), copied from another key, or written by the
// previous version is absent (and logged, at most once a minute). When the
// store returns the very bytes this Client opened at an earlier load, the
// record comes from the session cache (Config.SessionCacheSize) without
// opening or decoding them again; the store command is sent and the
// cookie's secret checked all the same.
func (c *Client) LoadSession(ctx context.Context, cookieValue string) (*Session, error) {
	handle, secret, exp, ok := parseCookie(cookieValue)
	if !ok {
		return nil, ErrNoSession
	}
	nowMS := c.now().UnixMilli()
	if nowMS >= exp {
		return nil, ErrNoSession
	}
	ttl := c.idleTTL(nowMS, exp)
	// The TTL moves before the cookie's end is compared with the record's,
	// so it must not follow that end: a cookie with the handle alone and an
	// end 1 ms away would end the session. A record kept past its absolute
	// end is refused all the same.
	s, err := c.loadSession(ctx, handle, secret, nowMS)
	if err != nil {
		return nil, err
	}
	if s.rec.Expires != exp {
		return nil, ErrNoSession
	}
	s.IdleExpiresAt = msTime(nowMS + ttl.Milliseconds())
	s.secret = secret
	return s, nil
}

// Session returns the session with the given handle, for background jobs
// that act for a user (see Session.Handle). It does not extend the session's
// idle deadline (IdleExpiresAt is zero). ErrNoSession when it has ended.
func (c *Client) Session(ctx context.Context, handle string) (*Session, error) {
	if !isRandomToken(handle) {
		return nil, ErrNoSession
	}
	ls, err := c.readSession(ctx, handle, 0)
	if err != nil {
		return nil, err
	}
	if c.now().UnixMilli() >= ls.r.Expires {
		return nil, ErrNoSession
	}
	c.fillSession(&ls.s, handle, &ls.r)
	return &ls.s, nil
}

// loadSession reads the session record of handle for a cookie with secret,
// moving its TTL to the idle timeout (one GetEx), and returns its Session:
// ErrNoSession when the record is absent, does not open or decode, or the
// secret's hash is not the record's. handle and secret are valid random
// tokens (parseCookie). When the store returns the very sealed bytes that
// the session cache's entry for handle was made from, the entry answers:
// the record is not opened or decoded again (see sessionCache).
func (c *Client) loadSession(ctx context.Context, handle, secret string, nowMS int64) (*Session, error) {
	e := c.sessions.lookup(handle)
	var key string
	if e != nil {
		key = e.key
	} else {
		key = c.sessionKey(handle)
	}
	data, err := c.getSealed(ctx, key, c.cfg.SessionIdleTimeout)
	if errors.Is(err, store.ErrNotFound) {
		c.sessions.drop(handle)
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("stepup: reading the session: %w", err)
	}
	if e != nil && bytes.Equal(e.sealed, data) {
		// The very record the entry was made from: the full path would
		// decode the same secret hash.
		if !secretMatches(secret, e.rec) {
			return nil, ErrNoSession
		}
		return e.session(), nil
	}
	var sealed []byte
	if c.sessions != nil && len(data) <= maxCachedSessionBytes {
		sealed = bytes.Clone(data) // data is opened in place
	}
	ls, err := c.openSession(ctx, key, data)
	if err != nil {
		return nil, err
	}
	if !secretMatches(secret, &ls.r) {
		return nil, ErrNoSession
	}
	c.fillSession(&ls.s, handle, &ls.r)
	if sealed == nil {
		return &ls.s, nil
	}
	e = &sessionCacheEntry{key: key, sealed: sealed, rec: &ls.r, tmpl: ls.s}
	c.sessions.put(handle, e, nowMS)
	return e.session(), nil
}

// secretMatches reports, in constant time, whether secret's hash is the
// one r keeps.
func secretMatches(secret string, r *sessionRecord) bool {
	return subtle.ConstantTimeCompare(secretHash(secret), []byte(r.SecretHash)) == 1
}

// live reports whether r has not reached its absolute end at nowMS (unix
// ms). The idle deadline is the record's TTL: a record that is read has not
// idled out.
func (r *sessionRecord) live(nowMS int64) bool { return nowMS < r.Expires }

// readSession reads (and, with getex > 0, moves the TTL of) the session
// record of handle. ErrNoSession when it is absent or does not open or
// decode.
func (c *Client) readSession(ctx context.Context, handle string, getex time.Duration) (*loadedSession, error) {
	key := c.sessionKey(handle)
	data, err := c.getSealed(ctx, key, getex)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("stepup: reading the session: %w", err)
	}
	return c.openSession(ctx, key, data)
}

// openSession opens (in place) and decodes the sealed session record data
// read from key: ErrNoSession, logged (see unreadable), when it does not.
func (c *Client) openSession(ctx context.Context, key string, data []byte) (*loadedSession, error) {
	pt, err := c.ring.openRecordInPlace(key, data)
	if err != nil {
		c.unreadable(ctx, kindSession, err)
		return nil, ErrNoSession
	}
	ls := &loadedSession{}
	if err := decodeSession(pt, &ls.r); err != nil {
		c.unreadable(ctx, kindSession, err)
		return nil, ErrNoSession
	}
	return ls, nil
}

// StartSession records a LoginResult as a session and returns it; set its
// cookie with SessionCookie. The cookie's secret is always new (rotation at
// every login and step-up: the previous cookie stops working). When
// previous is a live session of the same user and organization (org_id),
// the session continues under
// the same handle: its absolute lifetime and tokens for other audiences are
// kept, and a step-up adds to its evidence. Otherwise a new session starts
// and previous ends (its records are deleted; its refresh tokens are not
// revoked).
//
// It writes the session's index entries first (by Auth0 session id and by
// user, see Client.LogoutSID and Client.LogoutUser, and the session's own
// list of token records), then the login's token record and the raw ID
// token of an interactive login (Client.IDToken), then the session record.
//
// Config.BeforeSession runs first, before anything is written: its error
// refuses the login (ErrLoginRefused; the previous session is left as it
// was), and the claims it returns are kept in the session record (see
// Session.Claim). The organization (OrgID, OrgName) follows the login's ID
// token. It emits EventLogin, and EventStepUpCompleted when the login
// satisfied a step-up policy (or EventLoginRefused).
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
	idt := login.IDToken
	// The hook first: a refused login stores nothing and leaves the
	// previous session as it was.
	var claims string
	if h := c.cfg.BeforeSession; h != nil {
		m, err := h(ctx, login)
		if err != nil {
			c.emit(ctx, Event{Kind: EventLoginRefused, Subject: idt.Subject, SessionID: idt.SessionID,
				Connection: connectionKey(c.cfg.ConnectionPolicies, idt.Subject), Organization: idt.OrgID,
				Policy: login.Policy.Name, Reason: truncateUTF8(err.Error(), maxAuthorizeErrorDescr)})
			if errors.Is(err, ErrLoginRefused) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", ErrLoginRefused, err)
		}
		if claims, err = encodeClaims(m); err != nil {
			return nil, err
		}
	}
	now := c.now()
	nowMS := now.UnixMilli()
	ls := &loadedSession{}
	r := &ls.r
	var (
		handle  string
		fresh   bool
		prevSID string
	)
	// A login for another organization starts a new session: the tokens the
	// session holds for other audiences were issued for the previous one.
	if previous != nil && previous.rec != nil && previous.Subject == idt.Subject && previous.rec.live(nowMS) &&
		previous.rec.OrgID == idt.OrgID {
		handle = previous.Handle
		*r = *previous.rec
		// The evidence lists too: previous.rec may be the session cache's
		// record, which nobody may change.
		r.Auth.AMR, r.StepUp.AMR = slices.Clone(r.Auth.AMR), slices.Clone(r.StepUp.AMR)
		prevSID = r.SID
	} else {
		if previous != nil && isRandomToken(previous.Handle) {
			if err := c.endSessionRecords(ctx, previous.Handle, previous.rec, nil); err != nil {
				return nil, fmt.Errorf("stepup: ending the previous session: %w", err)
			}
		}
		handle, fresh = randomToken(), true
		*r = sessionRecord{
			Subject: idt.Subject,
			Created: nowMS,
			Expires: now.Add(c.cfg.SessionLifetime).UnixMilli(),
		}
	}
	secret := randomToken()
	r.SecretHash = string(secretHash(secret))
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
	r.OrgID, r.OrgName = idt.OrgID, orgNameOf(idt)
	if c.cfg.BeforeSession != nil {
		r.Claims = claims
	}
	if idt.Email != "" {
		r.Email = idt.Email
	}
	if idt.Name != "" {
		r.Name = idt.Name
	}
	if !login.Silent {
		r.Auth = toEvidence(idt.Authentication())
		if login.Policy.RequiresStepUp() {
			r.StepUp, r.HasStepUp = r.Auth, true
			r.StepUp.AMR = append([]string(nil), r.Auth.AMR...)
			r.StepUpAt = nowMS
			// Auth0 sends auth_time only with max_age or prompt=login, so a
			// plain MFA step-up would fail every later MaxAge check (and ask
			// the user again). Auth0 performs MFA in the very transaction
			// that asks for its pape class in acr_values (even with a
			// remembered browser): such a step-up's time is this exchange.
			if r.StepUp.AuthTime == 0 && idt.ACR == ACRMultiFactor && slices.Contains(login.Policy.ACR, ACRMultiFactor) {
				r.StepUp.AuthTime = now.Unix()
			}
		}
	} else if fresh {
		// A new session from a silent login: record what it says about the
		// authentication, except amr, which Auth0 leaves out.
		r.Auth = evidence{ACR: idt.ACR, AuthTime: toEvidence(idt.Authentication()).AuthTime}
	}
	if !r.validFields() {
		return nil, fmt.Errorf("stepup: the ID token's claims are over the session's bounds (sub, sid, email, name, org_id and acr: %d bytes each; %d amr values of %d bytes)", maxFieldLen, maxAMR, maxAMRLen)
	}
	life := time.Duration(r.Expires-nowMS) * time.Millisecond
	if life <= 0 {
		return nil, ErrNoSession
	}
	// Indexes first: a session that exists is always findable by its sid
	// and user (a failure here leaves at most an index entry that names no
	// session). A continued session adds its entries again (IndexAdd is
	// idempotent): a logout by sid or user that ended it between the
	// callback's read of it and these writes removed them, and the session
	// written below must not live on outside every index.
	if prevSID != "" && prevSID != r.SID {
		if err := c.indexRemove(ctx, c.sidIndexKey(prevSID), handle); err != nil {
			return nil, err
		}
	}
	if r.SID != "" {
		if err := c.indexAdd(ctx, c.sidIndexKey(r.SID), handle, life); err != nil {
			return nil, err
		}
	}
	if err := c.indexAdd(ctx, c.subIndexKey(r.Subject), handle, life); err != nil {
		return nil, err
	}
	if login.Token != nil && (login.Token.AccessToken != "" || login.Token.RefreshToken != "") {
		if err := c.storeLoginToken(ctx, handle, r, login.Audience, login.Token, !fresh, now); err != nil {
			return nil, err
		}
	}
	if !login.Silent && idt.Raw != "" {
		if err := c.storeIDToken(ctx, handle, r, idt.Raw, now); err != nil {
			return nil, err
		}
	}
	ttl, err := c.writeSession(ctx, handle, r, now)
	if err != nil {
		return nil, err
	}
	c.fillSession(&ls.s, handle, r)
	ls.s.IdleExpiresAt = now.Add(ttl)
	ls.s.secret = secret
	s := &ls.s
	ev := Event{Kind: EventLogin, Session: handlePrefix(handle), Subject: s.Subject, SessionID: s.SessionID,
		Connection: s.Connection, Organization: s.OrgID, Policy: login.Policy.Name, Audience: login.Audience,
		ACR: idt.ACR, AMR: idt.AMR, AuthTime: idt.AuthTime}
	if login.Silent {
		ev.Reason = "silent"
	}
	c.emit(ctx, ev)
	if !login.Silent && login.Policy.RequiresStepUp() {
		ev.Kind, ev.Reason = EventStepUpCompleted, ""
		c.emit(ctx, ev)
	}
	return s, nil
}

// EndSession deletes the session from the store, with its token records,
// leases and out-of-band records: its cookie and handle stop working at
// once, on every replica. Unlike Client.Logout it revokes nothing at the
// tenant.
func (c *Client) EndSession(ctx context.Context, s *Session) error {
	if s == nil || !isRandomToken(s.Handle) {
		return nil
	}
	if err := c.endSessionRecords(ctx, s.Handle, s.rec, nil); err != nil {
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
		Name: c.sessionCookie, Value: s.Handle + "." + s.secret + "." + strconv.FormatInt(s.ExpiresAt.UnixMilli(), 10), Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	}
}

// ClearSessionCookie returns the cookie that removes the session cookie.
func (c *Client) ClearSessionCookie() *http.Cookie {
	return &http.Cookie{Name: c.sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode}
}
