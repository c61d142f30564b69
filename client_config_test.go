package stepup

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNewInvalidConfig(t *testing.T) {
	smallKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // in the message: what to fix
	}{
		{"no domain", func(c *Config) { c.Domain = "" }, "Domain is required"},
		{"http domain", func(c *Config) { c.Domain = "http://fabrikam.auth0.com" }, "https only"},
		{"domain with path", func(c *Config) { c.Domain = "fabrikam.auth0.com/x" }, "bare domain"},
		{"domain with bad port", func(c *Config) { c.Domain = "fabrikam.auth0.com:99999" }, "invalid port"},
		{"no client id", func(c *Config) { c.ClientID = " " }, "ClientID is required"},
		{"no secret", func(c *Config) { c.ClientSecret = "" }, "ClientSecret is required"},
		{"unknown auth method", func(c *Config) { c.TokenEndpointAuthMethod = "tls_client_auth" }, "not supported"},
		{"jwt without key", func(c *Config) { c.TokenEndpointAuthMethod = AuthPrivateKeyJWT }, "needs ClientAssertionKey"},
		{"small assertion key", func(c *Config) { c.ClientAssertionKey = smallKey }, "at least 2048 bits"},
		{"idle over lifetime", func(c *Config) { c.SessionIdleTimeout, c.SessionLifetime = 2*time.Hour, time.Hour }, "longer than SessionLifetime"},
		{"base64 sealing key", func(c *Config) { c.SealingKeys = [][]byte{[]byte(strings.Repeat("A", 43) + "=")} }, "raw 32 bytes"},
		{"organization with a space", func(c *Config) { c.Organization = "acme corp" }, "Organization"},
		{"relative redirect", func(c *Config) { c.RedirectURL = "/callback" }, "absolute URL"},
		{"http redirect off loopback", func(c *Config) { c.RedirectURL = "http://app.example.com/callback" }, "must use https"},
		{"bad logout url", func(c *Config) { c.LogoutReturnURL = "/bye" }, "Allowed Logout URLs"},
		{"absolute default return", func(c *Config) { c.DefaultReturnTo = "https://evil.example/" }, "DefaultReturnTo"},
		{"scope with space", func(c *Config) { c.Scopes = []string{"read write"} }, "not a scope token"},
		{"HS256 without secret", func(c *Config) {
			c.ClientSecret = ""
			c.ClientAssertionKey = mustRSAKey(t)
			c.IDTokenAlgorithms = []string{"HS256"}
		}, "needs ClientSecret"},
		{"alg none", func(c *Config) { c.IDTokenAlgorithms = []string{"none"} }, "not an acceptable"},
		{"huge leeway", func(c *Config) { c.Leeway = time.Hour }, "too large"},
		{"sub-second TTL", func(c *Config) { c.TransactionTTL = time.Millisecond }, "TransactionTTL"},
		{"key prefix with space", func(c *Config) { c.KeyPrefix = "a b" }, "KeyPrefix"},
		{"short sealing key", func(c *Config) { c.SealingKeys = [][]byte{[]byte("short")} }, "exactly 32 random bytes"},
		{"shared store without sealing keys", func(c *Config) { c.SealingKeys = nil }, "SealingKeys is required"},
		{"cookie with __Host-", func(c *Config) { c.Cookie.Session = "__Host-s" }, "not a valid cookie name"},
		{"same cookie names", func(c *Config) { c.Cookie.Session, c.Cookie.Transaction = "x", "x" }, "must differ"},
		{"negative connection max age", func(c *Config) {
			c.ConnectionPolicies = map[string]Policy{"google-oauth2": MFA.WithMaxAge(-time.Second)}
		}, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{
				Domain: "fabrikam.eu.auth0.com", ClientID: "c", ClientSecret: "s",
				RedirectURL: "https://app.example.com/callback", Store: &countingStore{},
				SealingKeys: [][]byte{sealTestKey(1)}, HTTPClient: noNetwork(t),
			}
			tc.mutate(&cfg)
			c, err := New(context.Background(), cfg)
			if err == nil {
				c.Close()
				t.Fatal("New succeeded, want ErrInvalidConfig")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("errors.Is(err, ErrInvalidConfig) = false for %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "stepup: ") {
				t.Errorf("message %q: want the prefix \"stepup: \" and %q", err, tc.want)
			}
		})
	}
}

func mustRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// New does no network I/O: the tenant may be down at start-up.
func TestNewDoesNoNetworkIO(t *testing.T) {
	c, err := New(context.Background(), Config{
		Domain: "https://unreachable.invalid/", ClientID: "c", ClientSecret: "s",
		RedirectURL: "http://127.0.0.1:8080/callback", HTTPClient: noNetwork(t),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got, want := c.Issuer(), "https://unreachable.invalid/"; got != want {
		t.Errorf("Issuer: got %q, want %q", got, want)
	}
	if c.sessionCookie != "stepup_session" || c.secure {
		t.Errorf("on http loopback: cookie %q secure=%v, want stepup_session, not secure", c.sessionCookie, c.secure)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNewDefaultsAndCopy(t *testing.T) {
	scopes := []string{"profile", "offline_access"}
	policies := map[string]Policy{"google-oauth2": MFA.WithMaxAge(5 * time.Minute)}
	keys := [][]byte{sealTestKey(9)}
	c, _, _ := offlineClient(t, func(cfg *Config) {
		cfg.Scopes = scopes
		cfg.ConnectionPolicies = policies
		cfg.SealingKeys = keys
	})
	scopes[0] = "changed"
	policies["google-oauth2"].ACR[0] = "changed" // shares MFA's array: must not reach the Client
	defer func() { MFA.ACR[0] = ACRMultiFactor }()
	policies["corp"] = Policy{}
	keys[0][0] ^= 0xff

	if diff := cmp.Diff([]string{"openid", "profile", "offline_access"}, c.cfg.Scopes); diff != "" {
		t.Errorf("scopes (-want +got):\n%s", diff)
	}
	if got := c.cfg.ConnectionPolicies["google-oauth2"].ACR[0]; got != ACRMultiFactor {
		t.Errorf("connection policy changed through the caller's map: %q", got)
	}
	if _, ok := c.cfg.ConnectionPolicies["corp"]; ok {
		t.Error("a connection added to the caller's map reached the Client")
	}
	blob := c.ring.seal([]byte("x"), nil)
	ring, _ := newKeyRing([][]byte{sealTestKey(9)})
	if _, err := ring.open(blob, nil); err != nil {
		t.Errorf("sealing key changed through the caller's slice: %v", err)
	}

	for _, d := range []struct {
		name      string
		got, want time.Duration
	}{
		{"Leeway", c.cfg.Leeway, DefaultLeeway},
		{"TransactionTTL", c.cfg.TransactionTTL, DefaultTransactionTTL},
		{"SessionIdleTimeout", c.cfg.SessionIdleTimeout, DefaultSessionIdleTimeout},
		{"SessionLifetime", c.cfg.SessionLifetime, DefaultSessionLifetime},
	} {
		if d.got != d.want {
			t.Errorf("%s: got %s, want %s", d.name, d.got, d.want)
		}
	}
	if c.authMethod != AuthClientSecretPost {
		t.Errorf("auth method: got %q, want %q", c.authMethod, AuthClientSecretPost)
	}
	if txc := c.TransactionCookieName(randomToken()); c.sessionCookie != "__Host-stepup_session" || !strings.HasPrefix(txc, "__Host-stepup_tx_") || !c.secure {
		t.Errorf("on https: cookies %q %q secure=%v, want __Host- names and Secure", c.sessionCookie, txc, c.secure)
	}
	if got, want := c.cfg.LogoutReturnURL, "https://app.example.com/"; got != want {
		t.Errorf("LogoutReturnURL: got %q, want %q", got, want)
	}
}

// The private_key_jwt client assertion follows RFC 7523 and Auth0's rules.
func TestClientAssertion(t *testing.T) {
	key := mustRSAKey(t)
	for _, alg := range []string{"RS256", "RS384", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			c, _, clock := offlineClient(t, func(cfg *Config) {
				cfg.ClientSecret = ""
				cfg.ClientAssertionKey = key
				cfg.ClientAssertionKeyID = "kid-1"
				cfg.ClientAssertionAlgorithm = alg
			})
			if c.authMethod != AuthPrivateKeyJWT {
				t.Fatalf("auth method: got %q, want private_key_jwt (the default with a key)", c.authMethod)
			}
			a1, err := c.clientAssertion()
			if err != nil {
				t.Fatal(err)
			}
			a2, _ := c.clientAssertion()
			parts := strings.Split(a1, ".")
			if len(parts) != 3 {
				t.Fatalf("assertion has %d parts", len(parts))
			}
			var header, claims map[string]any
			decodeSeg(t, parts[0], &header)
			decodeSeg(t, parts[1], &claims)
			if diff := cmp.Diff(map[string]any{"alg": alg, "typ": "JWT", "kid": "kid-1"}, header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			now := clock.Now().Unix()
			want := map[string]any{
				"iss": "client-1", "sub": "client-1", "aud": "https://fabrikam.eu.auth0.com/",
				"iat": float64(now), "exp": float64(now + 60), "jti": claims["jti"],
			}
			if diff := cmp.Diff(want, claims); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
			if jti, _ := claims["jti"].(string); !isRandomToken(jti) {
				t.Errorf("jti %q is not 256 random bits", jti)
			}
			var claims2 map[string]any
			decodeSeg(t, strings.Split(a2, ".")[1], &claims2)
			if claims2["jti"] == claims["jti"] {
				t.Error("two assertions share a jti")
			}
			sig, err := base64.RawURLEncoding.DecodeString(parts[2])
			if err != nil {
				t.Fatal(err)
			}
			input := []byte(parts[0] + "." + parts[1])
			switch alg {
			case "RS256":
				d := sha256.Sum256(input)
				err = rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, d[:], sig)
			case "RS384":
				d := sha512.Sum384(input)
				err = rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA384, d[:], sig)
			case "PS256":
				d := sha256.Sum256(input)
				err = rsa.VerifyPSS(&key.PublicKey, crypto.SHA256, d[:], sig, nil)
			}
			if err != nil {
				t.Errorf("signature does not verify: %v", err)
			}
		})
	}
}

func decodeSeg(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// private_key_jwt on the wire: the token and revocation requests carry a
// client assertion and no secret. (auth0test does not implement
// private_key_jwt, so a recording server stands in for the tenant.)
func TestPrivateKeyJWTRequests(t *testing.T) {
	key := mustRSAKey(t)
	var (
		mu    sync.Mutex
		forms = map[string]url.Values{}
		auths = map[string]string{}
	)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		forms[r.URL.Path], auths[r.URL.Path] = r.PostForm, r.Header.Get("Authorization")
		mu.Unlock()
		if r.URL.Path == "/oauth/token" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":"invalid_grant","error_description":"Invalid authorization code"}`))
		}
	}))
	defer srv.Close()
	c, _, _ := offlineClient(t, func(cfg *Config) {
		cfg.Domain = strings.TrimPrefix(srv.URL, "https://")
		cfg.HTTPClient = srv.Client()
		cfg.ClientSecret = ""
		cfg.ClientAssertionKey = key
	})
	ctx := context.Background()
	ar, err := c.AuthorizeURL(ctx, AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Exchange(ctx, url.Values{"state": {ar.State}, "code": {"the-code"}}, ar.Transaction)
	var te *TenantError
	if !errors.As(err, &te) || te.Code != "invalid_grant" || te.StatusCode != http.StatusForbidden {
		t.Fatalf("Exchange: got %v, want the server's invalid_grant", err)
	}
	if err := c.RevokeRefreshToken(ctx, "rt"); err != nil {
		t.Fatalf("RevokeRefreshToken: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, path := range []string{"/oauth/token", "/oauth/revoke"} {
		f := forms[path]
		if f.Get("client_assertion_type") != clientAssertionType || f.Has("client_secret") || auths[path] != "" || f.Get("client_id") != "client-1" {
			t.Errorf("%s: form %v, Authorization %q: want a client assertion, client_id, and no secret", path, f, auths[path])
			continue
		}
		parts := strings.Split(f.Get("client_assertion"), ".")
		var claims map[string]any
		decodeSeg(t, parts[1], &claims)
		if claims["aud"] != "https://"+c.cfg.Domain+"/" || claims["iss"] != "client-1" {
			t.Errorf("%s: assertion claims %v", path, claims)
		}
		d := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, d[:], sig); err != nil {
			t.Errorf("%s: assertion signature: %v", path, err)
		}
	}
	if got := forms["/oauth/token"]; got.Get("code") != "the-code" || len(got.Get("code_verifier")) < 43 || got.Get("grant_type") != "authorization_code" {
		t.Errorf("token request: %v", got)
	}
}
