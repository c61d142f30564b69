package auth0test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

const (
	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// maxAssertionLifetime bounds how far in the future a client assertion's exp
	// may be (go-auth0 uses 2 minutes; Auth0 documents no exact limit).
	maxAssertionLifetime = 5 * time.Minute
)

// authenticateAssertion checks a private_key_jwt client assertion (RFC 7523):
// signed with RS256, RS384 or PS256 by one of the application's
// ClientAssertionKeys; iss = sub = client_id; aud the tenant's issuer (or its
// token endpoint URL); exp in the future and at most 5 minutes away; a jti never
// seen before (replays are refused).
func (t *Tenant) authenticateAssertion(clientID, assertionType, assertion string) (*Application, *oauthError) {
	fail := func(why string) (*Application, *oauthError) {
		return nil, newErr(http.StatusUnauthorized, "invalid_client", "Client assertion rejected: "+why)
	}
	if assertionType != clientAssertionType {
		return fail("client_assertion_type must be " + clientAssertionType)
	}
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return fail("not a JWS")
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	var header map[string]any
	var claims struct {
		Iss, Sub, Jti string
		Aud           any
		Exp           *float64
	}
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		return fail("malformed JWT")
	}
	if clientID == "" {
		clientID = claims.Sub
	}
	if claims.Iss != clientID || claims.Sub != clientID {
		return fail("iss and sub must be the client_id")
	}
	t.mu.Lock()
	app, ok := t.apps[clientID]
	t.mu.Unlock()
	if !ok {
		return nil, newErr(http.StatusUnauthorized, "invalid_client", "Unknown client.")
	}
	if app.TokenEndpointAuthMethod != "private_key_jwt" {
		return nil, newErr(http.StatusUnauthorized, "invalid_client",
			"Client authentication failed: the application uses "+app.TokenEndpointAuthMethod+", not private_key_jwt")
	}
	alg, _ := header["alg"].(string)
	var h crypto.Hash
	pss := false
	switch alg {
	case "RS256":
		h = crypto.SHA256
	case "RS384":
		h = crypto.SHA384
	case "PS256":
		h, pss = crypto.SHA256, true
	default:
		return fail("alg must be RS256, RS384 or PS256")
	}
	input := []byte(parts[0] + "." + parts[1])
	var digest []byte
	if h == crypto.SHA384 {
		d := sha512.Sum384(input)
		digest = d[:]
	} else {
		d := sha256.Sum256(input)
		digest = d[:]
	}
	verified := false
	for _, k := range app.ClientAssertionKeys {
		var err error
		if pss {
			err = rsa.VerifyPSS(k, h, digest, sig, nil)
		} else {
			err = rsa.VerifyPKCS1v15(k, h, digest, sig)
		}
		if err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return fail("invalid signature")
	}
	if aud := audiences(claims.Aud); !slices.Contains(aud, t.Issuer()) && !slices.Contains(aud, t.Issuer()+"oauth/token") {
		return fail("aud must be " + t.Issuer())
	}
	now := t.cfg.Now()
	if claims.Exp == nil {
		return fail("exp is required")
	}
	exp := time.Unix(int64(*claims.Exp), 0)
	if !now.Before(exp) {
		return fail("expired")
	}
	if exp.After(now.Add(maxAssertionLifetime)) {
		return fail("exp is too far in the future")
	}
	if claims.Jti == "" {
		return fail("jti is required")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	key := clientID + "\x00" + claims.Jti
	if _, seen := t.usedJTIs[key]; seen {
		return fail("jti already used")
	}
	t.usedJTIs[key] = exp
	return app, nil
}
