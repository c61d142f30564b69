package auth0test

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"net/http"
	"strings"
	"time"
)

// JWKSCacheControl is the Cache-Control of /.well-known/jwks.json.
const JWKSCacheControl = "public, max-age=300"

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
	cert []byte // self-signed certificate (DER), published as x5c like Auth0's
}

func newSigningKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("auth0test: generate signing key: %w", err)
	}
	kid := randomToken(16)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "auth0test signing key " + kid},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, fmt.Errorf("auth0test: signing key certificate: %w", err)
	}
	return &signingKey{kid: kid, priv: priv, cert: cert}, nil
}

func (k *signingKey) jwk() map[string]any {
	thumb := sha1.Sum(k.cert)
	return map[string]any{
		"kty": "RSA",
		"use": "sig",
		"alg": "RS256",
		"kid": k.kid,
		"n":   b64(k.priv.N.Bytes()),
		"e":   b64(big.NewInt(int64(k.priv.E)).Bytes()),
		"x5c": []string{base64.StdEncoding.EncodeToString(k.cert)},
		"x5t": b64(thumb[:]),
	}
}

// SigningKey describes one of the tenant's RSA keys.
type SigningKey struct {
	KID        string
	PrivateKey *rsa.PrivateKey
}

// SigningKeys returns the current signing key, the next one (published ahead of
// rotation) and the previous one (nil once revoked or before any rotation).
func (t *Tenant) SigningKeys() (current, next SigningKey, previous *SigningKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ensureNextLocked()
	current = SigningKey{t.current.kid, t.current.priv}
	next = SigningKey{t.next.kid, t.next.priv}
	if t.previous != nil {
		previous = &SigningKey{t.previous.kid, t.previous.priv}
	}
	return current, next, previous
}

// RotateKeys makes the next key the current signing key, keeps the old current key
// published as the previous key (until RevokePreviousKey) and publishes a new next key.
func (t *Tenant) RotateKeys() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ensureNextLocked()
	t.previous, t.current, t.next = t.current, t.next, nil
	t.ensureNextLocked()
}

// ensureNextLocked generates the next key if it does not exist yet.
func (t *Tenant) ensureNextLocked() {
	for t.next == nil {
		k, err := newSigningKey()
		if err != nil {
			// crypto/rand does not fail on supported platforms.
			t.cfg.Logger.Error("auth0test: generate next key", "err", err)
			continue
		}
		t.next = k
	}
}

// RevokePreviousKey removes the previous signing key from the JWKS.
func (t *Tenant) RevokePreviousKey() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.previous = nil
}

func (t *Tenant) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed")
		return
	}
	t.mu.Lock()
	t.ensureNextLocked()
	keys := []any{t.current.jwk(), t.next.jwk()}
	if t.previous != nil {
		keys = append(keys, t.previous.jwk())
	}
	t.mu.Unlock()
	// Auth0 documents no header value; its guidance is to cache the JWKS for 5
	// to 10 minutes and refetch on an unknown kid (json-web-key-sets): the
	// lower bound, so a client honouring it sees a rotation within 5 minutes.
	w.Header().Set("Cache-Control", JWKSCacheControl)
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

// Sign signs claims with the tenant's current signing key. The header and claims
// are used exactly as given, except that "alg" (default RS256) and "kid" (the
// current key's) are added when absent; a header member set to nil is left out
// (Sign(map[string]any{"kid": nil}, c) has no kid). The signature algorithm follows the
// header's alg: RS256/384/512 and PS256/384/512 sign with the RSA key; HS256/384/512
// use the PEM of the current public key as the HMAC secret (the classic
// algorithm-confusion attack); "none" yields an empty signature; any other alg is
// signed with RS256 under the header as given.
func (t *Tenant) Sign(header, claims map[string]any) string {
	t.mu.Lock()
	k := t.current
	t.mu.Unlock()
	h := copyMap(header)
	if _, ok := h["alg"]; !ok {
		h["alg"] = "RS256"
	}
	if _, ok := h["kid"]; !ok {
		h["kid"] = k.kid
	}
	return signJWT(k.priv, dropNil(h), claims)
}

// SignWith signs with key: an *rsa.PrivateKey, or a []byte / string HMAC secret.
// The header and claims are used exactly as given, except that a missing "alg" is
// defaulted (RS256 for RSA keys, HS256 for secrets) and members set to nil are
// left out. No kid is added.
func (t *Tenant) SignWith(key any, header, claims map[string]any) string {
	h := copyMap(header)
	if _, ok := h["alg"]; !ok {
		if _, isRSA := key.(*rsa.PrivateKey); isRSA {
			h["alg"] = "RS256"
		} else {
			h["alg"] = "HS256"
		}
	}
	return signJWT(key, dropNil(h), claims)
}

// copyMap copies a header; a member whose value is nil is kept as a marker that
// dropNil removes after defaults were applied (so {"kid": nil} signs without kid).
func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func dropNil(m map[string]any) map[string]any {
	for k, v := range m {
		if v == nil {
			delete(m, k)
		}
	}
	return m
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signJWT encodes and signs. It never fails: values json cannot encode are replaced
// by their fmt representation, so a negative test always gets a token.
func signJWT(key any, header, claims map[string]any) string {
	hj := mustJSON(header)
	cj := mustJSON(claims)
	input := b64(hj) + "." + b64(cj)
	alg, _ := header["alg"].(string)
	return input + "." + b64(signature(key, alg, []byte(input)))
}

func mustJSON(v map[string]any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		safe := make(map[string]any, len(v))
		for k, x := range v {
			if _, err := json.Marshal(x); err != nil {
				safe[k] = fmt.Sprint(x)
			} else {
				safe[k] = x
			}
		}
		b, _ = json.Marshal(safe)
	}
	return b
}

func signature(key any, alg string, input []byte) []byte {
	var secret []byte
	var priv *rsa.PrivateKey
	switch k := key.(type) {
	case *rsa.PrivateKey:
		priv = k
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err == nil {
			secret = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		}
	case []byte:
		secret = k
	case string:
		secret = []byte(k)
	}
	hmacWith := func(h func() hash.Hash) []byte {
		m := hmac.New(h, secret)
		m.Write(input)
		return m.Sum(nil)
	}
	rsaWith := func(h crypto.Hash, pss bool) []byte {
		if priv == nil {
			return hmacWith(sha256.New)
		}
		d := h.New()
		d.Write(input)
		var sig []byte
		var err error
		if pss {
			sig, err = rsa.SignPSS(rand.Reader, priv, h, d.Sum(nil), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, priv, h, d.Sum(nil))
		}
		if err != nil {
			return nil
		}
		return sig
	}
	switch alg {
	case "none":
		return nil
	case "HS256":
		return hmacWith(sha256.New)
	case "HS384":
		return hmacWith(sha512.New384)
	case "HS512":
		return hmacWith(sha512.New)
	case "RS384":
		return rsaWith(crypto.SHA384, false)
	case "RS512":
		return rsaWith(crypto.SHA512, false)
	case "PS256":
		return rsaWith(crypto.SHA256, true)
	case "PS384":
		return rsaWith(crypto.SHA384, true)
	case "PS512":
		return rsaWith(crypto.SHA512, true)
	default:
		return rsaWith(crypto.SHA256, false)
	}
}

var errBadToken = errors.New("auth0test: invalid token")

// verifyJWT checks a token the tenant issued (RS256 with a published key, or HS256
// with one of the applications' secrets when hsOK) and returns its header and
// claims. checkExp also checks exp against the tenant's clock.
func (t *Tenant) verifyJWT(token string, checkExp bool) (map[string]any, map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, errBadToken
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, nil, errBadToken
	}
	var header, claims map[string]any
	if json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		return nil, nil, errBadToken
	}
	input := []byte(parts[0] + "." + parts[1])
	ok := false
	switch header["alg"] {
	case "RS256":
		kid, _ := header["kid"].(string)
		t.mu.Lock()
		var pub *rsa.PublicKey
		for _, k := range []*signingKey{t.current, t.next, t.previous} {
			if k != nil && k.kid == kid { // a nil next key signed nothing
				pub = &k.priv.PublicKey
			}
		}
		t.mu.Unlock()
		if pub != nil {
			d := sha256.Sum256(input)
			ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil
		}
	case "HS256":
		aud := audiences(claims["aud"])
		t.mu.Lock()
		for _, a := range aud {
			if app, found := t.apps[a]; found && app.ClientSecret != "" {
				m := hmac.New(sha256.New, []byte(app.ClientSecret))
				m.Write(input)
				if subtle.ConstantTimeCompare(m.Sum(nil), sig) == 1 {
					ok = true
				}
			}
		}
		t.mu.Unlock()
	}
	if !ok {
		return nil, nil, errBadToken
	}
	if iss, _ := claims["iss"].(string); iss != t.Issuer() {
		return nil, nil, errBadToken
	}
	if checkExp {
		exp, isNum := claims["exp"].(float64)
		if !isNum || t.cfg.Now().After(time.Unix(int64(exp), 0)) {
			return nil, nil, errBadToken
		}
	}
	return header, claims, nil
}

func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b64(b)
}
