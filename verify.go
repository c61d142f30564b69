package stepup

import (
	"context"
	"crypto/subtle"
	"strings"
	"time"
)

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
	// Email and Name are the email and name claims when they are strings.
	Email, Name string
	// Raw is the token as received.
	Raw string

	payload string    // the decoded payload, for Claims
	arena   [6]string // backs Audience and AMR
}

// Claims returns every claim of the token, decoded as encoding/json decodes
// into any, in a map of the caller's own (built on each call).
//
// It was a field, built for every ID token; verification now decodes the
// claims stepup reads straight into the fields above, and the map is built
// only for a caller who asks (a login hook reading custom claims).
func (t *IDToken) Claims() map[string]any {
	// verify validated the payload with the same grammar: this cannot fail.
	m, err := decodeJSONObject(t.payload)
	if err != nil {
		return nil
	}
	return m
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
	jws      jwsVerifier
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
		jws:      jwsVerifier{keys: cfg.Keys},
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
			v.jws.secret = []byte(cfg.ClientSecret)
		case "none", "":
			continue
		}
		if _, ok := lookupAlg(a); !ok {
			continue
		}
		v.jws.algs = append(v.jws.algs, a)
	}
	return v
}

// idTyp accepts the typ of an ID token: JWT (any case) or none.
func idTyp(typ string) bool { return strings.EqualFold(typ, "JWT") }

// verify checks raw's signature and claims and returns the token, on the
// verification core (jwt.go): one parse, one signature verification.
// Failures are *TokenError (matching ErrInvalidToken); a key set that cannot
// be fetched gives an error matching ErrTenantUnavailable.
func (v *idTokenVerifier) verify(ctx context.Context, raw string, want idTokenCheck) (*IDToken, error) {
	// Go zeroes the scratch buffer on every call: most tokens take the
	// smaller one.
	if len(raw) <= jwtSmallTokenBytes {
		var scratch [jwtSmallStackBytes]byte
		return v.verifyWith(ctx, raw, want, scratch[:])
	}
	var scratch [jwtStackBytes]byte
	return v.verifyWith(ctx, raw, want, scratch[:])
}

// verifyWith is verify with a scratch buffer for verifyJWS.
func (v *idTokenVerifier) verifyWith(ctx context.Context, raw string, want idTokenCheck, scratch []byte) (*IDToken, error) {
	payload, _, err := v.jws.verifyJWS(ctx, raw, idTyp, "an ID token must have typ JWT or none", scratch)
	if err != nil {
		return nil, err
	}
	t := &IDToken{Raw: raw, payload: payload}
	var c registeredClaims
	if err := decodeClaims(payload, &c, t.arena[:0], nil); err != nil {
		return nil, err
	}
	if err := v.checkClaims(t, &c, want); err != nil {
		return nil, err
	}
	return t, nil
}

func (v *idTokenVerifier) checkClaims(t *IDToken, c *registeredClaims, want idTokenCheck) error {
	now := v.now()
	if p := c.checkIssuer(v.issuer); p != noClaimProblem {
		return p.err()
	}
	if p := c.checkAudience(v.clientID, problemAudienceClient); p != noClaimProblem {
		return p.err()
	}
	if len(c.aud) > 1 && !c.hasAzp {
		return tokenErr(ErrTokenAuthorizedParty, "azp", "azp required when aud has several values")
	}
	if c.hasAzp && c.azp != v.clientID {
		return tokenErr(ErrTokenAuthorizedParty, "azp", "azp is not the client id")
	}
	if p := c.checkTimes(now, v.leeway, true); p != noClaimProblem {
		return p.err()
	}
	if p := c.checkSubject(); p != noClaimProblem {
		return p.err()
	}
	if want.Nonce != "" && (c.nonce == "" || subtle.ConstantTimeCompare([]byte(c.nonce), []byte(want.Nonce)) != 1) {
		return tokenErr(ErrTokenNonce, "nonce", "nonce missing or not the one sent")
	}
	if want.CheckMaxAge {
		if !c.authTime.ok {
			return tokenErr(ErrTokenAuthTime, "auth_time", "auth_time required when max_age was sent")
		}
		if now.Sub(c.authTime.t) > addSaturating(want.MaxAge, v.leeway) {
			return tokenErr(ErrTokenAuthTime, "auth_time", "authentication older than max_age")
		}
	}
	if c.authTime.ok && c.authTime.t.After(now.Add(v.leeway)) {
		return problemAuthTimeFuture.err()
	}
	t.Issuer, t.Subject, t.Audience, t.AuthorizedParty = c.iss, c.sub, c.aud, c.azp
	t.IssuedAt, t.Expiry, t.AuthTime = c.iat.t, c.exp.t, c.authTime.t
	t.Nonce, t.SessionID, t.ACR, t.AMR, t.OrgID = c.nonce, c.sid, c.acr, c.amr, c.orgID
	t.Email, t.Name = c.email, c.name
	return nil
}
