package stepup

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testKey is an RSA signing key with its kid.
type testKey struct {
	kid  string
	priv *rsa.PrivateKey
}

var (
	testKeysOnce sync.Once
	testKeyPool  []*testKey
)

// testKeys returns n RSA-2048 keys, generated once per test binary.
func testKeys(t testing.TB, n int) []*testKey {
	t.Helper()
	testKeysOnce.Do(func() {
		for i := 0; i < 3; i++ {
			priv, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			testKeyPool = append(testKeyPool, &testKey{kid: "key-" + string(rune('a'+i)), priv: priv})
		}
	})
	if n > len(testKeyPool) {
		t.Fatalf("testKeys: at most %d keys", len(testKeyPool))
	}
	return testKeyPool[:n]
}

// jwkJSON returns the public JWK of k; alg "" omits alg.
func (k *testKey) jwkJSON(alg string) map[string]any {
	m := map[string]any{
		"kty": "RSA",
		"use": "sig",
		"n":   base64.RawURLEncoding.EncodeToString(k.priv.N.Bytes()),
		"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.priv.E)).Bytes()),
	}
	if k.kid != "" {
		m["kid"] = k.kid
	}
	if alg != "" {
		m["alg"] = alg
	}
	return m
}

// jwksServer is a TLS JWKS endpoint whose keys and health tests change, and
// which counts its requests.
type jwksServer struct {
	*httptest.Server
	mu     sync.Mutex
	doc    []byte
	status int
	hits   atomic.Int64
}

func newJWKSServer(t testing.TB, keys ...*testKey) *jwksServer {
	t.Helper()
	s := &jwksServer{status: http.StatusOK}
	s.setKeys(keys...)
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		doc, status := s.doc, s.status
		s.mu.Unlock()
		if status != http.StatusOK {
			http.Error(w, "down", status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(keys ...*testKey) {
	var list []any
	for _, k := range keys {
		list = append(list, k.jwkJSON("RS256"))
	}
	s.setDoc(map[string]any{"keys": list})
}

func (s *jwksServer) setDoc(doc any) {
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	s.doc = b
	s.mu.Unlock()
}

func (s *jwksServer) setStatus(code int) {
	s.mu.Lock()
	s.status = code
	s.mu.Unlock()
}

func (s *jwksServer) jwksURL() string { return s.URL + "/.well-known/jwks.json" }

// testClock is a clock tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// signJWT builds a compact JWS from header and claims. alg picks the
// signature: RS256/PS256 with key, HS256 with secret, "none" or "" none.
func signJWT(t testing.TB, header, claims map[string]any, key *rsa.PrivateKey, secret []byte) string {
	t.Helper()
	hb, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return signRaw(t, hb, cb, header["alg"], key, secret)
}

func signRaw(t testing.TB, header, payload []byte, alg any, key *rsa.PrivateKey, secret []byte) string {
	t.Helper()
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	switch alg {
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, sum[:], nil)
	case "HS256":
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}
