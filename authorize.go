package stepup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInvalidAuthorizeOptions: AuthorizeOptions that cannot be sent, such as a
// ReturnTo that is not a local path, a parameter over its bound, or Extra
// parameters that would override the security parameters. The message says
// which (quoting at most 64 bytes of the value). The middleware answers it
// with 400; nothing is stored.
var ErrInvalidAuthorizeOptions = errors.New("stepup: invalid authorize options")

// Bounds of what an authorization request carries. Most of it can come from
// a browser (LoginHandler's query, a page's URL), and all of it travels in
// the transaction cookie: each is checked before anything is built.
const (
	maxConnectionLen   = 128  // Auth0: a connection name is at most 128 characters
	maxLoginHintLen    = 320  // an email address (254) or an iss_sub JSON hint
	maxOrganizationLen = 50   // Auth0: organization names are at most 50 characters, ids ~20
	maxInvitationLen   = 64   // Auth0's invitation tickets are 32 characters
	maxReturnToLen     = 2048 // a return_to from the browser (LoginHandler); checkReturnTo leaves room for the step-up marker
	maxAudienceLen     = 512
	maxPromptLen       = 64
	maxScopes          = 32
	maxScopeLen        = 256
	maxPolicyNameLen   = 256 + 1 + maxConnectionLen // with PolicyFor's "@connection"
	maxExtraParams     = 16
	maxExtraNameLen    = 64
	maxExtraValueLen   = 512
	maxExtraTotal      = 2048
)

// AuthorizeOptions shape one authorization request. The zero value asks for a
// plain login with the Config's scopes and audience. Every field is bounded
// (the browser controls several of them); over a bound, AuthorizeURL fails
// with ErrInvalidAuthorizeOptions.
type AuthorizeOptions struct {
	// Connection sends the user straight to this identity provider (e.g.
	// "google-oauth2", "Username-Password-Authentication"), skipping Auth0's
	// chooser. Its entry in Config.ConnectionPolicies is combined with
	// Policy (see Client.PolicyFor) for this request only: the browser
	// controls the request, so the session answers to the connection the ID
	// token's sub names (Session.Connection), whatever was requested.
	// Auth0's name rule applies: 1 to 128 ASCII letters, digits and "-",
	// starting and ending with a letter or digit.
	Connection string
	// Policy is what the login must satisfy: its ACR values are sent as
	// acr_values and its MaxAge as max_age, and Exchange checks the result
	// against it. At most 32 ACR, AMR and scope values of at most 256
	// bytes each; a Name of at most 256 bytes.
	Policy Policy
	// Prompt is sent as prompt: "login" forces re-authentication, "none"
	// is silent authentication (its tokens never change a session's
	// step-up evidence). At most 64 bytes.
	Prompt string
	// MaxAge, when not nil, is sent as max_age instead of Policy.MaxAge.
	// A pointer to 0 forces re-authentication.
	MaxAge *time.Duration
	// LoginHint pre-fills the login page (an email address): at most 320
	// bytes of UTF-8 without control characters.
	LoginHint string
	// Audience is the API the access token is for. Default: Config.Audience.
	// At most 512 bytes.
	Audience string
	// Scopes are requested besides Config.Scopes ("openid" is always sent):
	// at most 32, each at most 256 bytes without spaces.
	Scopes []string
	// Organization is an Auth0 organization id ("org_...") or name: 1 to 50
	// ASCII letters, digits, "-" and "_". Default: Config.Organization. The
	// callback checks the ID token against it (ErrOrganizationMismatch).
	// An invitation link's invitation goes in Extra with it (LoginHandler
	// takes both from its query).
	Organization string
	// ReturnTo is the local path the callback redirects to, such as
	// "/reports?y=2026". It must start with a single "/" (no scheme, no
	// host, no backslash): an absolute URL would be an open redirect. At
	// most 2048 bytes. Default: Config.DefaultReturnTo.
	ReturnTo string
	// Extra parameters for /authorize (e.g. screen_hint, ui_locales,
	// invitation). They cannot set a parameter the Client sets itself. At
	// most 16 values; names of at most 64 bytes of letters, digits, "_",
	// "-" and "."; values of at most 512 bytes (invitation: 1 to 64
	// letters, digits, "-" and "_"), 2048 bytes in all, no control
	// characters.
	Extra url.Values
}

// AuthorizeRequest is an authorization request ready to be sent: the URL to
// send the browser to and the transaction cookie that must go with it.
type AuthorizeRequest struct {
	// URL is where to send the browser (a 302 to it).
	URL string
	// State identifies the transaction in the callback.
	State string
	// Transaction is the pending authorization (nonce, PKCE verifier, the
	// policy and max_age sent, connection, return path, audience, expiry),
	// sealed with the Client's key ring and bound to State: the value of
	// the cookie Cookie returns. Nothing of it is in the Store. Give it back
	// to Exchange with the callback.
	Transaction string
	// Policy is the effective policy the callback will be checked against.
	Policy Policy
	// ExpiresAt is when the transaction expires.
	ExpiresAt time.Time

	cookie http.Cookie
}

// Cookie returns the transaction cookie to set with the redirect to URL
// (named by Client.TransactionCookieName(State); HttpOnly, SameSite=Lax,
// Path=/, Max-Age Config.TransactionTTL, Secure with the __Host- prefix on
// https). Client.SetTransactionCookie sets it and bounds how many a browser
// keeps.
func (ar *AuthorizeRequest) Cookie() *http.Cookie {
	ck := ar.cookie
	return &ck
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
// and a PKCE S256 verifier, seals them with the requested policy, the
// connection and the return path into the transaction cookie
// (AuthorizeRequest.Cookie, bound to the state), and returns the URL to send
// the browser to. It writes nothing to the Store: an anonymous visitor costs
// none of it, and only the browser holding the cookie can complete the
// transaction (Exchange). With Config.UsePAR, the parameters are first
// posted to the tenant's /oauth/par (still nothing stored). Options over
// their bounds fail with ErrInvalidAuthorizeOptions.
func (c *Client) AuthorizeURL(ctx context.Context, opts AuthorizeOptions) (*AuthorizeRequest, error) {
	return c.authorizeURL(ctx, opts, c.PolicyFor(opts.Policy, opts.Connection))
}

// clip quotes at most 64 bytes of a value for an error message: the value may
// come from a browser, and the message reaches logs and error pages.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return strconv.Quote(s)
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("… (%d bytes)", len(s))
}

// checkConnection applies Auth0's rule for connection names.
func checkConnection(s string) error {
	if s == "" || len(s) > maxConnectionLen {
		return fmt.Errorf("%s is not 1 to %d characters", clip(s), maxConnectionLen)
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		alnum := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9'
		if !alnum && (ch != '-' || i == 0 || i == len(s)-1) {
			return fmt.Errorf("%s is not a connection name (letters, digits and inner \"-\")", clip(s))
		}
	}
	return nil
}

// checkName accepts 1 to max ASCII letters, digits and the bytes of extra.
func checkName(s string, max int, extra string) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%s is not 1 to %d characters", clip(s), max)
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte(extra, ch) >= 0) {
			return fmt.Errorf("%s holds %q (allowed: letters, digits and %q)", clip(s), ch, extra)
		}
	}
	return nil
}

// checkText accepts at most max bytes of UTF-8 without control characters.
func checkText(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s is longer than %d bytes", clip(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not UTF-8", clip(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return fmt.Errorf("%s contains a control character", clip(s))
		}
	}
	return nil
}

// checkAuthorizeOptions bounds everything opts carries (see AuthorizeOptions).
func checkAuthorizeOptions(opts *AuthorizeOptions, policy *Policy) error {
	invalid := func(field string, err error) error {
		return fmt.Errorf("%w: %s: %w", ErrInvalidAuthorizeOptions, field, err)
	}
	if opts.ReturnTo != "" {
		if err := checkReturnTo(opts.ReturnTo); err != nil {
			return invalid("ReturnTo", err)
		}
	}
	if opts.Connection != "" {
		if err := checkConnection(opts.Connection); err != nil {
			return invalid("Connection", err)
		}
	}
	if opts.Organization != "" {
		if err := checkName(opts.Organization, maxOrganizationLen, "-_"); err != nil {
			return invalid("Organization", err)
		}
	}
	if err := checkText(opts.LoginHint, maxLoginHintLen); err != nil {
		return invalid("LoginHint", err)
	}
	if err := checkText(opts.Audience, maxAudienceLen); err != nil {
		return invalid("Audience", err)
	}
	if err := checkText(opts.Prompt, maxPromptLen); err != nil {
		return invalid("Prompt", err)
	}
	if opts.MaxAge != nil && *opts.MaxAge < 0 {
		return invalid("MaxAge", fmt.Errorf("%s is negative", *opts.MaxAge))
	}
	if opts.Policy.MaxAge < 0 {
		return invalid("Policy.MaxAge", fmt.Errorf("%s is negative", opts.Policy.MaxAge))
	}
	// The policy sent (opts.Policy as adapted to the connection) is what
	// travels; opts.Policy itself goes nowhere else.
	if policy.MaxAge < 0 {
		return invalid("Policy.MaxAge", fmt.Errorf("%s is negative", policy.MaxAge))
	}
	if err := checkText(policy.Name, maxPolicyNameLen); err != nil {
		return invalid("Policy.Name", err)
	}
	for _, l := range [...]struct {
		name string
		vs   []string
	}{{"Policy.ACR", policy.ACR}, {"Policy.AMR", policy.AMR}, {"Policy.Scopes", policy.Scopes}} {
		if err := checkScopeList(l.vs); err != nil {
			return invalid(l.name, err)
		}
	}
	if err := checkScopeList(opts.Scopes); err != nil {
		return invalid("Scopes", err)
	}
	n, total := 0, 0
	for k, vs := range opts.Extra {
		if reservedParams[strings.ToLower(k)] {
			return invalid("Extra", fmt.Errorf("must not set %s: use the AuthorizeOptions field or leave it to the Client", clip(k)))
		}
		if err := checkName(k, maxExtraNameLen, "-_."); err != nil {
			return invalid("Extra", fmt.Errorf("parameter name %w", err))
		}
		for _, v := range vs {
			n++
			total += len(k) + len(v)
			if n > maxExtraParams || total > maxExtraTotal {
				return invalid("Extra", fmt.Errorf("more than %d values or %d bytes", maxExtraParams, maxExtraTotal))
			}
			var err error
			if strings.EqualFold(k, "invitation") {
				err = checkName(v, maxInvitationLen, "-_")
			} else {
				err = checkText(v, maxExtraValueLen)
			}
			if err != nil {
				return invalid("Extra "+k, err)
			}
		}
	}
	return nil
}

func checkScopeList(vs []string) error {
	if len(vs) > maxScopes {
		return fmt.Errorf("%d values, at most %d", len(vs), maxScopes)
	}
	for _, s := range vs {
		bad := s == "" || len(s) > maxScopeLen
		for i := 0; i < len(s) && !bad; i++ {
			bad = s[i] <= 0x20 || s[i] == 0x7f
		}
		if bad || !utf8.ValidString(s) {
			return fmt.Errorf("%s is not a token of 1 to %d bytes of UTF-8 without spaces or control characters", clip(s), maxScopeLen)
		}
	}
	return nil
}

// authorizeURL is AuthorizeURL sending policy, opts.Policy as already
// adapted to a connection (opts.Connection is then only a routing hint).
func (c *Client) authorizeURL(ctx context.Context, opts AuthorizeOptions, policy Policy) (*AuthorizeRequest, error) {
	if err := c.canLogin(); err != nil {
		return nil, err
	}
	if opts.Organization == "" {
		opts.Organization = c.cfg.Organization
	}
	if err := checkAuthorizeOptions(&opts, &policy); err != nil {
		return nil, err
	}
	returnTo := opts.ReturnTo
	if returnTo == "" {
		returnTo = c.cfg.DefaultReturnTo
	}
	audience := opts.Audience
	if audience == "" {
		audience = c.cfg.Audience
	}
	now := c.now()
	rec := txRecord{
		Issuer:     c.issuer,
		Policy:     policy,
		MaxAge:     -1,
		Connection: opts.Connection,
		ReturnTo:   returnTo,
		Audience:   audience,
		Org:        opts.Organization,
		Silent:     opts.Prompt == "none",
		Expires:    now.Add(c.cfg.TransactionTTL).Unix(),
	}
	var random [32 + 2*txRawLen]byte
	if _, err := rand.Read(random[:]); err != nil {
		panic("stepup: crypto/rand failed: " + err.Error())
	}
	state := base64.RawURLEncoding.EncodeToString(random[:32])
	copy(rec.Nonce[:], random[32:])
	copy(rec.Verifier[:], random[32+txRawLen:])
	// The nonce and the PKCE S256 challenge (RFC 7636: base64url of the
	// SHA-256 of the verifier's base64url form, as
	// oauth2.S256ChallengeFromVerifier) are built on the stack.
	var nonce, verifier, challenge [43]byte
	base64.RawURLEncoding.Encode(nonce[:], rec.Nonce[:])
	base64.RawURLEncoding.Encode(verifier[:], rec.Verifier[:])
	sum := sha256.Sum256(verifier[:])
	base64.RawURLEncoding.Encode(challenge[:], sum[:])

	var maxAge string
	switch {
	case opts.MaxAge != nil:
		rec.MaxAge = ceilSeconds(*opts.MaxAge)
	case policy.MaxAge > 0:
		rec.MaxAge = ceilSeconds(policy.MaxAge) // as Policy.MaxAgeSeconds
	}
	if rec.MaxAge >= 0 {
		maxAge = strconv.FormatInt(rec.MaxAge, 10)
	}

	// The query is written by hand, in one buffer: this is the hot path of
	// every login (x/oauth2's AuthCodeURL costs a map and a sort per call).
	bp := scratch.Get().(*[]byte)
	q := append((*bp)[:0], c.authURL...)
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
	// state, nonce and challenge are base64url: nothing to escape.
	q = append(q, "&state="...)
	q = append(q, state...)
	q = append(q, "&nonce="...)
	q = append(q, nonce[:]...)
	q = append(q, "&code_challenge="...)
	q = append(q, challenge[:]...)
	q = append(q, "&code_challenge_method=S256"...)
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
	if cap(q) <= 8192 {
		*bp = q[:0]
		scratch.Put(bp)
	}

	value := c.sealTx(state, &rec)
	if len(value) > maxTxCookieValue {
		return nil, fmt.Errorf("%w: the transaction is %d bytes sealed, over the %d a cookie may carry: shorten ReturnTo or the policy",
			ErrInvalidAuthorizeOptions, len(value), maxTxCookieValue)
	}
	if c.cfg.UsePAR {
		var err error
		if u, err = c.pushAuthorizationRequest(ctx, u); err != nil {
			return nil, err
		}
	}
	ar := &AuthorizeRequest{URL: u, State: state, Transaction: value, Policy: policy, ExpiresAt: time.Unix(rec.Expires, 0)}
	ar.cookie = c.txCookie(c.TransactionCookieName(state), value)
	return ar, nil
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
		return fmt.Errorf("%s is longer than %d bytes", clip(p), maxReturnToBytes)
	case p[0] != '/':
		return fmt.Errorf("%s is not a local path starting with /", clip(p))
	case len(p) > 1 && (p[1] == '/' || p[1] == '\\'):
		return fmt.Errorf("%s would be read as another host", clip(p))
	case strings.ContainsRune(p, '\\'):
		return fmt.Errorf("%s contains a backslash", clip(p))
	case strings.ContainsRune(p, '#'):
		return fmt.Errorf("%s contains a fragment", clip(p))
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x21 || p[i] == 0x7f {
			return fmt.Errorf("%s contains a space or control character", clip(p))
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return fmt.Errorf("%s is not a local path", clip(p))
	}
	// A percent-encoded slash or backslash right after the leading "/" is
	// decoded by some servers and proxies into "//host".
	if lp := strings.ToLower(p); strings.HasPrefix(lp, "/%2f") || strings.HasPrefix(lp, "/%5c") {
		return fmt.Errorf("%s starts with an encoded slash", clip(p))
	}
	return nil
}

var errCorruptRecord = errors.New("stepup: store record is corrupt or of an unknown version")

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
