package stepup

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/auth0/go-auth0/v3/management"
	mgmtclient "github.com/auth0/go-auth0/v3/management/client"
	mgmtcore "github.com/auth0/go-auth0/v3/management/core"
	"github.com/auth0/go-auth0/v3/management/option"

	"github.com/stepupauth/stepup/store"
)

// The Management API is reached through go-auth0's management client with a
// client-credentials token. Such tokens are rate-limited and counted against
// the tenant's quota, so every replica and worker of an application shares
// one: it is kept sealed in the Store (key m2m:<hash of client id and
// audience>), fetched by whoever holds the lease for the token it replaces
// (set-if-absent, key m2m-lease:<...>:<hash of that token>), while the
// others poll the record; it is renewed RenewBefore its expiry, and fetched
// again once when the API answers 401 to it (the lease is then keyed by the
// refused token, so replicas that saw the same 401 fetch once between them).

// ManagementError is an error answer of the Management API (or a failure
// to reach it). It matches ErrTenantUnavailable for transport failures, 5xx
// and 429 answers.
type ManagementError struct {
	// Op names the call, e.g. "GET /api/v2/users/{id}/authentication-methods".
	Op         string
	StatusCode int
	// Code is the API's errorCode (e.g. "insufficient_scope",
	// "inexistent_user"), else the status text.
	Code    string
	Message string
	// Scope is the scope the API expected, on a 403 insufficient_scope:
	// grant it to the application (Auth0 dashboard, APIs, Auth0 Management
	// API, Machine to Machine Applications).
	Scope string
	// RetryAfter is when a 429 may be retried (Retry-After or
	// X-RateLimit-Reset), 0 when the answer did not say.
	RetryAfter time.Duration
	Err        error // the transport error, when no answer came
}

func (e *ManagementError) Error() string {
	switch {
	case e.Err != nil:
		return fmt.Sprintf("stepup: Management API %s: %v", e.Op, e.Err)
	case e.Scope != "":
		return fmt.Sprintf("stepup: Management API %s: %d %s: the application lacks the scope %q (grant it to the application in the Auth0 dashboard: APIs, Auth0 Management API, Machine to Machine Applications)", e.Op, e.StatusCode, e.Code, e.Scope)
	case e.StatusCode == http.StatusTooManyRequests:
		return fmt.Sprintf("stepup: Management API %s: 429 rate limited (retry after %s)", e.Op, e.RetryAfter)
	case e.Message != "":
		return fmt.Sprintf("stepup: Management API %s: %d %s: %s", e.Op, e.StatusCode, e.Code, e.Message)
	default:
		return fmt.Sprintf("stepup: Management API %s: %d %s", e.Op, e.StatusCode, e.Code)
	}
}

func (e *ManagementError) Unwrap() error { return e.Err }

// Is makes transport failures, 5xx and 429 answers match ErrTenantUnavailable.
func (e *ManagementError) Is(target error) bool {
	return target == ErrTenantUnavailable && (e.Err != nil || e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests)
}

// mgmtAPI is one application's Management API access: go-auth0's client and
// the shared token.
type mgmtAPI struct {
	c        *Client
	api      *mgmtclient.Management
	audience string
	// clientID, secret and basic are a separate M2M application's
	// credentials; clientID "" means the Client's own application.
	clientID, secret string
	basic            bool
	renewBefore      time.Duration
	leaseTTL         time.Duration
	poll             time.Duration
	key, leasePrefix string

	mu  sync.Mutex // guards tok and exp; serialises this process's token lookups
	tok string
	exp time.Time
}

// maxMgmtTokenLen bounds the token the tenant gives (and the record read back).
const maxMgmtTokenLen = 16 << 10

const mgmtTokenVersion = 1

func newMgmtAPI(c *Client, cfg *FactorsConfig) (*mgmtAPI, error) {
	m := &mgmtAPI{c: c, audience: cfg.ManagementAudience, clientID: cfg.ClientID, secret: cfg.ClientSecret,
		basic: cfg.TokenEndpointAuthMethod == AuthClientSecretBasic, renewBefore: cfg.RenewBefore, leaseTTL: cfg.LeaseTTL,
		poll: 20 * time.Millisecond}
	id := c.cfg.ClientID
	if m.clientID != "" {
		id = m.clientID
	}
	h := shortHash("m2m", id+"\x00"+m.audience)
	m.key = c.cfg.KeyPrefix + "m2m:" + h
	m.leasePrefix = c.cfg.KeyPrefix + "m2m-lease:" + h + ":"
	base := strings.TrimSuffix(m.audience, "/")
	api, err := mgmtclient.New(c.cfg.Domain, option.WithBaseURL(base), option.WithHTTPClient(c.httpClient),
		option.WithMaxAttempts(1), option.WithNoAuth0ClientInfo())
	if err != nil {
		return nil, fmt.Errorf("%w: the Management API client: %v", ErrInvalidConfig, err)
	}
	m.api = api
	return m, nil
}

// do runs call with the shared token; on a 401 it fetches a new token once
// (shared with the other replicas that saw the same 401) and runs call again.
func (m *mgmtAPI) do(ctx context.Context, op string, call func(opt option.RequestOption) error) error {
	tok, err := m.token(ctx, "")
	if err != nil {
		return err
	}
	err = call(option.WithToken(tok))
	if statusOf(err) == http.StatusUnauthorized {
		if tok, err = m.token(ctx, tok); err != nil {
			return err
		}
		err = call(option.WithToken(tok))
	}
	return m.apiError(op, err)
}

func statusOf(err error) int {
	var ae *mgmtcore.APIError
	if errors.As(err, &ae) {
		return ae.StatusCode
	}
	return 0
}

// apiError turns an error of go-auth0's management client into a
// *ManagementError.
func (m *mgmtAPI) apiError(op string, err error) error {
	if err == nil {
		return nil
	}
	var ae *mgmtcore.APIError
	if !errors.As(err, &ae) || ae.StatusCode == 0 {
		var me *ManagementError
		if errors.As(err, &me) {
			return err
		}
		return &ManagementError{Op: op, Err: err}
	}
	e := &ManagementError{Op: op, StatusCode: ae.StatusCode, Code: http.StatusText(ae.StatusCode)}
	if body, ok := errorBody(err).(map[string]any); ok {
		if s, ok := body["errorCode"].(string); ok && s != "" {
			e.Code = boundUTF8(s, 64)
		} else if s, ok := body["error"].(string); ok && s != "" {
			e.Code = boundUTF8(s, 64)
		}
		if s, ok := body["message"].(string); ok {
			e.Message = boundUTF8(s, 400)
		}
	}
	if e.StatusCode == http.StatusForbidden {
		if _, after, ok := strings.Cut(e.Message, "expected any of: "); ok {
			e.Scope = boundUTF8(strings.TrimSpace(after), 200)
		} else if e.Code == "insufficient_scope" {
			e.Scope = "(not named by the tenant)"
		}
	}
	if e.StatusCode == http.StatusTooManyRequests && ae.Header != nil {
		e.RetryAfter = retryAfter(ae.Header.Get("Retry-After"))
		if reset, err := strconv.ParseInt(ae.Header.Get("X-RateLimit-Reset"), 10, 64); e.RetryAfter == 0 && err == nil {
			if d := time.Unix(reset, 0).Sub(m.c.now()); d > 0 {
				e.RetryAfter = d
			}
		}
	}
	return e
}

// errorBody returns the decoded body of one of go-auth0's typed errors.
func errorBody(err error) any {
	var (
		bad *management.BadRequestError
		una *management.UnauthorizedError
		fb  *management.ForbiddenError
		nf  *management.NotFoundError
		tmr *management.TooManyRequestsError
		con *management.ConflictError
	)
	switch {
	case errors.As(err, &bad):
		return bad.Body
	case errors.As(err, &una):
		return una.Body
	case errors.As(err, &fb):
		return fb.Body
	case errors.As(err, &nf):
		return nf.Body
	case errors.As(err, &tmr):
		return tmr.Body
	case errors.As(err, &con):
		return con.Body
	}
	return nil
}

// token returns a Management API token valid for more than renewBefore.
// stale, when set, is a token the API refused: it is replaced. Each stored
// token has a generation; the lease that replaces generation n is
// m2m-lease:<...>:n, so that one fetch replaces it whoever asks (a tenant
// may answer two requests with the same token: generations still move).
func (m *mgmtAPI) token(ctx context.Context, stale string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tok != "" && m.tok != stale && m.c.now().Before(m.exp.Add(-m.renewBefore)) {
		return m.tok, nil
	}
	for range 3 {
		now := m.c.now()
		rec, err := m.read(ctx)
		if err != nil {
			return "", err
		}
		if rec.tok != "" && rec.tok != stale && now.Before(rec.exp.Add(-m.renewBefore)) {
			m.tok, m.exp = rec.tok, rec.exp
			return rec.tok, nil
		}
		lease := m.leasePrefix + strconv.FormatUint(rec.gen, 10)
		sctx, done := m.c.storeContext(ctx)
		won, err := m.c.store.SetNX(sctx, lease, m.c.ring.sealRecord(lease, []byte{1}), m.leaseTTL)
		if err = done(err); err != nil {
			return "", fmt.Errorf("stepup: taking the Management API token lease: %w", err)
		}
		if won {
			tok, exp, err := m.fetch(ctx, rec.gen+1)
			if err != nil {
				// Let another replica (or the next call) try at once.
				if derr := m.c.deleteKey(ctx, lease); derr != nil {
					m.c.log.WarnContext(ctx, "stepup: releasing the Management API token lease", "error", derr)
				}
				return "", err
			}
			m.tok, m.exp = tok, exp
			return tok, nil
		}
		// Another replica is renewing: a token that has not expired yet (and
		// was not refused) serves meanwhile.
		if rec.tok != "" && rec.tok != stale && now.Before(rec.exp) {
			m.tok, m.exp = rec.tok, rec.exp
			return rec.tok, nil
		}
		deadline := time.Now().Add(m.leaseTTL)
		for time.Now().Before(deadline) {
			if err := sleepCtx(ctx, m.poll); err != nil {
				return "", fmt.Errorf("stepup: waiting for the Management API token: %w", err)
			}
			next, err := m.read(ctx)
			if err != nil {
				return "", err
			}
			if next.gen > rec.gen && m.c.now().Before(next.exp) {
				m.tok, m.exp = next.tok, next.exp
				return next.tok, nil
			}
		}
	}
	return "", &ManagementError{Op: "POST /oauth/token (client_credentials)",
		Err: fmt.Errorf("%w: another replica holds the token lease and stored no token", ErrTenantUnavailable)}
}

// mgmtToken is the stored Management API token.
type mgmtToken struct {
	tok string
	exp time.Time
	gen uint64 // 0: none stored
}

// read returns the stored token; a zero mgmtToken when none is stored.
func (m *mgmtAPI) read(ctx context.Context) (mgmtToken, error) {
	data, err := m.c.getRecord(ctx, kindToken, m.key, 0)
	if errors.Is(err, store.ErrNotFound) {
		return mgmtToken{}, nil
	}
	if err != nil {
		return mgmtToken{}, fmt.Errorf("stepup: reading the Management API token: %w", err)
	}
	t, err := decodeMgmtToken(data)
	if err != nil {
		m.c.unreadable(ctx, kindToken, err)
		return mgmtToken{}, nil
	}
	return t, nil
}

// encodeMgmtToken: version (1 byte) | generation (uvarint) | token (uvarint
// length + bytes) | expiry (unix ms, zig-zag varint).
func encodeMgmtToken(t mgmtToken) []byte {
	w := recWriter{b: make([]byte, 0, len(t.tok)+24)}
	w.byte(mgmtTokenVersion)
	w.uvarint(t.gen)
	w.str(t.tok)
	w.varint(t.exp.UnixMilli())
	return w.b
}

// decodeMgmtToken is a parser of untrusted input (a record that opened).
func decodeMgmtToken(data []byte) (mgmtToken, error) {
	rd := recReader{s: string(data)}
	if v := rd.byte(); v != mgmtTokenVersion {
		return mgmtToken{}, fmt.Errorf("%w: Management API token record version %d", errCorruptRecord, v)
	}
	gen := rd.uvarint()
	tok := rd.str(maxMgmtTokenLen)
	exp := rd.varint()
	if !rd.done() || gen == 0 || tok == "" || exp <= 0 {
		return mgmtToken{}, fmt.Errorf("%w: Management API token record layout", errCorruptRecord)
	}
	return mgmtToken{tok: tok, exp: time.UnixMilli(exp), gen: gen}, nil
}

// fetch asks the tenant for a client-credentials token and stores it.
func (m *mgmtAPI) fetch(ctx context.Context, gen uint64) (string, time.Time, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {m.audience}}
	var body []byte
	var err error
	if m.clientID == "" {
		_, body, err = m.c.postForm(ctx, "/oauth/token", m.c.tokenURL, form)
	} else {
		body, err = m.postOwn(ctx, form)
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("stepup: Management API token: %w", err)
	}
	tr, err := parseTokenResponse(body)
	switch {
	case err != nil:
		return "", time.Time{}, &TenantError{Endpoint: "/oauth/token", Err: err}
	case tr.AccessToken == "" || len(tr.AccessToken) > maxMgmtTokenLen || tr.ExpiresIn <= 0:
		return "", time.Time{}, &TenantError{Endpoint: "/oauth/token", Err: errors.New("client_credentials answer without a usable access_token and expires_in")}
	}
	now := m.c.now()
	exp := now.Add(time.Duration(tr.ExpiresIn) * time.Second)
	// Kept beyond its expiry, so that its renewal is leased under its name.
	ttl := time.Duration(tr.ExpiresIn)*time.Second + 10*time.Minute
	if err := m.c.putRecord(ctx, m.key, encodeMgmtToken(mgmtToken{tok: tr.AccessToken, exp: exp, gen: gen}), ttl); err != nil {
		// The token is good; other replicas will fetch their own after the lease.
		m.c.log.WarnContext(ctx, "stepup: storing the Management API token", "error", err)
	}
	m.c.log.InfoContext(ctx, "stepup: Management API token fetched", "audience", m.audience, "expires_in", tr.ExpiresIn)
	return tr.AccessToken, exp, nil
}

// postOwn posts form to /oauth/token authenticated as the separate M2M
// application.
func (m *mgmtAPI) postOwn(ctx context.Context, form url.Values) ([]byte, error) {
	form = cloneValues(form)
	form.Set("client_id", m.clientID)
	basic := ""
	if m.basic {
		cred := url.QueryEscape(m.clientID) + ":" + url.QueryEscape(m.secret)
		basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(cred))
	} else {
		form.Set("client_secret", m.secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &TenantError{Endpoint: "/oauth/token", Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic != "" {
		req.Header.Set("Authorization", basic)
	}
	resp, err := m.c.httpClient.Do(req)
	if err != nil {
		return nil, &TenantError{Endpoint: "/oauth/token", Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &TenantError{Endpoint: "/oauth/token", Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, tenantErrorFromBody("/oauth/token", resp, body)
	}
	return body, nil
}
