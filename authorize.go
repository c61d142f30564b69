package stepup

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// ErrInvalidAuthorizeOptions: AuthorizeOptions that cannot be sent, such as a
// ReturnTo that is not a local path or Extra parameters that would override
// the security parameters. The message says which.
var ErrInvalidAuthorizeOptions = errors.New("stepup: invalid authorize options")

// AuthorizeOptions shape one authorization request. The zero value asks for a
// plain login with the Config's scopes and audience.
type AuthorizeOptions struct {
	// Connection sends the user straight to this identity provider (e.g.
	// "google-oauth2", "Username-Password-Authentication"), skipping Auth0's
	// chooser. Its entry in Config.ConnectionPolicies is combined with
	// Policy (see Client.PolicyFor) for this request only: the browser
	// controls the request, so the session answers to the connection the ID
	// token's sub names (Session.Connection), whatever was requested.
	Connection string
	// Policy is what the login must satisfy: its ACR values are sent as
	// acr_values and its MaxAge as max_age, and Exchange checks the result
	// against it.
	Policy Policy
	// Prompt is sent as prompt: "login" forces re-authentication, "none"
	// is silent authentication (its tokens never change a session's
	// step-up evidence).
	Prompt string
	// MaxAge, when not nil, is sent as max_age instead of Policy.MaxAge.
	// A pointer to 0 forces re-authentication.
	MaxAge *time.Duration
	// LoginHint pre-fills the login page (an email address).
	LoginHint string
	// Audience is the API the access token is for. Default: Config.Audience.
	Audience string
	// Scopes are requested besides Config.Scopes ("openid" is always sent).
	Scopes []string
	// Organization is an Auth0 organization id or name.
	Organization string
	// ReturnTo is the local path the callback redirects to, such as
	// "/reports?y=2026". It must start with a single "/" (no scheme, no
	// host, no backslash): an absolute URL would be an open redirect.
	// Default: Config.DefaultReturnTo.
	ReturnTo string
	// Binding is the browser binding to reuse: the value of the binding
	// cookie when the browser already has one, so that logins started in
	// several tabs all stay valid. Empty or malformed: a new one is made.
	Binding string
	// Extra parameters for /authorize (e.g. screen_hint, ui_locales,
	// invitation). They cannot set a parameter the Client sets itself.
	Extra url.Values
}

// AuthorizeRequest is an authorization request ready to be sent.
type AuthorizeRequest struct {
	// URL is where to send the browser (a 302 to it).
	URL string
	// State identifies the transaction in the callback.
	State string
	// Binding ties the transaction to this browser: store it in a cookie
	// (HttpOnly, SameSite=Lax; the middleware uses the binding cookie) and
	// give it back to Exchange with the callback.
	Binding string
	// Policy is the effective policy the callback will be checked against.
	Policy Policy
	// ExpiresAt is when the transaction expires.
	ExpiresAt time.Time
}

// reservedParams are set by the Client and may not come from Extra.
var reservedParams = map[string]bool{
	"response_type": true, "response_mode": true, "client_id": true, "redirect_uri": true,
	"scope": true, "state": true, "nonce": true, "code_challenge": true,
	"code_challenge_method": true, "acr_values": true, "max_age": true, "request": true,
	"request_uri": true, "audience": true, "connection": true, "prompt": true,
	"login_hint": true, "organization": true, "client_secret": true, "client_assertion": true,
	"client_assertion_type": true, "id_token_hint": true, "claims": true,
}

// AuthorizeURL starts an authorization: it makes a 256-bit state and nonce
// and a PKCE S256 verifier, saves them with the requested policy, the
// connection, the return path and a hash of the browser binding as one
// record in the Store (one write, expiring after Config.TransactionTTL), and
// returns the URL to send the browser to. With Config.UsePAR, the parameters
// are first posted to the tenant's /oauth/par.
func (c *Client) AuthorizeURL(ctx context.Context, opts AuthorizeOptions) (*AuthorizeRequest, error) {
	return c.authorizeURL(ctx, opts, c.PolicyFor(opts.Policy, opts.Connection))
}

// authorizeURL is AuthorizeURL sending policy, opts.Policy as already
// adapted to a connection (opts.Connection is then only a routing hint).
func (c *Client) authorizeURL(ctx context.Context, opts AuthorizeOptions, policy Policy) (*AuthorizeRequest, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidAuthorizeOptions}, args...)...)
	}
	returnTo := opts.ReturnTo
	if returnTo == "" {
		returnTo = c.cfg.DefaultReturnTo
	} else if err := checkReturnTo(returnTo); err != nil {
		return nil, invalid("ReturnTo: %v", err)
	}
	for k := range opts.Extra {
		if reservedParams[strings.ToLower(k)] {
			return nil, invalid("Extra must not set %q: use the AuthorizeOptions field or leave it to the Client", k)
		}
	}
	if opts.MaxAge != nil && *opts.MaxAge < 0 {
		return nil, invalid("MaxAge is negative")
	}
	if opts.Policy.MaxAge < 0 {
		return nil, invalid("Policy.MaxAge is negative")
	}
	for _, s := range opts.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return nil, invalid("Scopes: %q is not a scope token", s)
		}
	}
	for _, v := range []string{opts.Connection, opts.Prompt, opts.LoginHint, opts.Audience, opts.Organization} {
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, invalid("a parameter contains a control character")
		}
	}

	audience := opts.Audience
	if audience == "" {
		audience = c.cfg.Audience
	}
	binding := opts.Binding
	if !isRandomToken(binding) {
		binding = randomToken()
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	now := c.now()

	challenge := oauth2.S256ChallengeFromVerifier(verifier)
	rec := txRecord{
		V:           txVersion,
		Nonce:       nonce,
		Verifier:    verifier,
		BindingHash: bindingHash(binding),
		Issuer:      c.issuer,
		Policy:      policy,
		MaxAge:      -1,
		Connection:  opts.Connection,
		ReturnTo:    returnTo,
		Audience:    audience,
		Silent:      opts.Prompt == "none",
		Expires:     now.Add(c.cfg.TransactionTTL).Unix(),
	}
	var maxAge string
	switch {
	case opts.MaxAge != nil:
		rec.MaxAge = ceilSeconds(*opts.MaxAge)
		maxAge = strconv.FormatInt(rec.MaxAge, 10)
	case policy.MaxAge > 0:
		maxAge, _ = policy.MaxAgeSeconds()
		rec.MaxAge, _ = strconv.ParseInt(maxAge, 10, 64)
	}

	// The query is written by hand, in one buffer: this is the hot path of
	// every login (x/oauth2's AuthCodeURL costs a map and a sort per call).
	q := make([]byte, 0, 640)
	q = append(q, c.authURL...)
	q = append(q, '?')
	q = appendParam(q, "response_type", "code")
	q = appendParam(q, "client_id", c.cfg.ClientID)
	q = appendParam(q, "redirect_uri", c.cfg.RedirectURL)
	q = append(q, "&scope=openid"...)
	for _, sc := range c.cfg.Scopes[1:] { // Scopes[0] is "openid"
		q = append(q, '+')
		q = appendEscaped(q, sc)
	}
	for _, sc := range opts.Scopes {
		if !slices.Contains(c.cfg.Scopes, sc) {
			q = append(q, '+')
			q = appendEscaped(q, sc)
		}
	}
	q = appendParam(q, "state", state)
	q = appendParam(q, "nonce", nonce)
	q = appendParam(q, "code_challenge", challenge)
	q = appendParam(q, "code_challenge_method", "S256")
	if len(policy.ACR) > 0 {
		q = append(q, "&acr_values="...)
		for i, v := range policy.ACR {
			if i > 0 {
				q = append(q, '+')
			}
			q = appendEscaped(q, v)
		}
	}
	for _, p := range [...]struct{ k, v string }{
		{"max_age", maxAge}, {"audience", audience}, {"connection", opts.Connection},
		{"prompt", opts.Prompt}, {"login_hint", opts.LoginHint}, {"organization", opts.Organization},
	} {
		if p.v != "" {
			q = appendParam(q, p.k, p.v)
		}
	}
	for k, vs := range opts.Extra {
		for _, v := range vs {
			q = appendParam(q, k, v)
		}
	}
	u := string(q)

	if c.cfg.UsePAR {
		var err error
		if u, err = c.pushAuthorizationRequest(ctx, u); err != nil {
			return nil, err
		}
	}

	data, err := encodeTx(&rec)
	if err != nil {
		return nil, err
	}
	sctx, done := c.storeContext(ctx)
	if err := done(c.store.Set(sctx, c.txKey(state), data, c.cfg.TransactionTTL)); err != nil {
		return nil, fmt.Errorf("stepup: saving the authorization transaction: %w", err)
	}
	return &AuthorizeRequest{URL: u, State: state, Binding: binding, Policy: policy, ExpiresAt: time.Unix(rec.Expires, 0)}, nil
}

// pushAuthorizationRequest posts the parameters of the authorization URL u to
// /oauth/par and returns the short URL carrying the request_uri.
func (c *Client) pushAuthorizationRequest(ctx context.Context, u string) (string, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("stepup: building the PAR request: %w", err)
	}
	form := pu.Query()
	status, body, err := c.postForm(ctx, "/oauth/par", c.parURL, form)
	if err != nil {
		return "", err
	}
	var par struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &par); err != nil || par.RequestURI == "" {
		return "", &TenantError{Endpoint: "/oauth/par", StatusCode: status, Code: "invalid_response",
			Err: errors.New("answer has no request_uri")}
	}
	q := url.Values{"client_id": {c.cfg.ClientID}, "request_uri": {par.RequestURI}}
	return c.authURL + "?" + q.Encode(), nil
}

// PolicyFor returns the policy a session that logged in through connection
// must satisfy where a page demands p.
//
// A connection's policy (Config.ConnectionPolicies) says what a step-up
// means for that identity provider, and applies only where p asks for a
// step-up (p.RequiresStepUp): when it names ACR or AMR values they replace
// p's (an enterprise connection whose own IdP reports MFA with its own acr
// is accepted by that acr); the shorter non-zero MaxAge of the two applies
// (google-oauth2 may demand MFA within 5 minutes where other connections
// accept 10); scopes are merged. A plain login (p without step-up) is the
// same for every connection.
//
// connection is a key of Config.ConnectionPolicies: for a session, its
// Connection, derived from the ID token's sub ("auth0" for any database
// connection, the provider for social logins, the connection name, else the
// strategy, for enterprise ones); for an authorization request, the
// connection requested.
func (c *Client) PolicyFor(p Policy, connection string) Policy {
	if connection == "" || !p.RequiresStepUp() {
		return p
	}
	cp, ok := c.cfg.ConnectionPolicies[connection]
	if !ok {
		return p
	}
	out := clonePolicy(p)
	if len(cp.ACR) > 0 || len(cp.AMR) > 0 {
		out.ACR = slices.Clone(cp.ACR)
		out.AMR = slices.Clone(cp.AMR)
	}
	if cp.MaxAge > 0 && (out.MaxAge == 0 || cp.MaxAge < out.MaxAge) {
		out.MaxAge = cp.MaxAge
	}
	for _, s := range cp.Scopes {
		if !slices.Contains(out.Scopes, s) {
			out.Scopes = append(out.Scopes, s)
		}
	}
	if !strings.HasSuffix(out.Name, "@"+connection) {
		name := out.Name
		if name == "" {
			name = "unnamed"
		}
		out.Name = name + "@" + connection
	}
	return out
}

// checkReturnTo accepts a local path with an optional query: it must start
// with exactly one "/", and hold no backslash, control character or
// fragment, so that no browser can read it as another origin.
func checkReturnTo(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case len(p) > maxReturnToBytes:
		return fmt.Errorf("longer than %d bytes", maxReturnToBytes)
	case p[0] != '/':
		return fmt.Errorf("%q is not a local path starting with /", p)
	case len(p) > 1 && (p[1] == '/' || p[1] == '\\'):
		return fmt.Errorf("%q would be read as another host", p)
	case strings.ContainsRune(p, '\\'):
		return fmt.Errorf("%q contains a backslash", p)
	case strings.ContainsRune(p, '#'):
		return fmt.Errorf("%q contains a fragment", p)
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x21 || p[i] == 0x7f {
			return fmt.Errorf("%q contains a space or control character", p)
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return fmt.Errorf("%q is not a local path", p)
	}
	// A percent-encoded slash or backslash right after the leading "/" is
	// decoded by some servers and proxies into "//host".
	if lp := strings.ToLower(p); strings.HasPrefix(lp, "/%2f") || strings.HasPrefix(lp, "/%5c") {
		return fmt.Errorf("%q starts with an encoded slash", p)
	}
	return nil
}

// bindingHash is what a transaction keeps of the browser binding: enough to
// compare, useless to a reader of the store.
func bindingHash(binding string) []byte {
	h := sha256.Sum256([]byte("stepup binding\x00" + binding))
	return h[:]
}

func (c *Client) txKey(state string) string { return c.cfg.KeyPrefix + "tx:" + state }

// txRecord is an authorization transaction as stored. Its encoding is JSON
// with a version number, read back by decodeTx, a parser of untrusted input
// (whoever can write to the store).
type txRecord struct {
	V           int    `json:"v"`
	Nonce       string `json:"n"`
	Verifier    string `json:"cv"`
	BindingHash []byte `json:"b"`
	Issuer      string `json:"iss"`
	Policy      Policy `json:"p"`
	// MaxAge is the max_age sent, in seconds; -1 when none was.
	MaxAge     int64  `json:"ma"`
	Connection string `json:"c,omitempty"`
	ReturnTo   string `json:"r"`
	Audience   string `json:"aud,omitempty"`
	Silent     bool   `json:"s,omitempty"`
	Expires    int64  `json:"exp"`
}

const txVersion = 1

func encodeTx(r *txRecord) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("stepup: encoding a transaction: %w", err)
	}
	return b, nil
}

var errCorruptRecord = errors.New("stepup: store record is corrupt or of an unknown version")

func decodeTx(data []byte) (*txRecord, error) {
	var r txRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: transaction: %v", errCorruptRecord, err)
	}
	switch {
	case r.V != txVersion:
		return nil, fmt.Errorf("%w: transaction version %d", errCorruptRecord, r.V)
	case !isRandomToken(r.Nonce):
		return nil, fmt.Errorf("%w: transaction nonce", errCorruptRecord)
	case len(r.Verifier) < 43 || len(r.Verifier) > 128:
		return nil, fmt.Errorf("%w: transaction PKCE verifier", errCorruptRecord)
	case len(r.BindingHash) != sha256.Size:
		return nil, fmt.Errorf("%w: transaction binding", errCorruptRecord)
	case r.Issuer == "":
		return nil, fmt.Errorf("%w: transaction issuer", errCorruptRecord)
	case r.MaxAge < -1:
		return nil, fmt.Errorf("%w: transaction max_age", errCorruptRecord)
	case r.Policy.MaxAge < 0:
		return nil, fmt.Errorf("%w: transaction policy", errCorruptRecord)
	case checkReturnTo(r.ReturnTo) != nil:
		return nil, fmt.Errorf("%w: transaction return path", errCorruptRecord)
	}
	for i := 0; i < len(r.Verifier); i++ {
		ch := r.Verifier[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-._~", ch) >= 0) {
			return nil, fmt.Errorf("%w: transaction PKCE verifier", errCorruptRecord)
		}
	}
	return &r, nil
}

// appendParam appends "&k=v" with v escaped as in a query.
func appendParam(b []byte, k, v string) []byte {
	if b[len(b)-1] != '?' {
		b = append(b, '&')
	}
	b = appendEscaped(b, k)
	b = append(b, '=')
	return appendEscaped(b, v)
}

// appendEscaped appends s escaped like url.QueryEscape.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if unreservedQuery[ch] {
			continue
		}
		b = append(b, s[start:i]...)
		if ch == ' ' {
			b = append(b, '+')
		} else {
			b = append(b, '%', hex[ch>>4], hex[ch&15])
		}
		start = i + 1
	}
	return append(b, s[start:]...)
}

// unreservedQuery marks the bytes url.QueryEscape leaves as they are.
var unreservedQuery = func() (t [256]bool) {
	for ch := range 256 {
		t[ch] = ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
			ch == '-' || ch == '_' || ch == '.' || ch == '~'
	}
	return t
}()
