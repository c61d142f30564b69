package auth0test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepupauth/stepup/store/storetest"
)

// newClock returns a test clock that only moves when told to.
func newClock() *storetest.Clock {
	return storetest.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
}

const testVerifier = "dBjftJeZ4CVP-mJ92K9-1B7g2oZ-0123456789_abcdef-ghijkl"

func s256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorizeURL builds an /authorize URL for the default application; extra
// overrides (an empty value deletes the parameter).
func authorizeURL(tn *Tenant, extra map[string]string) string {
	app := DefaultApplication()
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {app.ClientID},
		"redirect_uri":          {app.CallbackURLs[0]},
		"scope":                 {"openid profile email offline_access"},
		"state":                 {"state-123"},
		"nonce":                 {"nonce-456"},
		"code_challenge":        {s256(testVerifier)},
		"code_challenge_method": {"S256"},
	}
	for k, v := range extra {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	return tn.URL() + "/authorize?" + q.Encode()
}

var alice = Credentials{Email: AliceEmail, Password: AlicePassword}

// login drives a login that must end with a code and returns it.
func login(t *testing.T, b *Browser, authURL string, c Credentials) string {
	t.Helper()
	cb, err := b.Login(context.Background(), authURL, c)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	code := cb.Query().Get("code")
	if code == "" {
		t.Fatalf("callback %s has no code (error=%q %q)", cb, cb.Query().Get("error"), cb.Query().Get("error_description"))
	}
	return code
}

// post sends a form to the tenant and decodes the JSON answer.
func post(t *testing.T, tn *Tenant, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := tn.Client().PostForm(tn.URL()+path, form)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("POST %s: status %d, body %q is not JSON: %v", path, resp.StatusCode, body, err)
		}
	}
	return resp.StatusCode, m
}

func codeForm(code string) url.Values {
	app := DefaultApplication()
	return url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {app.ClientID},
		"client_secret": {app.ClientSecret},
		"code":          {code},
		"redirect_uri":  {app.CallbackURLs[0]},
		"code_verifier": {testVerifier},
	}
}

func refreshForm(rt string) url.Values {
	app := DefaultApplication()
	return url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {app.ClientID},
		"client_secret": {app.ClientSecret},
		"refresh_token": {rt},
	}
}

// exchange redeems a code and fails the test unless it succeeds.
func exchange(t *testing.T, tn *Tenant, code string) map[string]any {
	t.Helper()
	st, m := post(t, tn, "/oauth/token", codeForm(code))
	if st != http.StatusOK {
		t.Fatalf("code exchange: status %d, body %v", st, m)
	}
	return m
}

// verifiedClaims checks a token's RS256 signature against the tenant's published
// JWKS (fetched over HTTPS, as a client would) and returns its claims.
func verifiedClaims(t *testing.T, tn *Tenant, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", token)
	}
	var hdr map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if err := json.Unmarshal(hb, &hdr); err != nil {
		t.Fatalf("header: %v", err)
	}
	resp, err := tn.Client().Get(tn.URL() + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kid, N, E string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var pub *rsa.PublicKey
	for _, k := range set.Keys {
		if k.Kid == hdr["kid"] {
			n, _ := base64.RawURLEncoding.DecodeString(k.N)
			e, _ := base64.RawURLEncoding.DecodeString(k.E)
			pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		}
	}
	if pub == nil || hdr["alg"] != "RS256" {
		t.Fatalf("no published key for header %v", hdr)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("signature: %v", err)
	}
	return claimsOf(t, token)
}

func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", token)
	}
	return segmentOf(t, parts[1])
}

func decodeJSON(resp *http.Response, v any) error {
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return nil
	}
	return json.Unmarshal(body, v)
}

func headerOf(t *testing.T, token string) map[string]any {
	t.Helper()
	return segmentOf(t, strings.Split(token, ".")[0])
}

// segmentOf decodes a JWS header or payload segment (base64url JSON object).
func segmentOf(t *testing.T, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// with returns a copy of f with the pairs of kv set (an empty value deletes
// the parameter).
func with(f url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, v := range f {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			out.Del(kv[i])
		} else {
			out.Set(kv[i], kv[i+1])
		}
	}
	return out
}

// getBody GETs a tenant path and returns the body.
func getBody(t *testing.T, tn *Tenant, path string) []byte {
	t.Helper()
	resp, err := tn.Client().Get(tn.URL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return body
}

// postNoRedirect posts a form to a tenant path without following a redirect;
// the answer's body is closed.
func postNoRedirect(t *testing.T, tn *Tenant, path string, form url.Values) *http.Response {
	t.Helper()
	c := tn.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.PostForm(tn.URL()+path, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func asPageError(err error, pe **PageError) bool { return errors.As(err, pe) }

// syncBuffer is a bytes.Buffer safe for the tenant's handler goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
