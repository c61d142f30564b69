package stepup

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4,
// validated as §2.6 says), on the verification core shared with ID tokens.

// ErrTokenLogoutEvent reports a token that does not declare itself a
// back-channel logout token: its events claim is missing, is not a JSON
// object, or lacks the backchannel-logout member, or that member is not an
// object. It is a Kind of *TokenError (matching ErrInvalidToken).
var ErrTokenLogoutEvent = errors.New("stepup: not a back-channel logout token (events)")

// backchannelLogoutEvent is the member of events that makes a JWT a logout
// token (§2.4).
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutTokenMaxAge bounds the age (now - iat) of a logout token that has no
// exp: the spec makes exp required, Auth0 sends it, and without it a stolen
// token would stay usable for as long as the caller remembers its jti.
const logoutTokenMaxAge = 5 * time.Minute

// LogoutToken is a verified back-channel logout token.
type LogoutToken struct {
	Issuer string
	// Subject (sub) and SessionID (sid): at least one is set. With SessionID,
	// that session ends; with Subject alone, every session of the user.
	Subject   string
	SessionID string
	// JTI identifies the token: the caller refuses a JTI it has seen before
	// (single use across replicas, with the store), remembering it until
	// Expiry plus the leeway.
	JTI      string
	IssuedAt time.Time
	// Expiry is when the token stops being accepted: its exp, or IssuedAt
	// plus 5 minutes when it has none.
	Expiry time.Time
}

// logoutTyp accepts the typ of a logout token: logout+jwt (§2.4 recommends
// explicit typing), its media type, JWT, or none.
func logoutTyp(typ string) bool {
	return strings.EqualFold(typ, "logout+jwt") || strings.EqualFold(typ, "application/logout+jwt") || strings.EqualFold(typ, "JWT")
}

// verifyLogoutToken verifies a back-channel logout token (the logout_token
// form field) as OpenID Connect Back-Channel Logout 1.0 §2.6 says: signed by
// the tenant's keys through the Client's JWKS cache (an unknown kid is
// refetched as for ID tokens) with an ID-token algorithm (never none); iss
// exactly the tenant's; aud containing the client id (and azp, when present,
// the client id); iat present and not in the future (with leeway); exp, when
// present, not passed; typ logout+jwt, JWT or none; events a JSON object
// whose member http://schemas.openid.net/event/backchannel-logout is a JSON
// object; sid or sub or both; no nonce; a jti. Replay (a jti seen before)
// is the caller's check, with the store. Failures are *TokenError (matching
// ErrInvalidToken); a JWKS that cannot be fetched gives an error matching
// ErrTenantUnavailable.
func (c *Client) verifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error) {
	return c.idv.verifyLogout(ctx, raw)
}

func (v *idTokenVerifier) verifyLogout(ctx context.Context, raw string) (*LogoutToken, error) {
	var scratch [jwtStackBytes]byte
	payload, _, err := v.jws.verifyJWS(ctx, raw, logoutTyp, "a logout token must have typ logout+jwt, JWT or none", scratch[:])
	if err != nil {
		return nil, err
	}
	var arena [4]string
	var c registeredClaims
	if err := decodeClaims(payload, &c, arena[:0], nil); err != nil {
		return nil, err
	}
	now := v.now()
	if p := c.checkIssuer(v.issuer); p != noClaimProblem {
		return nil, p.err()
	}
	if p := c.checkAudience(v.clientID, problemAudienceClient); p != noClaimProblem {
		return nil, p.err()
	}
	if c.hasAzp && c.azp != v.clientID {
		return nil, tokenErr(ErrTokenAuthorizedParty, "azp", "azp is not the client id")
	}
	if p := c.checkIssuedAt(now, v.leeway, true); p != noClaimProblem {
		return nil, p.err()
	}
	t := &LogoutToken{Issuer: c.iss, Subject: c.sub, SessionID: c.sid, JTI: c.jti, IssuedAt: c.iat.t}
	if c.exp.ok {
		if !now.Before(c.exp.t.Add(v.leeway)) {
			return nil, tokenErr(ErrTokenExpired, "exp", "token expired")
		}
		t.Expiry = c.exp.t
	} else {
		t.Expiry = c.iat.t.Add(logoutTokenMaxAge)
		if !now.Before(t.Expiry.Add(v.leeway)) {
			return nil, tokenErr(ErrTokenExpired, "iat", "a logout token without exp is accepted for 5 minutes after iat")
		}
	}
	if c.sub == "" && c.sid == "" {
		return nil, tokenErr(ErrTokenSubject, "sub", "a logout token needs sub, sid or both")
	}
	if c.hasNonce {
		return nil, tokenErr(ErrTokenNonce, "nonce", "a logout token must not contain a nonce")
	}
	if c.jti == "" {
		return nil, tokenErr(ErrTokenMalformed, "jti", "jti missing")
	}
	if err := checkLogoutEvents(&c); err != nil {
		return nil, err
	}
	return t, nil
}

// checkLogoutEvents checks the events claim (§2.4).
func checkLogoutEvents(c *registeredClaims) error {
	if !c.hasEvents {
		return tokenErr(ErrTokenLogoutEvent, "events", "events missing")
	}
	// decodeClaims validated the value; only an object decodes here.
	ev, err := decodeJSONObject(c.events)
	if err != nil {
		return tokenErr(ErrTokenLogoutEvent, "events", "events must be a JSON object")
	}
	m, ok := ev[backchannelLogoutEvent]
	if !ok {
		return tokenErr(ErrTokenLogoutEvent, "events", "events lacks the back-channel logout member")
	}
	if _, ok := m.(map[string]any); !ok {
		return tokenErr(ErrTokenLogoutEvent, "events", "the back-channel logout event must be a JSON object")
	}
	return nil
}
