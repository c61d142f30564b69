package stepup

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrStepUpLoop: an API refused, with the same RFC 9470 challenge, the access
// token obtained by the step-up the user has just gone through for that very
// challenge (or the session still holds no token for the API after the
// authorization that should have brought one). Asking again would loop: the
// tenant does not put what the API checks into its access tokens (for Auth0:
// no Action copies the authentication level into them). Client.StepUp
// returns it instead of redirecting; ErrorStatus maps it to 403.
var ErrStepUpLoop = errors.New("stepup: the API still refuses the access token of the step-up it asked for")

// StepUpNeededError is returned by APIClient.Do when the user must go through
// the tenant before the API call can succeed: the API answered with an RFC
// 9470 step-up challenge (Challenge), or the session holds no usable access
// token for the API (Challenge is nil and Err says why: no token for the
// audience, expired without a refresh token, refresh refused). Pass
// AuthorizeOptions to Client.StepUp. It matches ErrStepUpRequired, and
// through Unwrap its Err.
type StepUpNeededError struct {
	// Audience is the API's identifier.
	Audience string
	// Challenge is the API's challenge (error="insufficient_user_authentication"),
	// nil when no request was sent.
	Challenge *Challenge
	// AuthorizeOptions answer it: the challenge's acr_values and max_age
	// unchanged (RFC 9470 section 4) and Audience; the policy the new login
	// must satisfy is the challenge's. Without a challenge, a plain
	// authorization for Audience.
	AuthorizeOptions AuthorizeOptions
	// Err is why no token could be used, when Challenge is nil.
	Err error
	// Job is true when the session was read by handle (Client.Session,
	// SessionFor: a background job), which has no browser to send through
	// the tenant. The job recovers out of band: Client.StepUpCIBA with
	// CIBARequest{Policy: e.Policy(), Audience: e.Audience}, whose access
	// token (CIBAResult.Token) it sends instead; or, on a refresh answered
	// mfa_required, the MFA API (Client.CompleteMFA). A challenge to a job
	// whose session's step-up is still fresh means the token came from a
	// refresh-token exchange, which carries the step-up only when the
	// tenant's post-login Action copies it (README, "The post-login
	// Action").
	Job bool
}

// Policy returns the policy the challenge asks for (its acr_values and
// max_age, named "api:" + the audience), for CIBARequest.Policy or
// Client.SessionFor. Without a challenge, Login.
func (e *StepUpNeededError) Policy() Policy {
	if e.Challenge == nil {
		return Login
	}
	p := Policy{Name: "api:" + e.Audience, ACR: append([]string(nil), e.Challenge.ACRValues...)}
	if e.Challenge.HasMaxAge {
		p.MaxAge = e.Challenge.MaxAge
	}
	return p
}

func (e *StepUpNeededError) Error() string {
	msg := e.message()
	if e.Job {
		msg += "; a job recovers out of band: Client.StepUpCIBA (or the MFA API, Client.CompleteMFA, after mfa_required), and a refreshed token carries the step-up only when the tenant's post-login Action copies it (README)"
	}
	return msg
}

func (e *StepUpNeededError) message() string {
	if e.Challenge == nil {
		return fmt.Sprintf("stepup: a new authorization is needed for API %q: %v", e.Audience, e.Err)
	}
	msg := fmt.Sprintf("stepup: API %q asks for a step-up", e.Audience)
	var parts []string
	if len(e.Challenge.ACRValues) > 0 {
		parts = append(parts, fmt.Sprintf("acr_values %q", strings.Join(e.Challenge.ACRValues, " ")))
	}
	if e.Challenge.HasMaxAge {
		parts = append(parts, fmt.Sprintf("max_age %d", int64(e.Challenge.MaxAge/time.Second)))
	}
	if len(parts) > 0 {
		msg += " (" + strings.Join(parts, ", ") + ")"
	}
	return msg
}

// Is makes a *StepUpNeededError match ErrStepUpRequired.
func (e *StepUpNeededError) Is(target error) bool { return target == ErrStepUpRequired }

func (e *StepUpNeededError) Unwrap() error { return e.Err }

// APIConfig configures an APIClient. Zero values mean the stated defaults.
type APIConfig struct {
	// Audience is the API's identifier, the key under which sessions keep
	// its tokens. Default: Config.Audience. One of the two is required.
	Audience string
	// HTTPClient sends the requests to the API. Default: a client with a
	// 10-second timeout (DefaultHTTPTimeout) that does not follow
	// redirects (Do returns the 3xx answer): an access token is sent only
	// to the URL the caller chose.
	HTTPClient *http.Client
	// EarlyExpiry treats an access token as expired this long before its
	// expiry (it is then refreshed first, see TokenSource). Default: 30 s.
	EarlyExpiry time.Duration
	// InsecureAllowHTTP lets Do send access tokens over plain http to hosts
	// other than loopback ones (an API inside a private network). By
	// default a request must be https, or http to 127.0.0.1, ::1 or
	// localhost.
	InsecureAllowHTTP bool
}

// APIClient calls one API (resource server) for the users of a web backend,
// with the access token each session holds for the API's audience, and
// turns the API's RFC 9470 step-up challenges into *StepUpNeededError. Make
// one with Client.APIClient; it is safe for concurrent use.
//
// The flow in a page handler:
//
//	resp, err := api.Do(session, req)
//	var need *stepup.StepUpNeededError
//	if errors.As(err, &need) {
//		if err := client.StepUp(w, r, need.AuthorizeOptions); err != nil {
//			// ErrStepUpLoop: show the page without the API's data;
//			// otherwise the store or the options failed: an error page.
//		}
//		return
//	}
//
// StepUp sends the browser through the step-up and back to the page, whose
// handler runs again and calls the API again, now with the new token: that
// is the retry. Do itself never sends a request twice.
type APIClient struct {
	c           *Client
	audience    string
	http        *http.Client
	earlyExpiry time.Duration
	allowHTTP   bool
}

// APIClient returns an APIClient for the API of cfg.Audience.
func (c *Client) APIClient(cfg APIConfig) (*APIClient, error) {
	a := &APIClient{c: c, audience: cfg.Audience, http: cfg.HTTPClient, earlyExpiry: cfg.EarlyExpiry, allowHTTP: cfg.InsecureAllowHTTP}
	if a.audience == "" {
		a.audience = c.cfg.Audience
	}
	if a.audience == "" {
		return nil, fmt.Errorf("%w: APIConfig.Audience (or Config.Audience) is required: the API's identifier, which the access token must be issued for", ErrInvalidConfig)
	}
	if a.http == nil {
		a.http = &http.Client{
			Timeout:       DefaultHTTPTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if a.earlyExpiry <= 0 {
		a.earlyExpiry = DefaultEarlyExpiry
	}
	return a, nil
}

// Audience returns the API's identifier.
func (a *APIClient) Audience() string { return a.audience }

// Do sends req to the API once, with "Authorization: Bearer" and the access
// token session s holds for the API's audience; req itself is not modified.
// An expired token is refreshed first (Client.TokenSource: one refresh across
// replicas).
//
// It returns a *StepUpNeededError, without sending anything, when s holds no
// usable token for the audience, and, having read and closed the answer,
// when the API answers 401 (or 403) with a Bearer challenge whose error is
// insufficient_user_authentication. Any other answer is returned as is,
// 401 invalid_token and 403 insufficient_scope included: a new login would
// not change them. A request to a non-loopback http URL is refused unless
// APIConfig.InsecureAllowHTTP.
func (a *APIClient) Do(s *Session, req *http.Request) (*http.Response, error) {
	if s == nil || s.rec == nil {
		return nil, ErrNoSession
	}
	if req == nil || req.URL == nil {
		return nil, errors.New("stepup: APIClient.Do needs a request with a URL")
	}
	switch {
	case req.URL.Scheme == "https":
	case req.URL.Scheme == "http" && (a.allowHTTP || isLoopback(req.URL.Hostname())):
	default:
		return nil, fmt.Errorf("stepup: refusing to send an access token to %s://%s: use https (plain http is allowed to loopback hosts, or with APIConfig.InsecureAllowHTTP)", req.URL.Scheme, req.URL.Host)
	}
	access, err := a.accessToken(s, req)
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	out.Header.Set("Authorization", "Bearer "+access)
	resp, err := a.http.Do(out)
	if err != nil {
		return nil, fmt.Errorf("stepup: calling API %q: %w", a.audience, err)
	}
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		return resp, nil
	}
	ch, err := ParseChallenge(resp)
	if err != nil || ch.Error != ErrorInsufficientUserAuthentication {
		return resp, nil
	}
	// The answer is a refusal: drain a little so the connection is reused.
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
	opts := ch.AuthorizeOptions()
	opts.Audience = a.audience
	need := &StepUpNeededError{Audience: a.audience, Challenge: ch, AuthorizeOptions: opts, Job: s.secret == ""}
	ev := Event{Kind: EventAPIChallenge, Session: handlePrefix(s.Handle), Subject: s.Subject, SessionID: s.SessionID,
		Connection: s.Connection, Organization: s.OrgID, Audience: a.audience, ACR: strings.Join(ch.ACRValues, " "),
		Reason: ch.Error}
	if ch.HasMaxAge {
		ev.Reason += " max_age=" + strconv.FormatInt(int64(ch.MaxAge/time.Second), 10)
	}
	a.c.emit(req.Context(), ev)
	return nil, need
}

// accessToken returns a valid access token of s for the API through a
// TokenSource: one read of the session's token record while the token is
// fresh, a refresh (one across replicas) when it is not.
func (a *APIClient) accessToken(s *Session, req *http.Request) (string, error) {
	ts := a.c.TokenSource(req.Context(), s.Handle, TokenSourceOptions{Audience: a.audience, EarlyExpiry: a.earlyExpiry})
	tok, err := ts.TokenContext(req.Context())
	switch {
	case err == nil && tok.AccessToken != "":
		return tok.AccessToken, nil
	case err == nil:
		err = fmt.Errorf("%w: no access token for audience %q", ErrNoSession, a.audience)
	case errors.Is(err, ErrNoSession), errors.Is(err, ErrNoRefreshToken),
		errors.Is(err, ErrRefreshTokenInvalid), errors.Is(err, ErrMFARequired):
	default:
		return "", err
	}
	return "", &StepUpNeededError{Audience: a.audience, AuthorizeOptions: AuthorizeOptions{Audience: a.audience}, Err: err, Job: s.secret == ""}
}

// RetryParam is the query parameter Client.StepUp adds to the return path:
// it marks the page load that follows a step-up, for loop protection.
const RetryParam = "stepup_retry"

// StepUp sends the browser through the tenant's /authorize with opts,
// typically a StepUpNeededError's AuthorizeOptions (acr_values, max_age and
// audience exactly as the API asked), and back to the page: the page's
// handler then runs again and repeats its API call with the new token, which
// the callback stored in the session under the audience. It is what
// RequireStepUp does for pages, for a handler to call. On success it has
// written the redirect (302, and the transaction cookie) and returns nil; on
// error it has written nothing.
//
// The return path is opts.ReturnTo when set, else the request's own path and
// query for GET and HEAD, else Config.DefaultReturnTo: a POST (or any
// non-idempotent request) is never replayed; the browser comes back to a
// page with GET and the user submits again. LoginHint defaults to the
// session's email.
//
// Loop protection: the return path carries a sealed marker (query parameter
// RetryParam) naming the session, the audience, the acr_values and max_age
// asked for, and the time. StepUp returns ErrStepUpLoop instead of
// redirecting when it is called on a page load that carries such a marker
// and (1) the marker was made for this session and for the same request of
// the API (audience, acr_values, max_age), (2) a login has completed in the
// session since the marker was made (the cookie rotated), and (3) the marker
// is recent: younger than Config.TransactionTTL plus a minute, and, when the
// API asked for a max_age, younger than that max_age (at least a minute) —
// past it, the API may rightly ask again. The user has just stepped up for
// exactly this, and the API still refuses: show the page without the API's
// data, or pass the error to your error page (ErrorStatus: 403). A reload of
// the page after that costs at most one more trip to the tenant, never an
// automatic loop. A different request of the API gets a new step-up. Other
// failures (the store, invalid options) are returned as they are (ErrorStatus:
// 503, 400).
func (c *Client) StepUp(w http.ResponseWriter, r *http.Request, opts AuthorizeOptions) error {
	s, err := c.SessionFromRequest(r)
	if err != nil && !errors.Is(err, ErrNoSession) {
		return err
	}
	audience := opts.Audience
	if audience == "" {
		audience = c.cfg.Audience
	}
	want := retryMark{Audience: audience, ACR: opts.Policy.ACRValues(), MaxAge: -1}
	switch {
	case opts.MaxAge != nil && *opts.MaxAge >= 0:
		want.MaxAge = ceilSeconds(*opts.MaxAge)
	case opts.Policy.MaxAge > 0:
		want.MaxAge = ceilSeconds(opts.Policy.MaxAge)
	}
	now := c.now()
	if s != nil {
		if m, ok := c.findRetryMark(r, s.Handle); ok &&
			m.Audience == want.Audience && m.ACR == want.ACR && m.MaxAge == want.MaxAge &&
			(m.Secret == "" || m.Secret != cookieMark(s)) {
			window := c.cfg.TransactionTTL + time.Minute
			if m.MaxAge >= 0 && m.MaxAge < int64(window/time.Second) { // no overflow for a huge max_age
				window = max(time.Duration(m.MaxAge)*time.Second, time.Minute)
			}
			at := time.Unix(m.At, 0)
			if !now.Before(at.Add(-time.Minute)) && now.Before(at.Add(window)) {
				return fmt.Errorf("%w (API %q, acr_values %q, max_age %s)", ErrStepUpLoop, audience, want.ACR, retryMarkMaxAge(want.MaxAge))
			}
		}
	}

	if opts.ReturnTo == "" {
		opts.ReturnTo = returnPath(r, c.cfg.DefaultReturnTo)
	}
	if s != nil {
		if opts.LoginHint == "" {
			opts.LoginHint = s.Email
		}
		want.At, want.Secret = now.Unix(), cookieMark(s)
		rt, err := withRetryMark(opts.ReturnTo, c.sealRetryMark(want, s.Handle))
		if err != nil {
			return fmt.Errorf("%w: ReturnTo: %v", ErrInvalidAuthorizeOptions, err)
		}
		opts.ReturnTo = rt
	}
	return c.sendToAuthorize(w, r, opts)
}

// retryMark is what the loop-protection marker says: the step-up that sent
// the browser away, for which session (bound by the seal), and when.
type retryMark struct {
	Audience string `json:"a"`
	ACR      string `json:"c,omitempty"`
	MaxAge   int64  `json:"m"` // seconds; -1 when none was sent
	At       int64  `json:"t"` // unix seconds
	// Secret identifies the session's cookie secret when the marker was
	// made (cookieMark): it rotates at every login, so a different one
	// means a login completed since. "" when unknown.
	Secret string `json:"s,omitempty"`
}

// cookieMark is a short digest of s's cookie secret ("" for a session read
// by handle, which has none).
func cookieMark(s *Session) string {
	if s.secret == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(secretHash(s.secret)[:9])
}

func retryAAD(handle string) []byte { return []byte("stepup/api-retry/v1\x00" + handle) }

func (c *Client) sealRetryMark(m retryMark, handle string) string {
	b, _ := json.Marshal(m) // cannot fail: strings and integers
	return base64.RawURLEncoding.EncodeToString(c.ring.seal(b, retryAAD(handle)))
}

// maxRetryMarks bounds the RetryParam values of one page URL that are tried.
const maxRetryMarks = 4

// findRetryMark returns the first RetryParam of r's query that opens for the
// session handle. Keys are compared decoded (as url.Values has them), the
// same way withRetryMark removes them, so that an encoded spelling such as
// "stepup%5Fretry" can neither hide a marker nor shadow the real one.
func (c *Client) findRetryMark(r *http.Request, handle string) (retryMark, bool) {
	vals := r.URL.Query()[RetryParam]
	for i, v := range vals {
		if i == maxRetryMarks {
			break
		}
		if m, ok := c.openRetryMark(v, handle); ok {
			return m, true
		}
	}
	return retryMark{}, false
}

// openRetryMark opens a marker sealed for the session handle; anything else
// (absent, tampered, another session's, an unknown key) is no marker.
func (c *Client) openRetryMark(v, handle string) (retryMark, bool) {
	var m retryMark
	if v == "" || len(v) > 1024 {
		return m, false
	}
	blob, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return m, false
	}
	b, err := c.ring.open(blob, retryAAD(handle))
	if err != nil || json.Unmarshal(b, &m) != nil {
		return m, false
	}
	return m, true
}

// maxRetryMarkBytes bounds a sealed marker (as openRetryMark does).
const maxRetryMarkBytes = 1024

// maxPagePathBytes bounds the page path and query a step-up returns to;
// maxReturnToBytes (checkReturnTo) leaves room for the marker on top of it,
// so that any page a browser can load within the bound can be stepped up.
const maxPagePathBytes = 2048

// maxReturnToBytes bounds a return path: a page's path and query
// (maxPagePathBytes) plus the loop-protection marker StepUp adds.
const maxReturnToBytes = maxPagePathBytes + len("&"+RetryParam+"=") + maxRetryMarkBytes

// withRetryMark returns the local path p with its RetryParam replaced by
// mark. A pair is dropped when its key, decoded as url.ParseQuery decodes
// it, is RetryParam (so "stepup%5Fretry=x" goes too), or when its key cannot
// be decoded (url.ParseQuery ignores it, so no reader of the URL sees it).
func withRetryMark(p, mark string) (string, error) {
	if len(p) > maxPagePathBytes {
		return "", fmt.Errorf("longer than %d bytes", maxPagePathBytes)
	}
	if len(mark) > maxRetryMarkBytes {
		return "", errors.New("loop-protection marker too long (audience or acr_values too long)")
	}
	if err := checkReturnTo(p); err != nil {
		return "", err
	}
	path, query, _ := strings.Cut(p, "?")
	var kept []string
	for _, kv := range strings.Split(query, "&") {
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if dk, err := url.QueryUnescape(k); err != nil || dk == RetryParam {
			continue
		}
		kept = append(kept, kv)
	}
	kept = append(kept, RetryParam+"="+url.QueryEscape(mark))
	out := path + "?" + strings.Join(kept, "&")
	if err := checkReturnTo(out); err != nil {
		return "", err
	}
	return out, nil
}

// retryMarkMaxAge formats a marker's max_age for messages.
func retryMarkMaxAge(s int64) string {
	if s < 0 {
		return "none"
	}
	return strconv.FormatInt(s, 10)
}
