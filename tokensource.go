package stepup

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"weak"

	"github.com/stepupauth/stepup/store"
	"golang.org/x/oauth2"
)

// Errors of a TokenSource.
var (
	// ErrNoRefreshToken: the access token has expired and the session holds
	// no refresh token for the audience (the login did not ask for
	// offline_access). The user must log in again.
	ErrNoRefreshToken = errors.New("stepup: no refresh token for the audience")
	// ErrRefreshTokenInvalid: the tenant refused the refresh token
	// (invalid_grant: revoked, expired, or its family was revoked after a
	// reuse). The user must log in again.
	ErrRefreshTokenInvalid = errors.New("stepup: refresh token refused by the tenant")
	// ErrRefreshNotStored: the tenant rotated the refresh token but the
	// Store did not accept the result after every retry. The Client keeps
	// the result in memory and the next Token call of any of its
	// TokenSources for the session and audience stores it; until then no
	// access token is handed out. The error also matches the store's
	// error (store.ErrUnavailable). Other workers get it too, without a
	// store error, while the refresh's lease says "answered, not stored"
	// and its deadline has passed: they never present the rotated-out
	// refresh token (Auth0 would revoke the family); the session's tokens
	// for the audience stay unusable until the holder stores its result
	// (its next call) or the user logs in again.
	ErrRefreshNotStored = errors.New("stepup: refreshed tokens could not be stored")
	// ErrRefreshTimeout: another worker held the refresh lease for longer
	// than TokenSourceOptions.MaxWait.
	ErrRefreshTimeout = errors.New("stepup: timed out waiting for another worker's refresh")
)

// Defaults of TokenSourceOptions.
const (
	DefaultEarlyExpiry   = 30 * time.Second
	DefaultLeaseTTL      = 20 * time.Second
	DefaultStoreAttempts = 4
)

// TokenSourceOptions configures Client.TokenSource. The zero value means the
// defaults stated beside each field.
type TokenSourceOptions struct {
	// Audience is the API whose tokens the source gives: the key the session
	// keeps them under ("" is the login's default audience,
	// Config.Audience).
	Audience string
	// EarlyExpiry treats an access token as expired this long before its
	// expiry, so that a job does not call an API with a token that expires
	// on the way. Default: 30 s.
	EarlyExpiry time.Duration
	// LeaseTTL bounds how long one worker may hold the refresh lease
	// before the tenant answers; after it another worker takes over. The
	// tenant call is cut at LeaseTTL minus a second. As soon as the tenant
	// answers, the holder marks the lease "answered" with a new deadline
	// LeaseTTL away, and its store writes (with their retries) end within
	// LeaseTTL minus a second. An answered lease is never taken over: its
	// waiters wait for the stored result, or get ErrRefreshNotStored once
	// its deadline has passed. If the tenant has a rotation overlap period,
	// keep LeaseTTL below it: a worker that died after the tenant rotated
	// the token but before it could mark the lease is then replaced within
	// the period, and its successor's reuse of the previous token is
	// accepted instead of revoking the family. Default: 20 s.
	LeaseTTL time.Duration
	// MaxWait bounds how long a worker waits for another worker's refresh.
	// It is real time (a stopped or injected clock cannot make a worker wait
	// forever); ctx bounds the wait too. Default: twice LeaseTTL, so that a
	// dead holder is outlived.
	MaxWait time.Duration
	// PollInterval is the first pause between two looks at the store while
	// another worker refreshes; it doubles up to 8 times itself.
	// Default: 5 ms.
	PollInterval time.Duration
	// StoreAttempts is how many times the refreshed tokens are written
	// before ErrRefreshNotStored is returned, all within LeaseTTL minus a
	// second of the tenant's answer. Default: 4 (with 25, 50 and 100 ms
	// pauses; each attempt at most 5 s).
	StoreAttempts int
}

// TokenSource gives the access token a session holds for one audience,
// refreshing it when it has expired, safely across goroutines, processes
// and replicas that share the Client's Store. It implements
// oauth2.TokenSource. Make one with Client.TokenSource; it is safe for
// concurrent use.
//
// A call costs one store read while the stored access token is valid (no
// tenant call). When it has expired (EarlyExpiry included), exactly one
// worker refreshes: the one that wins a lease in the store (set-if-absent
// with a TTL), keyed by the refresh token being rotated. The others poll the
// store until the winner has stored the new tokens, then return them; so a
// refresh token is presented to the tenant once, and Auth0's reuse detection
// (which revokes the whole family and signs the user out everywhere) is never
// triggered by our own workers. A lease whose holder died (crash, cut
// connection) is taken over once LeaseTTL has passed on the Client's clock.
//
// The holder stores the rotated refresh token (sealed), with retries, before
// it hands out the new access token: a token the tenant issued is never
// dropped silently. Before that it marks its lease "answered": from then on
// no worker presents the rotated-out token, however long the store write
// takes. If the store keeps failing, Token returns ErrRefreshNotStored and
// the Client keeps the tokens (in memory, per session and audience) for the
// next Token call of any of its TokenSources to store them first; the
// answered lease stays in the store (until the session's end) and tells the
// other workers not to refresh (ErrRefreshNotStored) meanwhile.
//
// A refreshed ID token is verified (signature, issuer, audience, times,
// subject equal to the session's) but never changes the session's step-up
// evidence: Auth0 sends no amr after a refresh. A refresh answered with
// mfa_required (an Action demanding MFA) gives a *MFARequiredError.
//
// The tokens live in the session's token record for the audience
// (tok:<handle>:<audience>), the authority on the rotation chain; page loads
// never read it. While its access token is valid a call reads that record
// only, so a job keeps getting a valid access token after the user's
// session record has idled out (until the token expires, or a logout
// deletes the record); a refresh first checks that the session is live
// (one more read), so an idled-out or ended session's tokens are never
// renewed.
type TokenSource struct {
	c        *Client
	ctx      context.Context
	handle   string
	audience string
	opts     TokenSourceOptions
	holder   string // identifies this source in the leases it takes
}

// A refresh result the store refused is kept per Client, session and
// audience (not per TokenSource: a job that makes a TokenSource per run
// finds the result its previous run could not store), until a Token call
// of any TokenSource of the Client for them stores it. Like the go-auth0
// clients (worker_auth0.go), the slots hang off their Client through weak
// pointers.
var pendingSlots sync.Map // pendingKey -> *pendingSlot

type pendingKey struct {
	c                weak.Pointer[Client]
	handle, audience string
}

type pendingSlot struct {
	p atomic.Pointer[pendingRefresh]
	// flushing serialises the calls that store p: a one-slot semaphore, so
	// that a caller waiting for another's store I/O gives up when its ctx
	// ends.
	flushing chan struct{}
}

// slot returns the pending slot of ts's Client, session and audience; nil
// when there is none and create is false.
func (ts *TokenSource) slot(create bool) (pendingKey, *pendingSlot) {
	k := pendingKey{c: weak.Make(ts.c), handle: ts.handle, audience: ts.audience}
	if v, ok := pendingSlots.Load(k); ok {
		return k, v.(*pendingSlot)
	}
	if !create {
		return k, nil
	}
	v, loaded := pendingSlots.LoadOrStore(k, &pendingSlot{flushing: make(chan struct{}, 1)})
	if !loaded {
		runtime.AddCleanup(ts.c, func(k pendingKey) { pendingSlots.Delete(k) }, k)
	}
	return k, v.(*pendingSlot)
}

// pendingRefresh is a refresh result the store did not accept yet.
type pendingRefresh struct {
	from    string // hash of the refresh token that was rotated
	to      string // hash of its successor (from when not rotated)
	attempt int    // the lease attempt that rotated it
	rec     *tokenRecord
	token   *oauth2.Token // nil when the access token must not be handed out
	err     error         // returned after storing (ID-token failure)
}

// TokenSource returns a token source for the session with the given handle
// (Session.Handle) and opts.Audience. ctx is used by Token; TokenContext
// takes its own.
func (c *Client) TokenSource(ctx context.Context, handle string, opts TokenSourceOptions) *TokenSource {
	if opts.EarlyExpiry <= 0 {
		opts.EarlyExpiry = DefaultEarlyExpiry
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.LeaseTTL < 2*time.Second {
		opts.LeaseTTL = 2 * time.Second
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 2 * opts.LeaseTTL
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 5 * time.Millisecond
	}
	if opts.StoreAttempts <= 0 {
		opts.StoreAttempts = DefaultStoreAttempts
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if opts.Audience == "" {
		opts.Audience = c.cfg.Audience
	}
	return &TokenSource{c: c, ctx: ctx, handle: handle, audience: opts.Audience, opts: opts, holder: randomToken()[:16]}
}

// Token returns a valid access token, with the context given to
// Client.TokenSource. It implements oauth2.TokenSource.
func (ts *TokenSource) Token() (*oauth2.Token, error) { return ts.TokenContext(ts.ctx) }

// TokenContext returns a valid access token (see TokenSource). Errors:
// ErrNoSession (the session has ended, or holds no token for the audience),
// ErrNoRefreshToken, ErrRefreshTokenInvalid, *MFARequiredError,
// ErrRefreshNotStored, ErrRefreshTimeout, store failures
// (store.ErrUnavailable), tenant failures (*TenantError,
// ErrTenantUnavailable), and ctx's error.
func (ts *TokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if tok, err, done := ts.flushPending(ctx); done {
		return tok, err
	}
	if !isRandomToken(ts.handle) {
		return nil, ErrNoSession
	}
	t, err := ts.read(ctx)
	if err != nil {
		return nil, err
	}
	if ts.valid(t, ts.c.now()) {
		return ts.open(t), nil
	}
	return ts.refresh(ctx, t)
}

// read returns the token record of the source's session and audience: one
// store read. ErrNoSession when there is none or the session has reached
// its absolute end.
func (ts *TokenSource) read(ctx context.Context) (*tokenRecord, error) {
	t, err := ts.c.readToken(ctx, ts.c.tokenKey(ts.handle, ts.audience))
	if errors.Is(err, ErrNoSession) {
		return nil, fmt.Errorf("%w: no token for audience %q", ErrNoSession, ts.audience)
	}
	if err != nil {
		return nil, err
	}
	if ts.c.now().UnixMilli() >= t.SessExp {
		return nil, ErrNoSession
	}
	return t, nil
}

// valid reports whether t's access token may be handed out at now.
func (ts *TokenSource) valid(t *tokenRecord, now time.Time) bool {
	if t == nil || t.Access == "" {
		return false
	}
	return t.Expiry == 0 || now.Add(ts.opts.EarlyExpiry).Before(time.Unix(t.Expiry, 0))
}

// open makes t's access token an oauth2.Token (without the refresh token: a
// worker has no use for it, and it must not travel further).
func (ts *TokenSource) open(t *tokenRecord) *oauth2.Token {
	tok := &oauth2.Token{AccessToken: t.Access, TokenType: t.Type}
	if tok.TokenType == "" {
		tok.TokenType = "Bearer"
	}
	if t.Expiry != 0 {
		tok.Expiry = time.Unix(t.Expiry, 0)
	}
	if t.Scope != "" {
		tok = tok.WithExtra(map[string]any{"scope": t.Scope})
	}
	return tok
}

// chainState is the current token state of (session, audience): the
// tokens to use and the rotation chain they belong to.
type chainState struct {
	tok     *tokenRecord
	refresh string   // refresh token, "" if none
	hash    string   // refreshHash(refresh), "" if none
	prev    []string // hashes of refresh tokens rotated out, newest first
}

func stateOf(t *tokenRecord) *chainState {
	st := &chainState{tok: t, refresh: t.Refresh, prev: t.Prev}
	if t.Refresh != "" {
		st.hash = refreshHash(t.Refresh)
	}
	return st
}

// refresh is the slow path: the stored access token has expired.
func (ts *TokenSource) refresh(ctx context.Context, t *tokenRecord) (*oauth2.Token, error) {
	c := ts.c
	// A refresh extends what the session can do: only for a session that
	// is live (not idled out, not ended). One more read, on this path only.
	if _, err := c.readSession(ctx, ts.handle, 0); err != nil {
		return nil, err
	}
	waitStart := time.Now()
	pause := ts.opts.PollInterval
	for {
		st := stateOf(t)
		if ts.valid(st.tok, c.now()) {
			return ts.open(st.tok), nil
		}
		if st.refresh == "" {
			return nil, fmt.Errorf("%w %q", ErrNoRefreshToken, ts.audience)
		}
		until, attempt, won, err := ts.acquire(ctx, st.hash, t.SessExp)
		if err != nil {
			return nil, err
		}
		if won {
			return ts.refreshAsHolder(ctx, st, until, attempt)
		}
		// Another worker refreshes: wait for its result.
		if time.Since(waitStart) >= ts.opts.MaxWait {
			return nil, fmt.Errorf("%w (%s)", ErrRefreshTimeout, ts.opts.MaxWait)
		}
		if err := sleepCtx(ctx, pause); err != nil {
			return nil, err
		}
		pause = min(2*pause, 8*ts.opts.PollInterval)
		if t, err = ts.read(ctx); err != nil {
			return nil, err
		}
	}
}

// acquire tries to take the lease for rotating the refresh token whose
// hash is rt. Leases are numbered attempts: attempt n+1 may be taken only
// once attempt n has gone stale (its holder's deadline, on the Client's
// clock, has passed), and each attempt is taken by set-if-absent, so that
// exactly one worker holds the live attempt. Attempt records are never
// deleted (they expire from the store); once the token is rotated, its
// leases are never looked at again.
func (ts *TokenSource) acquire(ctx context.Context, rt string, sessExp int64) (until time.Time, attempt int, won bool, err error) {
	c := ts.c
	for n := 0; n < maxLeaseAttempts; {
		now := c.now()
		until = now.Add(ts.opts.LeaseTTL)
		name := leaseKeyName(ts.handle, ts.audience, rt, n)
		key := c.cfg.KeyPrefix + name
		rec := c.ring.sealRecord(key, encodeLease(leaseRecord{V: leaseVersion, Holder: ts.holder, Until: until.UnixMilli()}))
		won, err := c.store.SetNX(ctx, key, rec, leaseStoreTTL(ts.opts.LeaseTTL))
		if err != nil {
			return time.Time{}, 0, false, fmt.Errorf("stepup: taking the refresh lease: %w", err)
		}
		if won {
			// Listed with the session's records, so that a logout deletes it.
			if life := time.Duration(sessExp-now.UnixMilli()) * time.Millisecond; life > 0 {
				if err := c.store.IndexAdd(ctx, c.handleIndexKey(ts.handle), name, life); err != nil {
					c.log.WarnContext(ctx, "stepup: listing a refresh lease with its session", "error", err)
				}
			}
			return until, n, true, nil
		}
		data, err := c.store.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			continue // expired between the two calls: try this attempt again
		}
		if err != nil {
			return time.Time{}, 0, false, fmt.Errorf("stepup: reading the refresh lease: %w", err)
		}
		pt, err := c.ring.openRecordInPlace(key, data)
		var l leaseRecord
		if err == nil {
			l, err = decodeLease(pt)
		}
		if err != nil {
			c.unreadable(ctx, kindLease, err)
			n++ // treated as stale
			continue
		}
		if l.Err == "invalid_grant" {
			return time.Time{}, 0, false, fmt.Errorf("%w: invalid_grant (answered to another worker)", ErrRefreshTokenInvalid)
		}
		if l.Answered {
			// The tenant has rotated this token for another worker: never
			// present it again. Wait for the stored result while the holder
			// is storing it; after its deadline, say the result is not stored.
			if now.UnixMilli() >= l.Until {
				return time.Time{}, 0, false, fmt.Errorf("%w: another worker's refresh was answered by the tenant, its result is not stored yet", ErrRefreshNotStored)
			}
			return time.Time{}, 0, false, nil
		}
		if now.UnixMilli() >= l.Until {
			n++ // its holder is gone, or was refused: the next attempt may be taken
			continue
		}
		return time.Time{}, 0, false, nil
	}
	return time.Time{}, 0, false, fmt.Errorf("%w: more than %d stale refresh leases", ErrRefreshTimeout, maxLeaseAttempts)
}

const maxLeaseAttempts = 64

// releaseLease marks the holder's attempt as over (a past deadline) with
// the tenant's error code. Only the holder writes its attempt's key.
func (ts *TokenSource) releaseLease(ctx context.Context, rt string, attempt int, code string) {
	key := ts.c.leaseKey(ts.handle, ts.audience, rt, attempt)
	rec := ts.c.ring.sealRecord(key, encodeLease(leaseRecord{V: leaseVersion, Holder: ts.holder, Until: 1, Err: code}))
	// Detached (the release must happen even if the caller gave up) but
	// bounded like every other post-refresh write: a stuck store must not
	// hold the worker. A release that fails leaves the lease to its deadline.
	sctx, cancel := detachedTimeout(ctx, storeAttemptTimeout(ts.storeBudget()))
	defer cancel()
	if err := ts.c.store.Set(sctx, key, rec, leaseStoreTTL(ts.opts.LeaseTTL)); err != nil {
		ts.c.log.WarnContext(ctx, "stepup: releasing the refresh lease", "error", err)
	}
}

// markAnswered re-marks the holder's attempt as answered by the tenant, with
// a new deadline LeaseTTL away, kept in the store until the session's end
// (expiresMS): an answered lease must outlive any chance that a worker
// presents the rotated-out token. It reports whether the store took it.
func (ts *TokenSource) markAnswered(ctx context.Context, rt string, attempt int, expiresMS int64, budget time.Duration) bool {
	c := ts.c
	now := c.now()
	key := c.leaseKey(ts.handle, ts.audience, rt, attempt)
	rec := c.ring.sealRecord(key, encodeLease(leaseRecord{V: leaseVersion, Holder: ts.holder, Until: now.Add(ts.opts.LeaseTTL).UnixMilli(), Answered: true}))
	ttl := max(time.Duration(expiresMS-now.UnixMilli())*time.Millisecond, leaseStoreTTL(ts.opts.LeaseTTL))
	actx, cancel := detachedTimeout(ctx, storeAttemptTimeout(budget))
	defer cancel()
	if err := c.store.Set(actx, key, rec, ttl); err != nil {
		c.log.WarnContext(ctx, "stepup: marking the refresh lease as answered", "error", err)
		return false
	}
	return true
}

// storeBudget is how long the holder may spend storing a result after the
// tenant answered (or after it re-marked its lease): within the lease.
func (ts *TokenSource) storeBudget() time.Duration {
	return max(ts.opts.LeaseTTL-time.Second, time.Second)
}

// leaseStoreTTL keeps a lease record in the store well beyond its deadline,
// so that the store's own expiry (its clock) never frees an attempt before
// the Client's clock says it is stale.
func leaseStoreTTL(leaseTTL time.Duration) time.Duration { return 4*leaseTTL + time.Minute }

// refreshAsHolder refreshes st's token at the tenant and stores the result.
func (ts *TokenSource) refreshAsHolder(ctx context.Context, st *chainState, until time.Time, attempt int) (*oauth2.Token, error) {
	c := ts.c
	// Check again under the lease: a worker that was slower to look may win
	// a later attempt after the rotation it waited for was stored.
	t, err := ts.read(ctx)
	if err != nil {
		return nil, err
	}
	now := stateOf(t)
	if ts.valid(now.tok, c.now()) {
		return ts.open(now.tok), nil
	}
	if now.hash != st.hash {
		return ts.refresh(ctx, t)
	}

	// The tenant call may take at most the lease, less a second for the store.
	callCtx, cancel := context.WithTimeout(ctx, max(until.Sub(c.now())-time.Second, time.Second))
	defer cancel()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {st.refresh}}
	_, body, err := c.postForm(callCtx, "/oauth/token", c.tokenURL, form)
	if err != nil {
		var te *TenantError
		if errors.As(err, &te) && te.Err == nil && te.StatusCode != 0 {
			// The tenant answered with an error: it rotated nothing, so the
			// lease is released at once, with the answer for the waiters.
			// (Without an answer the lease stays: the tenant may have
			// rotated the token, and only the lease TTL tells.)
			ts.releaseLease(ctx, st.hash, attempt, te.Code)
			ev := Event{Subject: t.Subject, Session: handlePrefix(ts.handle), Audience: ts.audience, Reason: te.Code}
			if te.Code == "mfa_required" {
				ev.Kind = EventMFARequired
			} else {
				ev.Kind = EventRefreshRefused
			}
			c.emit(ctx, ev)
			switch te.Code {
			case "mfa_required":
				// The mfa_token is bound to this session and audience:
				// CompleteMFA accepts it for them only.
				if te.MFAToken != "" {
					if err := c.bindMFAToken(ctx, ts.handle, ts.audience, te.MFAToken); err != nil {
						return nil, err
					}
				}
				return nil, &MFARequiredError{Handle: ts.handle, Audience: ts.audience, MFAToken: te.MFAToken, Err: te}
			case "invalid_grant":
				return nil, fmt.Errorf("%w: %w", ErrRefreshTokenInvalid, te)
			}
		}
		return nil, err
	}
	// The tenant answered: it has rotated the token. Say so in the lease at
	// once, so that no waiter takes over and presents the rotated-out token
	// while we store the result, however long that takes.
	deadline := time.Now().Add(ts.storeBudget())
	marked := ts.markAnswered(ctx, st.hash, attempt, t.SessExp, ts.storeBudget())
	issued := c.now()
	resp, err := parseTokenResponse(body)
	if err != nil {
		// The tenant answered 2xx with something unreadable: whatever it
		// rotated is lost to us. Say so loudly.
		c.log.ErrorContext(ctx, "stepup: unreadable refresh answer; the refresh token may be lost", "error", err)
		return nil, &TenantError{Endpoint: "/oauth/token", StatusCode: 200, Err: err}
	}

	// Verify the refreshed ID token; it never changes the step-up evidence.
	var idErr error
	if resp.IDToken != "" {
		idt, err := c.idv.verify(ctx, resp.IDToken, idTokenCheck{})
		switch {
		case err != nil:
			idErr = fmt.Errorf("stepup: refreshed ID token: %w", err)
		case idt.Subject != t.Subject:
			idErr = &TokenError{Kind: ErrTokenSubject, Claim: "sub", Detail: "refreshed ID token is for another user than the session"}
		}
	}

	rec := &tokenRecord{Subject: t.Subject, SessExp: t.SessExp, Type: resp.TokenType, Scope: resp.Scope, Prev: st.prev, At: issued.UnixMilli()}
	if resp.ExpiresIn > 0 {
		rec.Expiry = issued.Add(time.Duration(resp.ExpiresIn) * time.Second).Unix()
	}
	if idErr == nil {
		rec.Access = resp.AccessToken
	}
	rec.Refresh = st.refresh
	if resp.RefreshToken != "" && resp.RefreshToken != st.refresh {
		rec.Refresh = resp.RefreshToken
		rec.Prev = appendPrev(st.hash, st.prev)
	}

	p := &pendingRefresh{from: st.hash, to: refreshHash(rec.Refresh), attempt: attempt, rec: rec, err: idErr}
	if rec.Access != "" {
		p.token = ts.open(rec)
	}
	if err := ts.store(ctx, p, deadline); err != nil {
		if errors.Is(err, errChainMoved) {
			// A login replaced the tokens (or a logout removed them) while
			// we refreshed: ours belong to an older family; hand out the
			// access token, keep nothing.
			c.log.WarnContext(ctx, "stepup: refreshed tokens not stored: the session's tokens were replaced meanwhile",
				"session", ts.handle[:8], "audience", ts.audience)
			if p.err != nil {
				return nil, p.err
			}
			if p.token == nil {
				return nil, ErrNoSession
			}
			return p.token, nil
		}
		if !marked {
			// Last chance to keep the others from presenting the
			// rotated-out token once the original lease runs out.
			ts.markAnswered(ctx, st.hash, attempt, t.SessExp, time.Second)
		}
		_, slot := ts.slot(true)
		slot.p.Store(p)
		c.log.ErrorContext(ctx, "stepup: refreshed tokens not stored; kept in memory for the next call",
			"session", ts.handle[:8], "audience", ts.audience, "error", err)
		return nil, fmt.Errorf("%w: %w", ErrRefreshNotStored, err)
	}
	if p.err != nil {
		return nil, p.err
	}
	if p.token == nil {
		return nil, fmt.Errorf("stepup: the tenant's refresh answer has no access_token: %w", ErrTenantUnavailable)
	}
	c.emit(ctx, Event{Kind: EventRefresh, Session: handlePrefix(ts.handle), Subject: t.Subject, Audience: ts.audience})
	return p.token, nil
}

// errChainMoved: the session's token record no longer holds the chain a
// refresh result belongs to (a login replaced it, or a logout deleted it).
var errChainMoved = errors.New("stepup: the session's tokens moved on")

// store writes p's token record, the authority on the chain, with retries,
// all before deadline (real time: within the lease). The writes do not stop
// when ctx is cancelled: the tenant has rotated the token, and losing the
// result would sign the user out. First it reads the record: when it holds
// neither the token that was rotated (p.from) nor its successor (p.to), a
// login has replaced the family or a logout ended the session, and writing
// would put an older state back (or resurrect it): errChainMoved, nothing
// written. The check and the write are two commands, not one: a login
// landing between them loses its tokens for this audience to the refresh's
// (still valid) ones.
func (ts *TokenSource) store(ctx context.Context, p *pendingRefresh, deadline time.Time) error {
	c := ts.c
	rec := p.rec
	key := c.tokenKey(ts.handle, ts.audience)
	actx, cancel := detachedTimeout(ctx, storeAttemptTimeout(time.Until(deadline)))
	cur, err := c.readToken(actx, key)
	cancel()
	switch {
	case errors.Is(err, ErrNoSession):
		return errChainMoved
	case err != nil:
		return fmt.Errorf("stepup: storing refreshed tokens: %w", err)
	}
	if h := refreshHash(cur.Refresh); cur.Refresh == "" || (h != p.from && h != p.to) {
		return errChainMoved
	}
	ttl := time.Duration(rec.SessExp-c.now().UnixMilli()) * time.Millisecond
	if ttl <= 0 {
		return ErrNoSession
	}
	data := c.ring.sealRecord(key, encodeToken(rec))
	pause := 25 * time.Millisecond
	for i := 0; i < ts.opts.StoreAttempts; i++ {
		if i > 0 {
			if time.Until(deadline) < pause+10*time.Millisecond {
				break // no time left in the lease for another attempt
			}
			time.Sleep(pause)
			pause *= 2
		}
		actx, cancel := detachedTimeout(ctx, storeAttemptTimeout(time.Until(deadline)))
		err = c.store.Set(actx, key, data, ttl)
		cancel()
		if err == nil {
			break
		}
		c.log.WarnContext(ctx, "stepup: storing refreshed tokens failed", "attempt", i+1, "error", err)
	}
	if err != nil {
		return fmt.Errorf("stepup: storing refreshed tokens: %w", err)
	}
	return nil
}

// flushPending stores a result the store refused earlier. done is true when
// the caller must return tok and err. A caller that finds another call of
// the source storing it waits for that call, or for ctx to end (the store
// I/O itself is not cut by ctx: the result must not be lost).
func (ts *TokenSource) flushPending(ctx context.Context) (tok *oauth2.Token, err error, done bool) {
	key, slot := ts.slot(false)
	if slot == nil || slot.p.Load() == nil {
		return nil, nil, false
	}
	select {
	case slot.flushing <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("stepup: waiting for the token source's unstored refresh result: %w", ctx.Err()), true
	}
	defer func() { <-slot.flushing }()
	p := slot.p.Load()
	if p == nil {
		return nil, nil, false // another call stored it meanwhile
	}
	// Re-mark the lease: the other workers wait while we store.
	deadline := time.Now().Add(ts.storeBudget())
	ts.markAnswered(ctx, p.from, p.attempt, p.rec.SessExp, ts.storeBudget())
	if err := ts.store(ctx, p, deadline); err != nil {
		if errors.Is(err, errChainMoved) {
			// The chain moved on without us (another worker took the lease
			// over, a login replaced the tokens, a logout ended them):
			// writing ours now would put an older state back. Ours is an
			// unused token of the family.
			ts.c.log.WarnContext(ctx, "stepup: dropping refreshed tokens that were never stored: the chain moved on",
				"session", ts.handle[:8], "audience", ts.audience)
			slot.p.CompareAndSwap(p, nil)
			pendingSlots.CompareAndDelete(key, slot)
			return nil, nil, false
		}
		return nil, fmt.Errorf("%w: %w", ErrRefreshNotStored, err), true
	}
	slot.p.CompareAndSwap(p, nil)
	pendingSlots.CompareAndDelete(key, slot)
	if p.err != nil {
		return nil, p.err, true
	}
	if p.token != nil && ts.valid(p.rec, ts.c.now()) {
		return p.token, nil, true
	}
	return nil, nil, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// MFARequiredError: the tenant answered a refresh with mfa_required (a
// post-login Action demands MFA). Complete it with Client.CompleteMFA, which
// records the step-up (out-of-band evidence, for jobs) and stores the new
// tokens. It matches ErrMFARequired and, through Err, the *TenantError.
type MFARequiredError struct {
	Handle   string // the session
	Audience string // the token source's audience
	MFAToken string // Auth0's mfa_token, for the MFA API
	Err      *TenantError
}

// ErrMFARequired matches every *MFARequiredError.
var ErrMFARequired = errors.New("stepup: multi-factor authentication required")

func (e *MFARequiredError) Error() string {
	return "stepup: the tenant requires multi-factor authentication to refresh the token (mfa_required); complete it with the MFA API"
}

// Is makes *MFARequiredError match ErrMFARequired.
func (e *MFARequiredError) Is(target error) bool { return target == ErrMFARequired }

func (e *MFARequiredError) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return e.Err
}

// --- records -------------------------------------------------------------

const (
	leaseVersion   = 1 // JSON inside the seal (an unsealed lease of the previous version does not open: stale)
	maxPrev        = 16
	refreshHashLen = 22 // base64url of 128 bits
	maxLeaseErrLen = 64
)

// refreshHash names a refresh token in keys and records without revealing it.
func refreshHash(rt string) string { return shortHash("refresh token", rt) }

// shortHash names a secret or an unbounded string s in store keys and
// records without revealing it: the first 128 bits of SHA-256 over
// "stepup <label>\x00" + s (the label keeps the uses apart), base64url
// without padding (22 characters).
func shortHash(label, s string) string {
	h := sha256.Sum256([]byte("stepup " + label + "\x00" + s))
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

func appendPrev(h string, prev []string) []string {
	out := make([]string, 0, min(len(prev)+1, maxPrev))
	out = append(out, h)
	for _, p := range prev {
		if len(out) == maxPrev {
			break
		}
		if p != h {
			out = append(out, p)
		}
	}
	return out
}

func isRefreshHash(s string) bool {
	if len(s) != refreshHashLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

// leaseRecord is a refresh lease: who holds it and until when (unix ms on
// the holder's clock). decodeLease is a parser of untrusted input.
type leaseRecord struct {
	V      int    `json:"v"`
	Holder string `json:"h"`
	Until  int64  `json:"u"`
	// Err is the tenant's error code when the holder's refresh was refused
	// ("invalid_grant": waiters give up at once) or needs the user
	// ("mfa_required"). Set together with a past Until: a refused refresh
	// rotated nothing, so the next attempt is free at once.
	Err string `json:"e,omitempty"`
	// Answered: the tenant answered the holder's refresh (it rotated the
	// token) and the holder is storing the result, until Until. Such a
	// lease is never taken over: the rotated-out token must not be
	// presented again.
	Answered bool `json:"a,omitempty"`
}

// encodeLease encodes l as JSON (encoding/json: any byte of the tenant's
// error code round-trips), with Err bounded to maxLeaseErrLen bytes, cut
// at a character boundary.
func encodeLease(l leaseRecord) []byte {
	l.Err = boundUTF8(l.Err, maxLeaseErrLen)
	b, err := json.Marshal(l)
	if err != nil {
		panic("stepup: encoding a lease: " + err.Error()) // plain data: cannot fail
	}
	return b
}

// boundUTF8 cuts s to at most n bytes without splitting a UTF-8 character
// (invalid bytes are replaced first, as JSON would).
func boundUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

func decodeLease(data []byte) (leaseRecord, error) {
	var l leaseRecord
	if len(data) > 512 {
		return l, fmt.Errorf("%w: lease too large", errCorruptRecord)
	}
	if err := json.Unmarshal(data, &l); err != nil {
		return leaseRecord{}, fmt.Errorf("%w: lease: %v", errCorruptRecord, err)
	}
	if l.V != leaseVersion || l.Holder == "" || len(l.Holder) > 64 || l.Until <= 0 || len(l.Err) > maxLeaseErrLen {
		return leaseRecord{}, fmt.Errorf("%w: lease fields", errCorruptRecord)
	}
	return l, nil
}

// audienceKey names an audience in store keys: audiences are URLs of any
// length and alphabet; keys must be short printable ASCII.
func audienceKey(audience string) string { return shortHash("audience", audience) }

// leaseKeyName is the key of a refresh lease without Config.KeyPrefix: the
// member the session's index lists.
func leaseKeyName(handle, audience, rtHash string, attempt int) string {
	return "lease:" + handle + ":" + audienceKey(audience) + ":" + rtHash + ":" + strconv.Itoa(attempt)
}

func (c *Client) leaseKey(handle, audience, rtHash string, attempt int) string {
	return c.cfg.KeyPrefix + leaseKeyName(handle, audience, rtHash, attempt)
}

// tokenResponse is a successful answer of /oauth/token. parseTokenResponse
// is a parser of untrusted input.
type tokenResponse struct {
	AccessToken  string
	TokenType    string
	RefreshToken string
	IDToken      string
	Scope        string
	ExpiresIn    int64
	RecoveryCode string
}

func parseTokenResponse(body []byte) (*tokenResponse, error) {
	var raw struct {
		AccessToken  string          `json:"access_token"`
		TokenType    string          `json:"token_type"`
		RefreshToken string          `json:"refresh_token"`
		IDToken      string          `json:"id_token"`
		Scope        string          `json:"scope"`
		ExpiresIn    json.RawMessage `json:"expires_in"`
		RecoveryCode string          `json:"recovery_code"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("stepup: token response: %w", err)
	}
	r := &tokenResponse{AccessToken: raw.AccessToken, TokenType: raw.TokenType, RefreshToken: raw.RefreshToken,
		IDToken: raw.IDToken, Scope: raw.Scope, RecoveryCode: raw.RecoveryCode}
	if len(raw.ExpiresIn) > 0 && string(raw.ExpiresIn) != "null" {
		s := string(raw.ExpiresIn)
		if uq, err := strconv.Unquote(s); err == nil {
			s = uq // some servers send a string
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > 10*365*24*3600 {
			return nil, errors.New("stepup: token response: bad expires_in")
		}
		r.ExpiresIn = n
	}
	if r.AccessToken == "" && r.IDToken == "" {
		return nil, errors.New("stepup: token response has neither access_token nor id_token")
	}
	return r, nil
}
