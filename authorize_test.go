package stepup

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stepupauth/stepup/store"
	"golang.org/x/oauth2"
)

func TestAuthorizeURL(t *testing.T) {
	c, cs, clock := offlineClient(t, func(cfg *Config) {
		cfg.Audience = "https://api.fabrikam.example"
		cfg.ConnectionPolicies = map[string]Policy{"google-oauth2": MFA.WithMaxAge(5 * time.Minute)}
	})
	ctx := context.Background()
	ar, err := c.AuthorizeURL(ctx, AuthorizeOptions{
		Connection:   "google-oauth2",
		Policy:       MFA.WithMaxAge(10 * time.Minute),
		Prompt:       "login",
		LoginHint:    "alice@fabrikam.example",
		Scopes:       []string{"read:salaries", "openid"},
		Organization: "org_1",
		ReturnTo:     "/salaries?year=2026",
		Extra:        url.Values{"ui_locales": {"fr"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := cs.writes(); got != 1 {
		t.Errorf("store writes: got %d, want exactly 1", got)
	}
	u, err := url.Parse(ar.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.Scheme+"://"+u.Host+u.Path, "https://fabrikam.eu.auth0.com/authorize"; got != want {
		t.Errorf("endpoint: got %q, want %q", got, want)
	}
	q := u.Query()
	nonce := q.Get("nonce")
	if !isRandomToken(ar.State) || !isRandomToken(nonce) || !isRandomToken(ar.Binding) || ar.State == nonce {
		t.Errorf("state %q, nonce %q, binding %q: want three distinct 256-bit random values", ar.State, nonce, ar.Binding)
	}
	want := url.Values{
		"response_type": {"code"}, "client_id": {"client-1"}, "redirect_uri": {"https://app.example.com/callback"},
		"scope": {"openid profile email read:salaries"},
		"state": {ar.State}, "nonce": {nonce},
		"code_challenge": {q.Get("code_challenge")}, "code_challenge_method": {"S256"},
		"acr_values": {ACRMultiFactor}, "max_age": {"300"}, // the connection's 5 minutes beat the page's 10
		"audience": {"https://api.fabrikam.example"}, "connection": {"google-oauth2"}, "prompt": {"login"},
		"login_hint": {"alice@fabrikam.example"}, "organization": {"org_1"}, "ui_locales": {"fr"},
	}
	if diff := cmp.Diff(want, q); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}

	// The transaction holds what the callback needs, and no binding in clear.
	data, err := c.store.Get(ctx, c.txKey(ar.State))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), ar.Binding) {
		t.Error("the transaction record holds the binding in clear")
	}
	tx, err := decodeTx(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := oauth2.S256ChallengeFromVerifier(tx.Verifier); got != q.Get("code_challenge") {
		t.Errorf("code_challenge %q is not S256 of the stored verifier (%q)", q.Get("code_challenge"), got)
	}
	if tx.Nonce != nonce || tx.ReturnTo != "/salaries?year=2026" || tx.Connection != "google-oauth2" ||
		tx.MaxAge != 300 || tx.Issuer != c.Issuer() || tx.Policy.MaxAge != 5*time.Minute {
		t.Errorf("transaction: %+v", tx)
	}
	if got, want := ar.ExpiresAt, clock.Now().Add(DefaultTransactionTTL); !got.Equal(want) {
		t.Errorf("ExpiresAt: got %v, want %v", got, want)
	}
	clock.Advance(DefaultTransactionTTL)
	if _, err := c.store.Get(ctx, c.txKey(ar.State)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("transaction after its TTL: got %v, want store.ErrNotFound", err)
	}
}

func TestAuthorizeURLOptions(t *testing.T) {
	c, _, _ := offlineClient(t, nil)
	zero, five := time.Duration(0), 5*time.Minute+time.Millisecond
	tests := []struct {
		name string
		opts AuthorizeOptions
		want url.Values // parameters that must have these values ("" = absent)
	}{
		{"plain login", AuthorizeOptions{}, url.Values{"acr_values": {""}, "max_age": {""}, "prompt": {""}, "scope": {"openid profile email"}}},
		{"policy acr and max age", AuthorizeOptions{Policy: MFA.WithMaxAge(90 * time.Second)}, url.Values{"acr_values": {ACRMultiFactor}, "max_age": {"90"}}},
		{"several acr in order", AuthorizeOptions{Policy: Policy{ACR: []string{"urn:a", "urn:b"}}}, url.Values{"acr_values": {"urn:a urn:b"}}},
		{"explicit MaxAge overrides", AuthorizeOptions{Policy: MFA.WithMaxAge(time.Hour), MaxAge: &five}, url.Values{"max_age": {"301"}}},
		{"MaxAge zero forces reauthentication", AuthorizeOptions{MaxAge: &zero}, url.Values{"max_age": {"0"}}},
		{"prompt none", AuthorizeOptions{Prompt: "none"}, url.Values{"prompt": {"none"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ar, err := c.AuthorizeURL(context.Background(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(ar.URL)
			q := u.Query()
			for k, v := range tc.want {
				if got := q.Get(k); got != v[0] {
					t.Errorf("%s: got %q, want %q", k, got, v[0])
				}
			}
		})
	}

	// A binding given back (another tab's) is reused; a malformed one is replaced.
	first, _ := c.AuthorizeURL(context.Background(), AuthorizeOptions{})
	second, _ := c.AuthorizeURL(context.Background(), AuthorizeOptions{Binding: first.Binding})
	if second.Binding != first.Binding {
		t.Error("a well-formed binding was not reused")
	}
	third, _ := c.AuthorizeURL(context.Background(), AuthorizeOptions{Binding: "short"})
	if !isRandomToken(third.Binding) || third.Binding == "short" {
		t.Errorf("a malformed binding was kept: %q", third.Binding)
	}
}

func TestAuthorizeURLRejects(t *testing.T) {
	c, cs, _ := offlineClient(t, nil)
	neg := -time.Second
	tests := []struct {
		name string
		opts AuthorizeOptions
	}{
		{"absolute return", AuthorizeOptions{ReturnTo: "https://evil.example/"}},
		{"scheme-relative return", AuthorizeOptions{ReturnTo: "//evil.example/"}},
		{"backslash host", AuthorizeOptions{ReturnTo: "/\\evil.example"}},
		{"backslash later", AuthorizeOptions{ReturnTo: "/a\\b"}},
		{"javascript", AuthorizeOptions{ReturnTo: "javascript:alert(1)"}},
		{"relative", AuthorizeOptions{ReturnTo: "salaries"}},
		{"encoded slash", AuthorizeOptions{ReturnTo: "/%2F%2Fevil.example"}},
		{"encoded backslash", AuthorizeOptions{ReturnTo: "/%5cevil.example"}},
		{"newline", AuthorizeOptions{ReturnTo: "/a\r\nLocation: https://evil.example"}},
		{"tab", AuthorizeOptions{ReturnTo: "/\t/evil.example"}},
		{"fragment", AuthorizeOptions{ReturnTo: "/a#b"}},
		{"extra overrides state", AuthorizeOptions{Extra: url.Values{"state": {"x"}}}},
		{"extra overrides redirect", AuthorizeOptions{Extra: url.Values{"redirect_uri": {"https://evil.example/cb"}}}},
		{"extra overrides challenge", AuthorizeOptions{Extra: url.Values{"code_challenge_method": {"plain"}}}},
		{"extra overrides acr", AuthorizeOptions{Extra: url.Values{"ACR_VALUES": {"x"}}}},
		{"extra sets response_mode", AuthorizeOptions{Extra: url.Values{"response_mode": {"fragment"}}}},
		{"extra sets request_uri", AuthorizeOptions{Extra: url.Values{"request_uri": {"urn:x"}}}},
		{"negative max age", AuthorizeOptions{MaxAge: &neg}},
		{"scope with space", AuthorizeOptions{Scopes: []string{"a b"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.AuthorizeURL(context.Background(), tc.opts)
			if !errors.Is(err, ErrInvalidAuthorizeOptions) {
				t.Fatalf("got %v, want ErrInvalidAuthorizeOptions", err)
			}
		})
	}
	if got := cs.writes(); got != 0 {
		t.Errorf("rejected requests wrote %d records", got)
	}
}

func TestCheckReturnToAccepts(t *testing.T) {
	for _, p := range []string{"/", "/salaries", "/a/b?c=d&e=%2F", "/caf%C3%A9", "/a//b", "/a/./b"} {
		if err := checkReturnTo(p); err != nil {
			t.Errorf("checkReturnTo(%q): %v", p, err)
		}
	}
}

func TestAuthorizeURLStoreDown(t *testing.T) {
	c, cs, _ := offlineClient(t, nil)
	cs.failing.Store(true)
	_, err := c.AuthorizeURL(context.Background(), AuthorizeOptions{})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("got %v, want an error matching store.ErrUnavailable", err)
	}
	if ErrorStatus(err) != http.StatusServiceUnavailable {
		t.Errorf("ErrorStatus: got %d, want 503", ErrorStatus(err))
	}
}

func TestPolicyFor(t *testing.T) {
	corp := Policy{Name: "corp", ACR: []string{"urn:corp:mfa"}}
	c, _, _ := offlineClient(t, func(cfg *Config) {
		cfg.ConnectionPolicies = map[string]Policy{
			"google-oauth2": MFA.WithMaxAge(5 * time.Minute),
			"corp-saml":     corp,
			"slow":          {MaxAge: time.Hour, Scopes: []string{"x"}},
		}
	})
	tests := []struct {
		name       string
		p          Policy
		connection string
		want       Policy
	}{
		{"no connection", MFA, "", MFA},
		{"unknown connection", MFA, "github", MFA},
		{"login is the same everywhere", Login, "google-oauth2", Login},
		{"google: shorter max age", MFA.WithMaxAge(10 * time.Minute), "google-oauth2", MFA.WithMaxAge(5 * time.Minute).Named("mfa@google-oauth2")},
		{"google: page max age shorter", MFA.WithMaxAge(time.Minute), "google-oauth2", MFA.WithMaxAge(time.Minute).Named("mfa@google-oauth2")},
		{"enterprise acr replaces", MFA, "corp-saml", Policy{Name: "mfa@corp-saml", ACR: []string{"urn:corp:mfa"}}},
		{"max age only keeps acr", MFA.WithMaxAge(2 * time.Hour), "slow", Policy{Name: "mfa@slow", ACR: MFA.ACR, AMR: MFA.AMR, MaxAge: time.Hour, Scopes: []string{"x"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := c.PolicyFor(tc.p, tc.connection)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if again := c.PolicyFor(got, tc.connection); !cmp.Equal(again, got) {
				t.Errorf("not idempotent: %+v then %+v", got, again)
			}
		})
	}
}

// PAR: the parameters go to /oauth/par with client authentication; the
// browser's URL carries only client_id and request_uri.
func TestAuthorizeURLPAR(t *testing.T) {
	var got url.Values
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth/par" || r.Method != http.MethodPost {
			http.Error(w, "unexpected", http.StatusNotFound)
			return
		}
		r.ParseForm()
		got = r.PostForm
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"request_uri": "urn:ietf:params:oauth:request_uri:abc", "expires_in": 30})
	}))
	defer srv.Close()
	c, cs, _ := offlineClient(t, func(cfg *Config) {
		cfg.Domain = strings.TrimPrefix(srv.URL, "https://")
		cfg.HTTPClient = srv.Client()
		cfg.UsePAR = true
	})
	ar, err := c.AuthorizeURL(context.Background(), AuthorizeOptions{Policy: MFA})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(ar.URL)
	if diff := cmp.Diff(url.Values{"client_id": {"client-1"}, "request_uri": {"urn:ietf:params:oauth:request_uri:abc"}}, u.Query()); diff != "" {
		t.Errorf("browser URL query (-want +got):\n%s", diff)
	}
	for k, v := range map[string]string{"client_id": "client-1", "client_secret": "secret-1", "state": ar.State,
		"acr_values": ACRMultiFactor, "code_challenge_method": "S256", "response_type": "code"} {
		if got.Get(k) != v {
			t.Errorf("PAR form %s: got %q, want %q", k, got.Get(k), v)
		}
	}
	if cs.writes() != 1 {
		t.Errorf("store writes: got %d, want 1", cs.writes())
	}

	// A failing PAR endpoint: a *TenantError, and no transaction saved.
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"server_error"}`, http.StatusBadGateway)
	})
	_, err = c.AuthorizeURL(context.Background(), AuthorizeOptions{})
	var te *TenantError
	if !errors.As(err, &te) || !errors.Is(err, ErrTenantUnavailable) || te.Endpoint != "/oauth/par" {
		t.Fatalf("got %v, want a *TenantError for /oauth/par matching ErrTenantUnavailable", err)
	}
	if cs.writes() != 1 {
		t.Errorf("a failed PAR wrote a transaction")
	}
}

// BenchmarkAuthorizeURL: the cost of starting a login on the memory store,
// which must be under 10 µs with exactly one store write. The clock moves by
// 1/1024 of the transaction TTL per login, so that the store holds about 1024
// pending transactions, as a busy server does in its steady state (expired
// ones are reclaimed by later writes), instead of growing without bound.
func BenchmarkAuthorizeURL(b *testing.B) {
	c, cs, clock := offlineClient(b, func(cfg *Config) { cfg.Audience = "https://api.fabrikam.example" })
	ctx := context.Background()
	opts := AuthorizeOptions{Policy: MFA.WithMaxAge(5 * time.Minute), ReturnTo: "/salaries", Connection: "google-oauth2"}
	step := DefaultTransactionTTL / 1024
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.AuthorizeURL(ctx, opts); err != nil {
			b.Fatal(err)
		}
		clock.Advance(step)
	}
	b.StopTimer()
	if w := cs.writes(); w != int64(b.N) {
		b.Fatalf("%d store writes for %d calls, want exactly one each", w, b.N)
	}
	b.ReportMetric(float64(cs.writes())/float64(b.N), "writes/op")
}

func TestAppendEscapedMatchesQueryEscape(t *testing.T) {
	for _, s := range []string{"", "abc", "a b", "https://x.example/p?q=1&r=é", "\x00\xff~._-", ACRMultiFactor, "a+b%20c"} {
		if got, want := string(appendEscaped(nil, s)), url.QueryEscape(s); got != want {
			t.Errorf("appendEscaped(%q) = %q, want %q", s, got, want)
		}
	}
}

// FuzzCheckReturnTo: return_to comes from the request (LoginHandler) and
// the transaction record. Whatever it accepts must stay on the app's origin,
// also for browsers that read a backslash as a slash.
func FuzzCheckReturnTo(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//evil", "/\\evil", "https://evil", "/%2F%2Fevil", "/a/../../b", "/\t/evil", "/.//evil"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://app.fabrikam.example/x/y")
	f.Fuzz(func(t *testing.T, p string) {
		if checkReturnTo(p) != nil {
			return
		}
		for _, variant := range []string{p, strings.ReplaceAll(p, "\\", "/")} {
			ref, err := url.Parse(variant)
			if err != nil {
				t.Fatalf("accepted %q, which does not parse: %v", p, err)
			}
			if got := base.ResolveReference(ref); got.Host != base.Host || got.Scheme != base.Scheme {
				t.Fatalf("accepted %q, which leads to %s", p, got)
			}
		}
	})
}
