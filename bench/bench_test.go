package bench

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jwtmiddleware "github.com/auth0/go-jwt-middleware/v2/validator"
	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/stepupauth/stepup"
)

const (
	issuer   = "https://fabrikam.eu.auth0.com/"
	audience = "https://api.fabrikam.example/"
	kid      = "Qz1jYXlDTjdhNEVXZ0w5R1F1ZlZ1"
)

type fixture struct {
	key   *rsa.PrivateKey
	token string
	jwks  *httptest.Server
}

var (
	fixOnce sync.Once
	fix     fixture
)

// setup mints one typical Auth0 RS256 access token for a custom API (after
// an authorization-code login with openid) and serves its JWKS.
func setup(b *testing.B) *fixture {
	b.Helper()
	fixOnce.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		now := time.Now().Unix()
		header := map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}
		claims := map[string]any{
			"iss":         issuer,
			"sub":         "auth0|6571f0f5c2a1b9e0d3c4a7b2",
			"aud":         []string{audience, issuer + "userinfo"},
			"iat":         now,
			"exp":         now + 86400,
			"scope":       "openid profile email read:employees read:salaries",
			"azp":         "mK3vQbT9nX2pL7sR4wY8zA1cE5fH6jD0",
			"permissions": []string{"read:employees", "read:salaries"},
			"org_id":      "org_7Yx2Lp9QwErTy3Ui",
		}
		hb, _ := json.Marshal(header)
		cb, _ := json.Marshal(claims)
		input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
		sum := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			panic(err)
		}
		fix.key = key
		fix.token = input + "." + base64.RawURLEncoding.EncodeToString(sig)
		doc, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
		}}})
		fix.jwks = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(doc)
		}))
	})
	return &fix
}

func ourVerifier(b *testing.B, f *fixture, cacheSize int) *stepup.Verifier {
	b.Helper()
	v, err := stepup.NewVerifier(context.Background(), stepup.VerifierConfig{
		Domain:     "fabrikam.eu.auth0.com",
		Audience:   audience,
		JWKSURL:    f.jwks.URL + "/.well-known/jwks.json",
		HTTPClient: f.jwks.Client(),
		CacheSize:  cacheSize,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = v.Close() })
	if _, err := v.Verify(context.Background(), f.token); err != nil { // fetches the JWKS once
		b.Fatal(err)
	}
	return v
}

// BenchmarkAccessToken verifies the same token with every library, side by
// side in one run. Every peer checks the signature, iss, aud and exp.
func BenchmarkAccessToken(b *testing.B) {
	f := setup(b)
	ctx := context.Background()
	pub := &f.key.PublicKey

	b.Run("floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := floor(pub, f.token); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("bare-rsa", func(b *testing.B) {
		sum, sig := precomputed(f.token)
		b.ReportAllocs()
		for b.Loop() {
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("stepup", func(b *testing.B) {
		v := ourVerifier(b, f, 0)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, f.token); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("stepup-cached", func(b *testing.B) {
		v := ourVerifier(b, f, 1024)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, f.token); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("jwx-jwt.Parse", func(b *testing.B) {
		buf := []byte(f.token)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jwt.Parse(buf, jwt.WithKey(jwa.RS256, pub), jwt.WithValidate(true),
				jwt.WithIssuer(issuer), jwt.WithAudience(audience)); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("go-oidc", func(b *testing.B) {
		v := oidc.NewVerifier(issuer, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{pub}},
			&oidc.Config{ClientID: audience, SupportedSigningAlgs: []string{oidc.RS256}})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, f.token); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("go-jwt-middleware", func(b *testing.B) {
		v, err := jwtmiddleware.New(func(context.Context) (any, error) { return pub, nil },
			jwtmiddleware.RS256, issuer, []string{audience})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.ValidateToken(ctx, f.token); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("go-jose", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := goJose(pub, f.token); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("golang-jwt", func(b *testing.B) {
		p := gjwt.NewParser(gjwt.WithValidMethods([]string{"RS256"}), gjwt.WithIssuer(issuer),
			gjwt.WithAudience(audience), gjwt.WithExpirationRequired())
		keyFunc := func(*gjwt.Token) (any, error) { return pub, nil }
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Parse(f.token, keyFunc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkInterleaved alternates, op by op, the floor, our verification
// (uncached and cached) and every peer on the same token, so that load from
// other processes falls on all alike, and reports each one's median time and
// its ratio to the floor's median (a mean would be dominated by the
// preemptions of a shared machine).
func BenchmarkInterleaved(b *testing.B) { interleaved(b, true) }

// BenchmarkInterleavedFloor is BenchmarkInterleaved without the peers: the
// floor, our uncached and our cached verification only. Without the peers'
// garbage (12-18 KB per verification) the collector runs far less often.
func BenchmarkInterleavedFloor(b *testing.B) { interleaved(b, false) }

func interleaved(b *testing.B, peers bool) {
	f := setup(b)
	ctx := context.Background()
	pub := &f.key.PublicKey
	v := ourVerifier(b, f, 0)
	cached := ourVerifier(b, f, 1024)
	oidcV := oidc.NewVerifier(issuer, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{pub}},
		&oidc.Config{ClientID: audience, SupportedSigningAlgs: []string{oidc.RS256}})
	mw, err := jwtmiddleware.New(func(context.Context) (any, error) { return pub, nil },
		jwtmiddleware.RS256, issuer, []string{audience})
	if err != nil {
		b.Fatal(err)
	}
	gp := gjwt.NewParser(gjwt.WithValidMethods([]string{"RS256"}), gjwt.WithIssuer(issuer),
		gjwt.WithAudience(audience), gjwt.WithExpirationRequired())
	keyFunc := func(*gjwt.Token) (any, error) { return pub, nil }
	buf := []byte(f.token)
	sum, sig := precomputed(f.token)

	const cachedBatch = 16 // cached verifications timed together (each is ~1 µs)
	contenders := []struct {
		name string
		n    int
		fn   func() error
	}{
		{"floor", 1, func() error { return floor(pub, f.token) }},
		{"bare-rsa", 1, func() error { return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) }},
		{"stepup", 1, func() error { _, err := v.Verify(ctx, f.token); return err }},
		{"cached", cachedBatch, func() error { _, err := cached.Verify(ctx, f.token); return err }},
		{"jwx", 1, func() error {
			_, err := jwt.Parse(buf, jwt.WithKey(jwa.RS256, pub), jwt.WithValidate(true), jwt.WithIssuer(issuer), jwt.WithAudience(audience))
			return err
		}},
		{"go-oidc", 1, func() error { _, err := oidcV.Verify(ctx, f.token); return err }},
		{"go-jwt-middleware", 1, func() error { _, err := mw.ValidateToken(ctx, f.token); return err }},
		{"go-jose", 1, func() error { return goJose(pub, f.token) }},
		{"golang-jwt", 1, func() error { _, err := gp.Parse(f.token, keyFunc); return err }},
	}
	if !peers {
		contenders = contenders[:4]
	}
	times := make([][]time.Duration, len(contenders))
	round := 0
	for b.Loop() {
		// Rotate the starting point each round, so that no contender is
		// always the first after the loop's own work. The cyclic order,
		// and so each contender's neighbours, stay the same (a random
		// order each round measured the same, within a run's noise).
		round++
		for k := range contenders {
			i := (k + round) % len(contenders)
			c := contenders[i]
			t0 := time.Now()
			for k := 0; k < c.n; k++ {
				if err := c.fn(); err != nil {
					b.Fatalf("%s: %v", c.name, err)
				}
			}
			times[i] = append(times[i], time.Since(t0)/time.Duration(c.n))
		}
	}
	floor := median(times[0])
	for i, c := range contenders {
		m := median(times[i])
		b.ReportMetric(m, c.name+"-ns")
		if i > 0 {
			b.ReportMetric(m/floor, c.name+"/floor")
		}
	}
	b.ReportMetric(median(times[2])/median(times[3]), "uncached/cached")
}

// floor is the least any verifier must do, named exactly: split the token,
// base64-decode the signature, SHA-256 the signing input, and
// rsa.VerifyPKCS1v15. (It does not even decode the header or the claims.)
func floor(pub *rsa.PublicKey, raw string) error {
	j := strings.LastIndexByte(raw, '.')
	if j < 0 || strings.IndexByte(raw, '.') == j {
		return errors.New("not a JWS")
	}
	sig, err := base64.RawURLEncoding.DecodeString(raw[j+1:])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(raw[:j]))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
}

// precomputed returns the SHA-256 of raw's signing input and its decoded
// signature, for the bare rsa.VerifyPKCS1v15 shown beside the floor.
func precomputed(raw string) ([32]byte, []byte) {
	j := strings.LastIndexByte(raw, '.')
	sig, err := base64.RawURLEncoding.DecodeString(raw[j+1:])
	if err != nil {
		panic(err)
	}
	return sha256.Sum256([]byte(raw[:j])), sig
}

// goJose verifies with go-jose v4's jwt package: signature, iss, aud, exp.
func goJose(pub *rsa.PublicKey, raw string) error {
	tok, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return err
	}
	var c josejwt.Claims
	if err := tok.Claims(pub, &c); err != nil {
		return err
	}
	return c.ValidateWithLeeway(josejwt.Expected{Issuer: issuer, AnyAudience: josejwt.Audience{audience}, Time: time.Now()}, time.Minute)
}

func median(d []time.Duration) float64 {
	s := append([]time.Duration(nil), d...)
	slices.Sort(s)
	return float64(s[len(s)/2].Nanoseconds())
}
