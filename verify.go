package stepup

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"math"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Kinds of *TokenError. Each *TokenError matches ErrInvalidToken and its Kind.
var (
	ErrTokenMalformed       = errors.New("stepup: token malformed")
	ErrTokenAlgorithm       = errors.New("stepup: token signing algorithm not allowed")
	ErrTokenSignature       = errors.New("stepup: token signature invalid")
	ErrTokenUnknownKey      = errors.New("stepup: token signed by an unknown key")
	ErrTokenIssuer          = errors.New("stepup: token issuer mismatch")
	ErrTokenAudience        = errors.New("stepup: token audience mismatch")
	ErrTokenAuthorizedParty = errors.New("stepup: token authorized party (azp) mismatch")
	ErrTokenSubject         = errors.New("stepup: token subject missing")
	ErrTokenIssuedAt        = errors.New("stepup: token issued-at (iat) missing or in the future")
	ErrTokenExpired         = errors.New("stepup: token expired")
	ErrTokenNotYetValid     = errors.New("stepup: token not yet valid (nbf)")
	ErrTokenNonce           = errors.New("stepup: token nonce mismatch")
	ErrTokenAuthTime        = errors.New("stepup: token auth_time missing or too old")
	ErrTokenType            = errors.New("stepup: token type (typ) not acceptable")
)

// TokenError reports why an ID or access token was rejected. It matches
// ErrInvalidToken and its Kind (one of the ErrToken... sentinels). Its
// message never contains token content, so it is safe to log.
type TokenError struct {
	Kind   error  // an ErrToken... sentinel
	Claim  string // the claim or header parameter at fault, if any
	Detail string // what was wrong, without token content
	Err    error  // the underlying cause, if any
}

func (e *TokenError) Error() string {
	var b strings.Builder
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	} else {
		b.WriteString(ErrInvalidToken.Error())
	}
	if e.Claim != "" {
		b.WriteString(" (")
		b.WriteString(e.Claim)
		b.WriteString(")")
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Is makes a *TokenError match ErrInvalidToken and its Kind.
func (e *TokenError) Is(target error) bool {
	return target == ErrInvalidToken || (e.Kind != nil && target == e.Kind)
}

func (e *TokenError) Unwrap() error { return e.Err }

func tokenErr(kind error, claim, detail string) *TokenError {
	return &TokenError{Kind: kind, Claim: claim, Detail: detail}
}

// maxTokenBytes bounds the size of a token we look at.
const maxTokenBytes = 64 << 10

// IDToken is a verified OpenID Connect ID token.
type IDToken struct {
	Issuer          string
	Subject         string
	Audience        []string
	AuthorizedParty string // azp
	IssuedAt        time.Time
	Expiry          time.Time
	AuthTime        time.Time // zero when absent
	Nonce           string
	SessionID       string // sid
	ACR             string
	AMR             []string
	OrgID           string
	// Claims holds every claim, decoded as encoding/json decodes into any.
	Claims map[string]any
	// Raw is the token as received.
	Raw string
}

// Authentication returns the authentication evidence the token reports.
func (t *IDToken) Authentication() Authentication {
	return Authentication{ACR: t.ACR, AMR: t.AMR, AuthTime: t.AuthTime}
}

// idTokenConfig configures an idTokenVerifier.
type idTokenConfig struct {
	Issuer   string // exact expected iss, e.g. "https://tenant.auth0.com/"
	ClientID string
	// ClientSecret is the HS256 key; HS256 is accepted only when it is set
	// AND listed in Algorithms.
	ClientSecret string
	// Algorithms accepted in the header; nil means RS256 and PS256.
	Algorithms []string
	Keys       *keySet
	Now        func() time.Time
	Leeway     time.Duration
}

type idTokenVerifier struct {
	issuer   string
	clientID string
	secret   []byte
	algs     []string
	keys     *keySet
	now      func() time.Time
	leeway   time.Duration
}

// idTokenCheck is what one verification expects beyond the configuration.
type idTokenCheck struct {
	// Nonce is the nonce sent with the authorization request. "" means the
	// nonce is not checked (refresh and CIBA ID tokens carry none).
	Nonce string
	// MaxAge was sent with the authorization request when CheckMaxAge is
	// true; auth_time is then required and must be within MaxAge + leeway.
	MaxAge      time.Duration
	CheckMaxAge bool
}

func newIDTokenVerifier(cfg idTokenConfig) *idTokenVerifier {
	v := &idTokenVerifier{
		issuer:   cfg.Issuer,
		clientID: cfg.ClientID,
		keys:     cfg.Keys,
		now:      cfg.Now,
		leeway:   cfg.Leeway,
	}
	if v.now == nil {
		v.now = time.Now
	}
	algs := cfg.Algorithms
	if algs == nil {
		algs = []string{"RS256", "PS256"}
	}
	for _, a := range algs {
		switch a {
		case "HS256":
			if cfg.ClientSecret == "" {
				continue
			}
			v.secret = []byte(cfg.ClientSecret)
		case "none", "":
			continue
		}
		v.algs = append(v.algs, a)
	}
	return v
}

// joseHeader is the part of a JWS header we read.
type joseHeader struct {
	Alg, Kid, Typ string
}

// splitJWS splits a compact JWS into its three parts and decodes the header.
func splitJWS(raw string) (h joseHeader, headerB64, payloadB64, sigB64 string, err error) {
	if len(raw) > maxTokenBytes {
		return h, "", "", "", tokenErr(ErrTokenMalformed, "", "token too large")
	}
	i := strings.IndexByte(raw, '.')
	if i < 0 {
		return h, "", "", "", tokenErr(ErrTokenMalformed, "", "not a compact JWS")
	}
	j := strings.IndexByte(raw[i+1:], '.')
	if j < 0 {
		return h, "", "", "", tokenErr(ErrTokenMalformed, "", "not a compact JWS")
	}
	j += i + 1
	if strings.IndexByte(raw[j+1:], '.') >= 0 {
		return h, "", "", "", tokenErr(ErrTokenMalformed, "", "not a compact JWS (encrypted tokens are not supported)")
	}
	headerB64, payloadB64, sigB64 = raw[:i], raw[i+1:j], raw[j+1:]
	hb, err := base64.RawURLEncoding.DecodeString(headerB64)
	if err != nil {
		return h, "", "", "", &TokenError{Kind: ErrTokenMalformed, Claim: "header", Detail: "bad base64url", Err: err}
	}
	h, hasCrit, err := decodeJOSEHeader(unsafe.String(unsafe.SliceData(hb), len(hb)))
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) {
			return h, "", "", "", te
		}
		return h, "", "", "", &TokenError{Kind: ErrTokenMalformed, Claim: "header", Detail: "not a JSON object", Err: err}
	}
	if hasCrit {
		return h, "", "", "", tokenErr(ErrTokenMalformed, "crit", "critical header extensions are not supported")
	}
	if h.Alg == "" {
		return h, "", "", "", tokenErr(ErrTokenAlgorithm, "alg", "missing")
	}
	if strings.EqualFold(h.Alg, "none") {
		return h, "", "", "", tokenErr(ErrTokenAlgorithm, "alg", `"none" is never accepted`)
	}
	return h, headerB64, payloadB64, sigB64, nil
}

func algAllowed(algs []string, alg string) bool {
	for _, a := range algs {
		if a == alg {
			return true
		}
	}
	return false
}

// verify checks raw's signature and claims and returns the token.
// Failures are *TokenError (matching ErrInvalidToken); a key set that cannot
// be fetched gives an error matching ErrTenantUnavailable.
func (v *idTokenVerifier) verify(ctx context.Context, raw string, want idTokenCheck) (*IDToken, error) {
	h, _, _, _, err := splitJWS(raw)
	if err != nil {
		return nil, err
	}
	if !algAllowed(v.algs, h.Alg) {
		return nil, tokenErr(ErrTokenAlgorithm, "alg", "algorithm not in the allowed list")
	}
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") {
		return nil, tokenErr(ErrTokenType, "typ", "an ID token must have typ JWT or none")
	}
	payload, err := v.verifySignature(ctx, raw, h)
	if err != nil {
		return nil, err
	}
	claims, err := decodeClaims(payload)
	if err != nil {
		return nil, err
	}
	return v.checkClaims(raw, claims, want)
}

func (v *idTokenVerifier) verifySignature(ctx context.Context, raw string, h joseHeader) ([]byte, error) {
	alg := jwa.SignatureAlgorithm(h.Alg)
	buf := []byte(raw)
	if h.Alg == "HS256" {
		payload, err := jws.Verify(buf, jws.WithKey(alg, v.secret))
		if err != nil {
			return nil, &TokenError{Kind: ErrTokenSignature, Detail: "HS256 signature does not verify with the client secret", Err: err}
		}
		return payload, nil
	}
	if v.keys == nil {
		return nil, tokenErr(ErrTokenUnknownKey, "kid", "no key set configured")
	}
	keys, err := v.keys.candidates(ctx, h.Kid, h.Alg)
	if err != nil {
		return nil, err
	}
	var lastErr error
	tried := 0
	for _, key := range keys {
		if !key.acceptsAlg(h.Alg) {
			continue
		}
		tried++
		payload, err := jws.Verify(buf, jws.WithKey(alg, key.key))
		if err == nil {
			return payload, nil
		}
		lastErr = err
	}
	if tried == 0 {
		return nil, tokenErr(ErrTokenUnknownKey, "kid", "no key in the JWKS matches the token's kid and alg")
	}
	return nil, &TokenError{Kind: ErrTokenSignature, Detail: "signature does not verify", Err: lastErr}
}

// decodeClaims decodes a JWT payload: one JSON object. The claims share
// payload's memory: payload must not change afterwards.
func decodeClaims(payload []byte) (map[string]any, error) {
	claims, err := decodeJSONObject(unsafe.String(unsafe.SliceData(payload), len(payload)))
	if err != nil {
		return nil, &TokenError{Kind: ErrTokenMalformed, Claim: "payload", Detail: "not a valid JSON object", Err: err}
	}
	return claims, nil
}

func (v *idTokenVerifier) checkClaims(raw string, c map[string]any, want idTokenCheck) (*IDToken, error) {
	t := &IDToken{Claims: c, Raw: raw}
	var err error
	var ok bool
	now := v.now()

	if t.Issuer, err = issuerClaim(c, v.issuer); err != nil {
		return nil, err
	}
	if t.Audience, err = audienceClaimWith(c, v.clientID, "audience missing or does not contain the client id"); err != nil {
		return nil, err
	}
	if t.AuthorizedParty, ok, err = stringClaim(c, "azp"); err != nil {
		return nil, err
	}
	if len(t.Audience) > 1 && !ok {
		return nil, tokenErr(ErrTokenAuthorizedParty, "azp", "azp required when aud has several values")
	}
	if ok && t.AuthorizedParty != v.clientID {
		return nil, tokenErr(ErrTokenAuthorizedParty, "azp", "azp is not the client id")
	}
	if err := checkTimes(c, now, v.leeway, &t.IssuedAt, &t.Expiry, true); err != nil {
		return nil, err
	}
	if t.Subject, err = subjectClaim(c); err != nil {
		return nil, err
	}
	if t.Nonce, ok, err = stringClaim(c, "nonce"); err != nil {
		return nil, err
	}
	if want.Nonce != "" && (!ok || subtle.ConstantTimeCompare([]byte(t.Nonce), []byte(want.Nonce)) != 1) {
		return nil, tokenErr(ErrTokenNonce, "nonce", "nonce missing or not the one sent")
	}
	if t.AuthTime, ok, err = timeClaim(c, "auth_time"); err != nil {
		return nil, err
	}
	if want.CheckMaxAge {
		if !ok {
			return nil, tokenErr(ErrTokenAuthTime, "auth_time", "auth_time required when max_age was sent")
		}
		if now.Sub(t.AuthTime) > want.MaxAge+v.leeway {
			return nil, tokenErr(ErrTokenAuthTime, "auth_time", "authentication older than max_age")
		}
	}
	if ok && t.AuthTime.After(now.Add(v.leeway)) {
		return nil, tokenErr(ErrTokenAuthTime, "auth_time", "auth_time in the future")
	}
	if t.SessionID, _, err = stringClaim(c, "sid"); err != nil {
		return nil, err
	}
	if t.ACR, _, err = stringClaim(c, "acr"); err != nil {
		return nil, err
	}
	if t.AMR, _, err = stringsClaim(c, "amr"); err != nil {
		return nil, err
	}
	if t.OrgID, _, err = stringClaim(c, "org_id"); err != nil {
		return nil, err
	}
	return t, nil
}

// issuerClaim returns iss, which must be exactly issuer.
func issuerClaim(c map[string]any, issuer string) (string, error) {
	iss, _, err := stringClaim(c, "iss")
	if err != nil {
		return "", err
	}
	if iss != issuer {
		return "", tokenErr(ErrTokenIssuer, "iss", "issuer missing or not the tenant's")
	}
	return iss, nil
}

// audienceClaimWith returns aud, which must contain want; detail says what
// want is when it does not.
func audienceClaimWith(c map[string]any, want, detail string) ([]string, error) {
	aud, err := audienceClaim(c)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(aud, want) {
		return nil, tokenErr(ErrTokenAudience, "aud", detail)
	}
	return aud, nil
}

// subjectClaim returns sub, which must be a non-empty string.
func subjectClaim(c map[string]any) (string, error) {
	sub, _, err := stringClaim(c, "sub")
	if err != nil {
		return "", err
	}
	if sub == "" {
		return "", tokenErr(ErrTokenSubject, "sub", "sub missing or empty")
	}
	return sub, nil
}

// checkTimes checks exp (required), iat (required when iatRequired) and nbf
// (optional) against now with leeway.
func checkTimes(c map[string]any, now time.Time, leeway time.Duration, iat, exp *time.Time, iatRequired bool) error {
	var ok bool
	var err error
	if *exp, ok, err = timeClaim(c, "exp"); err != nil {
		return err
	}
	if !ok {
		return tokenErr(ErrTokenExpired, "exp", "exp missing")
	}
	if !now.Before(exp.Add(leeway)) {
		return tokenErr(ErrTokenExpired, "exp", "token expired")
	}
	if *iat, ok, err = timeClaim(c, "iat"); err != nil {
		return err
	}
	if !ok && iatRequired {
		return tokenErr(ErrTokenIssuedAt, "iat", "iat missing")
	}
	if ok && iat.After(now.Add(leeway)) {
		return tokenErr(ErrTokenIssuedAt, "iat", "issued in the future")
	}
	nbf, ok, err := timeClaim(c, "nbf")
	if err != nil {
		return err
	}
	if ok && nbf.After(now.Add(leeway)) {
		return tokenErr(ErrTokenNotYetValid, "nbf", "not valid yet")
	}
	return nil
}

// stringClaim returns claim name as a string; absent is ("", false, nil), a
// value of another type is ErrTokenMalformed.
func stringClaim(c map[string]any, name string) (string, bool, error) {
	v, ok := c[name]
	if !ok || v == nil {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, tokenErr(ErrTokenMalformed, name, "must be a string")
	}
	return s, true, nil
}

// stringsClaim returns claim name as an array of strings.
func stringsClaim(c map[string]any, name string) ([]string, bool, error) {
	v, ok := c[name]
	if !ok || v == nil {
		return nil, false, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, false, tokenErr(ErrTokenMalformed, name, "must be an array of strings")
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, false, tokenErr(ErrTokenMalformed, name, "must be an array of strings")
		}
		out[i] = s
	}
	return out, true, nil
}

// audienceClaim returns aud, a string or an array of strings.
func audienceClaim(c map[string]any) ([]string, error) {
	switch v := c["aud"].(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out, _, err := stringsClaim(c, "aud")
		return out, err
	default:
		return nil, tokenErr(ErrTokenMalformed, "aud", "must be a string or an array of strings")
	}
}

// timeClaim returns a NumericDate claim.
func timeClaim(c map[string]any, name string) (time.Time, bool, error) {
	v, ok := c[name]
	if !ok || v == nil {
		return time.Time{}, false, nil
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, false, tokenErr(ErrTokenMalformed, name, "must be a number of seconds since 1970")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}
