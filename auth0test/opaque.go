package auth0test

import "time"

// opaqueToken is an access token issued without an audience: Auth0 then issues
// a token that is not a JWT, meant for /userinfo only. The tenant keeps its
// claims until it expires.
type opaqueToken struct {
	claims  map[string]any
	expires time.Time
}

func (t *Tenant) newOpaqueToken(claims map[string]any, expires time.Time) string {
	v := randomToken(32) // base64url without dots: never parses as a JWS
	t.mu.Lock()
	defer t.mu.Unlock()
	t.opaque[v] = &opaqueToken{claims: claims, expires: expires}
	return v
}

// opaqueClaims returns the claims of a live opaque access token.
func (t *Tenant) opaqueClaims(v string) (map[string]any, bool) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.opaque[v]
	if !ok || now.After(o.expires) {
		return nil, false
	}
	return o.claims, true
}

// IsOpaque reports whether an access token of this tenant is opaque (issued
// without an audience) rather than a JWT.
func (t *Tenant) IsOpaque(accessToken string) bool {
	_, ok := t.opaqueClaims(accessToken)
	return ok
}
