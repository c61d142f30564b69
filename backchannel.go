package stepup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/stepupauth/stepup/store"
)

// OpenID Connect Back-Channel Logout 1.0: the tenant POSTs a logout token
// when a session ends at Auth0 (the user signed out elsewhere, changed their
// password, was blocked or deleted, an admin revoked the session), and every
// app session of it ends on every replica.

// maxBackChannelBody bounds the body of a back-channel delivery: a form with
// one logout token (Auth0's are under 1 KB).
const maxBackChannelBody = 64 << 10

// backChannelPending bounds how long a delivery in progress holds its jti:
// a delivery whose logout failed and whose marker could not be removed (the
// store went down) lets a retry through after this, never before.
const backChannelPending = 30 * time.Second

// The states of a logout token's jti marker.
const (
	jtiPending = 'p' // a delivery is ending the sessions
	jtiUsed    = 'u' // the sessions ended: the token is spent
)

// BackChannelLogoutHandler serves the application's "OpenID Connect
// Back-Channel Logout" URL (Auth0 dashboard: Applications → the application →
// Sessions; it must be https and reachable from Auth0). It follows the
// specification's §2.8 (receiving) and §2.6 (validation):
//
//   - only POST with an application/x-www-form-urlencoded body of at most
//     64 KB holding one logout_token field (405 for another method);
//   - the token is verified as verifyLogoutToken says (the tenant's keys
//     through the Client's JWKS cache, iss, aud, iat, exp, typ, events, sid or
//     sub, no nonce) and its jti must never have been seen by any replica:
//     one Store SetNX of a sealed marker keyed by a hash of iss and jti, kept
//     for as long as the token could be accepted;
//   - with sid, every session of that Auth0 session (and of that sub, when
//     the token has one) ends; with sub alone, every session of the user —
//     on every replica sharing the Store, with token records, leases and
//     out-of-band records (as LogoutSID and LogoutUser), refresh tokens
//     revoked (a revocation failure is only logged).
//
// Answers: 200 with Cache-Control: no-store once the sessions have ended
// (also when there were none); 400 with {"error":"invalid_request",
// "error_description":...} for any other request, and nothing ends; 503
// (the same JSON shape, error "temporarily_unavailable") when the store or
// the tenant's JWKS cannot be reached: the jti is marked used only once the
// sessions have ended, so a retried delivery still ends them. An EventLogout
// (Reason LogoutBackChannel) and its log record name the sid, the sub and how
// many sessions ended, never the token.
func (c *Client) BackChannelLogoutHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeBackChannelError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
			return
		}
		raw, err := readLogoutTokenForm(w, r)
		if err != nil {
			c.backChannelRefused(w, r, err)
			return
		}
		if _, err := c.backChannelLogout(r.Context(), raw); err != nil {
			c.backChannelRefused(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	})
}

// ErrInvalidLogoutRequest reports a back-channel delivery that is not a
// form with exactly one logout_token (wrong content type, a body over 64 KB,
// a missing or repeated field). A token that fails verification is a
// *TokenError instead; a replayed one matches ErrLogoutTokenReplayed.
var ErrInvalidLogoutRequest = errors.New("stepup: invalid back-channel logout request")

// ErrLogoutTokenReplayed reports a logout token whose jti was already used
// (on any replica). It matches ErrInvalidToken.
var ErrLogoutTokenReplayed = fmt.Errorf("%w: logout token already used (jti)", ErrInvalidToken)

// errLogoutInProgress: another delivery of the same token is ending the
// sessions (or one failed less than backChannelPending ago): retry.
var errLogoutInProgress = fmt.Errorf("%w: a delivery of this logout token is in progress", store.ErrUnavailable)

func readLogoutTokenForm(w http.ResponseWriter, r *http.Request) (string, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", fmt.Errorf("%w: the body must be application/x-www-form-urlencoded", ErrInvalidLogoutRequest)
	}
	buf, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBackChannelBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", fmt.Errorf("%w: the body is over %d bytes", ErrInvalidLogoutRequest, maxBackChannelBody)
		}
		return "", fmt.Errorf("%w: reading the body: %w", ErrInvalidLogoutRequest, err)
	}
	form, err := url.ParseQuery(string(buf))
	if err != nil {
		return "", fmt.Errorf("%w: the body is not a form", ErrInvalidLogoutRequest)
	}
	vals := form["logout_token"]
	switch {
	case len(vals) == 0 || vals[0] == "":
		return "", fmt.Errorf("%w: no logout_token", ErrInvalidLogoutRequest)
	case len(vals) > 1:
		return "", fmt.Errorf("%w: more than one logout_token", ErrInvalidLogoutRequest)
	}
	return vals[0], nil
}

// backChannelLogout verifies raw, claims its jti, ends the sessions it names
// and marks the jti used. It returns how many live sessions ended.
func (c *Client) backChannelLogout(ctx context.Context, raw string) (int, error) {
	lt, err := c.verifyLogoutToken(ctx, raw)
	if err != nil {
		return 0, err
	}
	if len(lt.SessionID) > maxFieldLen || len(lt.Subject) > maxFieldLen || len(lt.JTI) > maxFieldLen {
		// No session holds such a sid or sub (StartSession refuses them),
		// and neither is logged whole.
		return 0, fmt.Errorf("%w: sid, sub or jti over %d bytes", ErrInvalidToken, maxFieldLen)
	}
	now := c.now()
	key := c.logoutJTIKey(lt.Issuer, lt.JTI)
	// The marker outlives the token's acceptance: exp (or iat + 5 minutes)
	// plus the leeway verifyLogoutToken allows.
	ttl := max(lt.Expiry.Add(c.idv.leeway).Sub(now), time.Second)
	if err := c.claimLogoutJTI(ctx, key, ttl, now); err != nil {
		return 0, err
	}
	sub, sid := lt.Subject, lt.SessionID
	var (
		n      int
		endErr error
	)
	if sid != "" {
		n, endErr = c.logoutIndexed(ctx, c.sidIndexKey(sid), func(r *sessionRecord) bool {
			return r.SID == sid && (sub == "" || r.Subject == sub)
		})
	} else {
		n, endErr = c.logoutIndexed(ctx, c.subIndexKey(sub), func(r *sessionRecord) bool { return r.Subject == sub })
	}
	if endErr != nil && !onlyRevocationErrors(endErr) {
		// Some sessions may live on: free the jti so that a retry ends them.
		dctx, cancel := detachedTimeout(ctx, storeAttemptTimeout(c.cfg.StoreTimeout))
		if err := c.deleteKey(dctx, key); err != nil {
			c.log.WarnContext(ctx, "stepup: back-channel logout: releasing the jti after a failure", "error", err,
				"retry_after", backChannelPending.String())
		}
		cancel()
		if n > 0 {
			c.emitBackChannel(ctx, sid, sub, n)
		}
		return n, fmt.Errorf("stepup: back-channel logout: %w", endErr)
	}
	if endErr != nil {
		c.log.WarnContext(ctx, "stepup: revoking a refresh token at back-channel logout", "error", endErr)
	}
	sctx, done := c.storeContext(ctx)
	err = done(c.store.Set(sctx, key, c.ring.sealRecord(key, []byte{jtiUsed}), ttl))
	if err != nil {
		// The sessions have ended: that is the answer. The pending marker
		// still refuses a replay for backChannelPending.
		c.log.WarnContext(ctx, "stepup: back-channel logout: marking the jti used", "error", err)
	}
	c.emitBackChannel(ctx, sid, sub, n)
	return n, nil
}

func (c *Client) emitBackChannel(ctx context.Context, sid, sub string, n int) {
	c.emit(ctx, Event{Kind: EventLogout, Subject: sub, SessionID: sid, Reason: LogoutBackChannel, Sessions: n})
}

// claimLogoutJTI takes the jti for this delivery with one SetNX of a pending
// marker. A used marker (or one that does not open with the Client's keys)
// is a replay; a pending one is another delivery in progress, or one that
// failed without releasing it: taken over once backChannelPending has passed.
func (c *Client) claimLogoutJTI(ctx context.Context, key string, ttl time.Duration, now time.Time) error {
	pending := c.ring.sealRecord(key, strconv.AppendInt([]byte{jtiPending}, now.Add(backChannelPending).UnixMilli(), 10))
	for attempt := 0; attempt < 2; attempt++ {
		sctx, done := c.storeContext(ctx)
		won, err := c.store.SetNX(sctx, key, pending, ttl)
		if err = done(err); err != nil {
			return fmt.Errorf("stepup: back-channel logout: claiming the jti: %w", err)
		}
		if won {
			return nil
		}
		sctx, done = c.storeContext(ctx)
		blob, err := c.store.Get(sctx, key)
		switch err = done(err); {
		case errors.Is(err, store.ErrNotFound):
			continue // expired or released meanwhile
		case err != nil:
			return fmt.Errorf("stepup: back-channel logout: reading the jti: %w", err)
		}
		v, err := c.ring.openRecordInPlace(key, blob)
		if err != nil || len(v) == 0 || v[0] != jtiPending {
			return ErrLogoutTokenReplayed
		}
		until, err := strconv.ParseInt(string(v[1:]), 10, 64)
		if err != nil || now.UnixMilli() < until {
			return errLogoutInProgress
		}
		// An abandoned claim: take it and claim again. Two deliveries that
		// both found it abandoned may both go on (one may take the other's
		// fresh claim): each then ends the same sessions, which is harmless.
		sctx, done = c.storeContext(ctx)
		_, err = c.store.Take(sctx, key)
		if err = done(err); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("stepup: back-channel logout: taking over the jti: %w", err)
		}
	}
	return errLogoutInProgress
}

func (c *Client) logoutJTIKey(iss, jti string) string {
	return c.cfg.KeyPrefix + "bcl:" + shortHash("logout jti", iss+"\x00"+jti)
}

// backChannelRefused answers a delivery that ended nothing: 503 when it can
// succeed later (store or tenant unavailable), 400 otherwise.
func (c *Client) backChannelRefused(w http.ResponseWriter, r *http.Request, err error) {
	status, code := http.StatusBadRequest, "invalid_request"
	if ErrorStatus(err) == http.StatusServiceUnavailable {
		status, code = http.StatusServiceUnavailable, "temporarily_unavailable"
		w.Header().Set("Retry-After", "5")
	}
	level := c.log.WarnContext
	if status >= 500 {
		level = c.log.ErrorContext
	}
	// The error names the check that failed, never the token's content.
	level(r.Context(), "stepup: back-channel logout refused", "status", status,
		"error", truncateUTF8(err.Error(), maxLoggedError))
	// 4xx errors name the request's or token's fault (a *TokenError names
	// the check and the claim, not its value).
	desc := truncateUTF8(err.Error(), maxErrorPageMessage)
	if status >= 500 {
		desc = "temporarily unavailable: retry"
	}
	writeBackChannelError(w, status, code, desc)
}

func writeBackChannelError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
