package stepup

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// VerifierConfig configures a Verifier of access tokens, for a resource
// server (an API). Zero values mean the documented defaults.
type VerifierConfig struct {
	// Domain is the tenant's domain, e.g. "example.eu.auth0.com" or a custom
	// domain. Required unless Issuer is set.
	Domain string
	// Audience is the API's identifier; a token must list it in aud. Required.
	Audience string
	// Issuer is the exact iss expected. Default: "https://" + Domain + "/".
	Issuer string
	// JWKSURL is where the signing keys are published. Default: Issuer +
	// ".well-known/jwks.json".
	JWKSURL string
	// HTTPClient fetches the JWKS. Default: http.DefaultClient (with a 10 s
	// timeout added when the client has none).
	HTTPClient *http.Client
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Leeway absorbs clock skew in exp, nbf and iat. Default: 60 s; a
	// negative value means none.
	Leeway time.Duration
	// Algorithms lists the accepted header algs. Default: RS256 and PS256.
	// Only RSA algorithms (RS256/384/512, PS256/384/512) are supported;
	// symmetric and "none" algorithms never are.
	Algorithms []string
	// ClaimNamespace, when set, is the prefix of the claims an Action copies
	// the authentication level into, e.g. "https://stepup.example/" reads
	// "https://stepup.example/acr", ".../amr" and ".../auth_time". Auth0 does
	// not allow acr, amr and auth_time themselves in access tokens. The
	// standard claims are read when the namespaced ones are absent.
	ClaimNamespace string
	// CacheSize, when positive, enables a cache of that many verified tokens,
	// keyed by the SHA-256 of the token, each kept until its exp and dropped
	// when its signing key leaves the JWKS. A cached *AccessToken is shared by
	// every request that presents the same token: treat it as read-only.
	// Default 0: no cache.
	CacheSize int
	// ErrorHandler, when set, is called by Require's middleware after it wrote
	// its answer (401, 403 or 503), e.g. to log err. It must not write to w.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
}

// AccessToken is a verified access token.
type AccessToken struct {
	Issuer          string
	Subject         string
	Audience        []string
	AuthorizedParty string // azp, or client_id (RFC 9068)
	// Scopes are the space-separated values of the scope claim.
	Scopes []string
	// Permissions are Auth0's RBAC permissions (the permissions claim).
	Permissions []string
	Expiry      time.Time
	IssuedAt    time.Time // zero when absent
	NotBefore   time.Time // zero when absent
	OrgID       string
	// Authentication is read from acr, amr and auth_time, or from the
	// namespaced claims set by an Action (VerifierConfig.ClaimNamespace).
	Authentication Authentication

	payload string     // the decoded payload, for Claims
	arena   [16]string // backs Audience, Scopes, Permissions and AMR
}

// Claims returns every claim of the token, decoded as encoding/json decodes
// into any. It decodes the payload on each call (Verify does not build the
// map: most APIs never read it), so the map is the caller's own.
//
// It was a field before v0.x; the verification fast path keeps the
// registered claims in the token's fields instead.
func (t *AccessToken) Claims() map[string]any {
	// Verify validated the payload with the same grammar: this cannot fail.
	m, err := decodeJSONObject(t.payload)
	if err != nil {
		return nil
	}
	return m
}

// HasScope reports whether the token carries s as a scope or a permission.
func (t *AccessToken) HasScope(s string) bool {
	return slices.Contains(t.Scopes, s) || slices.Contains(t.Permissions, s)
}

// Verifier verifies access tokens issued by one tenant for one API.
type Verifier struct {
	issuer   string
	audience string
	jws      jwsVerifier
	keys     *keySet
	ownsKeys bool
	now      func() time.Time
	leeway   time.Duration
	ns       string
	cache    *tokenCache
	onError  func(http.ResponseWriter, *http.Request, error)
	names    claimNames // the namespaced authentication claims
}

// NewVerifier returns a Verifier. It does no network I/O: the JWKS is
// fetched on first use, so NewVerifier succeeds while the tenant is down
// (tokens are then refused with an error matching ErrTenantUnavailable).
// Close the Verifier to stop its background JWKS refresh.
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	v, err := newVerifier(cfg, newKeySet(cfg.JWKSURL, cfg.HTTPClient, cfg.Now))
	if err != nil {
		return nil, err
	}
	v.ownsKeys = true
	return v, nil
}

func (cfg VerifierConfig) withDefaults() (VerifierConfig, error) {
	if cfg.Issuer == "" {
		d := strings.TrimSuffix(strings.TrimPrefix(cfg.Domain, "https://"), "/")
		if d == "" {
			return cfg, fmt.Errorf("%w: VerifierConfig.Domain (or Issuer) is required, e.g. \"example.eu.auth0.com\"", ErrInvalidConfig)
		}
		if strings.ContainsAny(d, "/?#@ ") {
			return cfg, fmt.Errorf("%w: VerifierConfig.Domain %q is not a host name", ErrInvalidConfig, cfg.Domain)
		}
		cfg.Issuer = "https://" + d + "/"
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return cfg, fmt.Errorf("%w: VerifierConfig.Issuer %q must be an https URL", ErrInvalidConfig, cfg.Issuer)
	}
	if cfg.Audience == "" {
		return cfg, fmt.Errorf("%w: VerifierConfig.Audience is required: the API identifier tokens must be issued for", ErrInvalidConfig)
	}
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/jwks.json"
	}
	return cfg, nil
}

// newVerifier builds a Verifier over an existing key set (the Client's, so
// that ID and access tokens share one JWKS cache). cfg must have its
// defaults applied (Issuer, JWKSURL); the key set is not closed by the Verifier.
func newVerifier(cfg VerifierConfig, keys *keySet) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, fmt.Errorf("%w: VerifierConfig needs an Issuer (or Domain) and an Audience", ErrInvalidConfig)
	}
	v := &Verifier{
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		keys:     keys,
		now:      cfg.Now,
		leeway:   cfg.Leeway,
		ns:       cfg.ClaimNamespace,
		onError:  cfg.ErrorHandler,
	}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case v.leeway == 0:
		v.leeway = 60 * time.Second
	case v.leeway < 0:
		v.leeway = 0
	}
	algs := cfg.Algorithms
	if algs == nil {
		algs = []string{"RS256", "PS256"}
	}
	for _, a := range algs {
		if !isRSAJWSAlg(a) {
			return nil, fmt.Errorf("%w: VerifierConfig.Algorithms: %q is not supported for access tokens (use RS256, PS256...)", ErrInvalidConfig, a)
		}
	}
	v.jws = jwsVerifier{algs: slices.Clone(algs), keys: keys}
	if v.ns != "" {
		v.names = claimNames{acr: v.ns + "acr", amr: v.ns + "amr", authTime: v.ns + "auth_time"}
	}
	if cfg.CacheSize > 0 {
		v.cache = newTokenCache(cfg.CacheSize)
	}
	return v, nil
}

// Close stops the background JWKS refresh of a Verifier made by NewVerifier.
// It is safe to call more than once.
func (v *Verifier) Close() error {
	if v.ownsKeys {
		return v.keys.Close()
	}
	return nil
}

// accessTyp accepts the typ of an access token: JWT or at+jwt (RFC 9068).
func accessTyp(typ string) bool {
	return strings.EqualFold(typ, "JWT") || strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt")
}

// Verify checks an access token: its signature with the tenant's keys, typ
// (JWT or at+jwt), iss, aud, exp, nbf and iat (with leeway) and sub, and
// returns its claims. Failures are *TokenError (matching ErrInvalidToken);
// when the JWKS cannot be fetched the error matches ErrTenantUnavailable.
//
// It runs on the verification core (jwt.go): the registered claims are
// decoded straight into the token's fields and the rest of the payload is
// only validated (AccessToken.Claims builds the map on demand). About 11
// allocations per uncached verification, 9 of them crypto/rsa's; none when
// the token is cached.
func (v *Verifier) Verify(ctx context.Context, raw string) (*AccessToken, error) {
	// Go zeroes the scratch buffer on every call: most tokens take the
	// smaller one. Each size has its own frame, so that the small one's
	// call is not as deep in the stack as both.
	if len(raw) <= jwtSmallTokenBytes {
		return v.verifySmall(ctx, raw)
	}
	if len(raw) > maxTokenBytes {
		// Before the cache's hash of the token: a huge Authorization
		// header costs no copy and no hash.
		return nil, tokenErr(ErrTokenMalformed, "", "token too large")
	}
	return v.verifyLarge(ctx, raw)
}

//go:noinline
func (v *Verifier) verifySmall(ctx context.Context, raw string) (*AccessToken, error) {
	var scratch [jwtSmallStackBytes]byte
	return v.verify(ctx, raw, scratch[:])
}

//go:noinline
func (v *Verifier) verifyLarge(ctx context.Context, raw string) (*AccessToken, error) {
	var scratch [jwtStackBytes]byte
	return v.verify(ctx, raw, scratch[:])
}

// verify is Verify with a scratch buffer for verifyJWS (and the cache key).
func (v *Verifier) verify(ctx context.Context, raw string, scratch []byte) (*AccessToken, error) {
	var sum [32]byte
	if v.cache != nil {
		if len(raw) <= len(scratch) {
			sum = sha256.Sum256(scratch[:copy(scratch, raw)])
		} else {
			sum = sha256.Sum256([]byte(raw))
		}
		if tok, ok := v.cache.get(&sum, v.now(), v.keys.snap.Load()); ok {
			return tok, nil
		}
	}
	payload, key, err := v.jws.verifyJWS(ctx, raw, accessTyp, "an access token must have typ JWT or at+jwt", scratch)
	if err != nil {
		return nil, err
	}
	t := &AccessToken{payload: payload}
	var c registeredClaims
	if err := decodeClaims(payload, &c, t.arena[:0], &v.names); err != nil {
		return nil, err
	}
	if err := v.checkClaims(t, &c); err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(&sum, t, t.Expiry.Add(v.leeway), v.now(), key)
	}
	return t, nil
}

func (v *Verifier) checkClaims(t *AccessToken, c *registeredClaims) error {
	now := v.now()
	if p := c.checkIssuer(v.issuer); p != noClaimProblem {
		return p.err()
	}
	if p := c.checkAudience(v.audience, problemAudienceAPI); p != noClaimProblem {
		return p.err()
	}
	if p := c.checkTimes(now, v.leeway, false); p != noClaimProblem {
		return p.err()
	}
	if p := c.checkSubject(); p != noClaimProblem {
		return p.err()
	}
	t.Issuer, t.Subject, t.Audience = c.iss, c.sub, c.aud
	t.Expiry, t.IssuedAt, t.NotBefore = c.exp.t, c.iat.t, c.nbf.t
	t.AuthorizedParty = c.azp
	if !c.hasAzp {
		t.AuthorizedParty = c.clientID
	}
	t.Scopes, t.Permissions, t.OrgID = c.scopes, c.permissions, c.orgID
	// The namespaced claims an Action set win over the standard ones, each
	// on its own, whenever the member is present.
	a := Authentication{ACR: c.acr, AMR: c.amr, AuthTime: c.authTime.t}
	if c.hasNSACR {
		a.ACR = c.nsACR
	}
	if c.hasNSAMR {
		a.AMR = c.nsAMR
	}
	authTime := c.authTime
	if c.hasNSA {
		authTime = c.nsAuthTime
		a.AuthTime = authTime.t
	}
	// An authentication in the future would satisfy any MaxAge until the
	// token expires: refuse it, as ID tokens do.
	if authTime.ok && authTime.t.After(now.Add(v.leeway)) {
		return problemAuthTimeFuture.err()
	}
	t.Authentication = a
	return nil
}

type accessTokenKey struct{}

// AccessTokenFromContext returns the access token Require's middleware
// verified for this request.
func AccessTokenFromContext(ctx context.Context) (*AccessToken, bool) {
	t, ok := ctx.Value(accessTokenKey{}).(*AccessToken)
	return t, ok
}

// bearerToken returns the token of an "Authorization: Bearer" header, and
// whether the request carried a Bearer credential at all.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return "", len(h) > 1
	}
	scheme, tok, found := strings.Cut(h[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	if !found {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

// Require returns middleware for an API that serves a request only with a
// valid access token whose scopes (or permissions) include p.Scopes and whose
// authentication satisfies p's ACR, AMR and MaxAge:
//
//   - no Bearer token: 401 with "WWW-Authenticate: Bearer" and no error code (RFC 6750 §3.1);
//   - a bad token: 401, error="invalid_token";
//   - a missing scope: 403, error="insufficient_scope" with scope=;
//   - a valid token without the step-up: 401, error="insufficient_user_authentication"
//     with acr_values and max_age (RFC 9470);
//   - the JWKS cannot be fetched: 503 (fail closed).
//
// The verified token is in the request's context (AccessTokenFromContext).
// Error descriptions never echo token content.
func (v *Verifier) Require(p Policy) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, present := bearerToken(r)
			if !present {
				WriteChallenge(w, Challenge{Scheme: "Bearer"})
				v.failed(w, r, fmt.Errorf("%w: no Bearer access token in the request", ErrInvalidToken))
				return
			}
			tok, err := v.Verify(r.Context(), raw)
			if err != nil {
				if errors.Is(err, ErrTenantUnavailable) {
					w.Header().Set("Retry-After", "5")
					http.Error(w, "the authorization service is unavailable", http.StatusServiceUnavailable)
				} else {
					WriteChallenge(w, Challenge{Scheme: "Bearer", Error: "invalid_token", ErrorDescription: tokenErrorDescription(err)})
				}
				v.failed(w, r, err)
				return
			}
			for _, s := range p.Scopes {
				if !tok.HasScope(s) {
					WriteChallenge(w, Challenge{Scheme: "Bearer", Error: "insufficient_scope",
						ErrorDescription: "the access token lacks a required scope", Scope: p.Scopes})
					v.failed(w, r, &StepUpError{Policy: p, Reason: ReasonScopeMissing, Method: s})
					return
				}
			}
			if err := p.Check(tok.Authentication, v.now()); err != nil {
				WriteChallenge(w, StepUpChallenge(p))
				v.failed(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), accessTokenKey{}, tok)))
		})
	}
}

func (v *Verifier) failed(w http.ResponseWriter, r *http.Request, err error) {
	if v.onError != nil {
		v.onError(w, r, err)
	}
}

// tokenErrorDescription describes a token failure from its kind only, never
// from the token's content.
func tokenErrorDescription(err error) string {
	switch {
	case errors.Is(err, ErrTokenExpired):
		return "The access token expired"
	case errors.Is(err, ErrTokenAudience):
		return "The access token is not for this API"
	default:
		return "The access token is invalid"
	}
}
