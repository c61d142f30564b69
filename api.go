package stepup

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unsafe"
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
	// Claims holds every claim, decoded as encoding/json decodes into any.
	Claims map[string]any
}

// HasScope reports whether the token carries s as a scope or a permission.
func (t *AccessToken) HasScope(s string) bool {
	return slices.Contains(t.Scopes, s) || slices.Contains(t.Permissions, s)
}

// Verifier verifies access tokens issued by one tenant for one API.
type Verifier struct {
	issuer   string
	audience string
	algs     []string
	keys     *keySet
	ownsKeys bool
	now      func() time.Time
	leeway   time.Duration
	ns       string
	cache    *tokenCache
	onError  func(http.ResponseWriter, *http.Request, error)
	nsACR    string
	nsAMR    string
	nsAuthAt string
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
	v.algs = cfg.Algorithms
	if v.algs == nil {
		v.algs = []string{"RS256", "PS256"}
	}
	for _, a := range v.algs {
		if _, _, ok := rsaAlg(a); !ok {
			return nil, fmt.Errorf("%w: VerifierConfig.Algorithms: %q is not supported for access tokens (use RS256, PS256...)", ErrInvalidConfig, a)
		}
	}
	if v.ns != "" {
		v.nsACR, v.nsAMR, v.nsAuthAt = v.ns+"acr", v.ns+"amr", v.ns+"auth_time"
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

// rsaAlg returns the hash and padding of an RSA JWS algorithm.
func rsaAlg(alg string) (crypto.Hash, bool, bool) {
	switch alg {
	case "RS256":
		return crypto.SHA256, false, true
	case "RS384":
		return crypto.SHA384, false, true
	case "RS512":
		return crypto.SHA512, false, true
	case "PS256":
		return crypto.SHA256, true, true
	case "PS384":
		return crypto.SHA384, true, true
	case "PS512":
		return crypto.SHA512, true, true
	}
	return 0, false, false
}

// Verify checks an access token: its signature with the tenant's keys, typ
// (JWT or at+jwt), iss, aud, exp, nbf and iat (with leeway) and sub, and
// returns its claims. Failures are *TokenError (matching ErrInvalidToken);
// when the JWKS cannot be fetched the error matches ErrTenantUnavailable.
func (v *Verifier) Verify(ctx context.Context, raw string) (*AccessToken, error) {
	var sum [32]byte
	if v.cache != nil {
		sum = sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
		if tok, ok := v.cache.get(&sum, v.now(), v.keys.snap.Load()); ok {
			return tok, nil
		}
	}
	h, headerB64, payloadB64, sigB64, err := splitJWS(raw)
	if err != nil {
		return nil, err
	}
	if !algAllowed(v.algs, h.Alg) {
		return nil, tokenErr(ErrTokenAlgorithm, "alg", "algorithm not in the allowed list")
	}
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") && !strings.EqualFold(h.Typ, "at+jwt") && !strings.EqualFold(h.Typ, "application/at+jwt") {
		return nil, tokenErr(ErrTokenType, "typ", "an access token must have typ JWT or at+jwt")
	}
	key, err := v.verifySignature(ctx, h, raw[:len(headerB64)+1+len(payloadB64)], sigB64)
	if err != nil {
		return nil, err
	}
	payload, err := base64.RawURLEncoding.DecodeString(payloadB64)
	if err != nil {
		return nil, &TokenError{Kind: ErrTokenMalformed, Claim: "payload", Detail: "bad base64url", Err: err}
	}
	claims, err := decodeClaims(payload)
	if err != nil {
		return nil, err
	}
	tok, err := v.checkClaims(claims)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(&sum, tok, tok.Expiry.Add(v.leeway), v.now(), key)
	}
	return tok, nil
}

// verifySignature verifies sigB64 over signingInput with the candidate keys,
// using crypto/rsa directly (the JWKS keys were parsed by jwx).
func (v *Verifier) verifySignature(ctx context.Context, h joseHeader, signingInput, sigB64 string) (*verificationKey, error) {
	hash, pss, _ := rsaAlg(h.Alg)
	var sigBuf [1024]byte
	if base64.RawURLEncoding.DecodedLen(len(sigB64)) > len(sigBuf) {
		return nil, tokenErr(ErrTokenSignature, "", "signature too long")
	}
	sig, err := base64.RawURLEncoding.AppendDecode(sigBuf[:0], unsafe.Slice(unsafe.StringData(sigB64), len(sigB64)))
	if err != nil {
		return nil, &TokenError{Kind: ErrTokenMalformed, Claim: "signature", Detail: "bad base64url", Err: err}
	}
	var digest []byte
	in := unsafe.Slice(unsafe.StringData(signingInput), len(signingInput))
	switch hash {
	case crypto.SHA256:
		d := sha256.Sum256(in)
		digest = d[:]
	default:
		hh := hash.New()
		hh.Write(in)
		digest = hh.Sum(nil)
	}
	keys, err := v.keys.candidates(ctx, h.Kid, h.Alg)
	if err != nil {
		return nil, err
	}
	tried := 0
	for _, key := range keys {
		pub, ok := key.key.(*rsa.PublicKey)
		if !ok || !key.acceptsAlg(h.Alg) {
			continue
		}
		tried++
		if pss {
			err = rsa.VerifyPSS(pub, hash, digest, sig, nil)
		} else {
			err = rsa.VerifyPKCS1v15(pub, hash, digest, sig)
		}
		if err == nil {
			return key, nil
		}
	}
	if tried == 0 {
		return nil, tokenErr(ErrTokenUnknownKey, "kid", "no key in the JWKS matches the token's kid and alg")
	}
	return nil, tokenErr(ErrTokenSignature, "", "signature does not verify")
}

func (v *Verifier) checkClaims(c map[string]any) (*AccessToken, error) {
	t := &AccessToken{Claims: c}
	now := v.now()
	var err error
	var ok bool
	if t.Issuer, err = issuerClaim(c, v.issuer); err != nil {
		return nil, err
	}
	if t.Audience, err = audienceClaimWith(c, v.audience, "audience missing or does not contain this API"); err != nil {
		return nil, err
	}
	if err := checkTimes(c, now, v.leeway, &t.IssuedAt, &t.Expiry, false); err != nil {
		return nil, err
	}
	if t.NotBefore, _, err = timeClaim(c, "nbf"); err != nil {
		return nil, err
	}
	if t.Subject, err = subjectClaim(c); err != nil {
		return nil, err
	}
	if t.AuthorizedParty, ok, err = stringClaim(c, "azp"); err != nil {
		return nil, err
	}
	if !ok {
		if t.AuthorizedParty, _, err = stringClaim(c, "client_id"); err != nil {
			return nil, err
		}
	}
	switch s := c["scope"].(type) {
	case nil:
	case string:
		t.Scopes = strings.Fields(s)
	case []any:
		if t.Scopes, _, err = stringsClaim(c, "scope"); err != nil {
			return nil, err
		}
	default:
		return nil, tokenErr(ErrTokenMalformed, "scope", "must be a space-separated string")
	}
	if t.Permissions, _, err = stringsClaim(c, "permissions"); err != nil {
		return nil, err
	}
	if t.OrgID, _, err = stringClaim(c, "org_id"); err != nil {
		return nil, err
	}
	if err := v.readAuthentication(c, &t.Authentication); err != nil {
		return nil, err
	}
	return t, nil
}

// readAuthentication reads acr, amr and auth_time, preferring the namespaced claims.
func (v *Verifier) readAuthentication(c map[string]any, a *Authentication) error {
	acrName, amrName, atName := "acr", "amr", "auth_time"
	if v.ns != "" {
		if _, ok := c[v.nsACR]; ok {
			acrName = v.nsACR
		}
		if _, ok := c[v.nsAMR]; ok {
			amrName = v.nsAMR
		}
		if _, ok := c[v.nsAuthAt]; ok {
			atName = v.nsAuthAt
		}
	}
	var err error
	if a.ACR, _, err = stringClaim(c, acrName); err != nil {
		return err
	}
	if a.AMR, _, err = stringsClaim(c, amrName); err != nil {
		return err
	}
	if a.AuthTime, _, err = timeClaim(c, atName); err != nil {
		return err
	}
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
