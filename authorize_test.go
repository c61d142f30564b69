package stepup

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
	if got := cs.writes() + cs.gets.Load(); got != 0 {
		t.Errorf("store calls: got %d, want none (the transaction is the cookie)", got)
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
	if !isRandomToken(ar.State) || !isRandomToken(nonce) || ar.State == nonce {
		t.Errorf("state %q, nonce %q: want two distinct 256-bit random values", ar.State, nonce)
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

	// The cookie holds what the callback needs, sealed: nothing of it in clear.
	ck := ar.Cookie()
	if ck.Name != c.TransactionCookieName(ar.State) || ck.Value != ar.Transaction || !ck.HttpOnly ||
		ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge != int(DefaultTransactionTTL/time.Second) || !ck.Secure ||
		!strings.HasPrefix(ck.Name, "__Host-stepup_tx_") {
		t.Errorf("transaction cookie %+v: want __Host-, HttpOnly, Secure, SameSite=Lax, Path=/, Max-Age the TTL", ck)
	}
	if err := ck.Valid(); err != nil {
		t.Errorf("transaction cookie: %v", err)
	}
	for _, clear := range []string{"salaries", "google-oauth2", nonce, ar.State} {
		if strings.Contains(ar.Transaction, clear) {
			t.Errorf("the transaction cookie holds %q in clear", clear)
		}
	}
	if n := len(ck.Name) + len(ck.Value); n > 512 {
		t.Errorf("a step-up's transaction cookie is %d bytes, want a compact one (< 512)", n)
	}
	tx, err := c.openTx(ar.State, ar.Transaction)
	if err != nil {
		t.Fatal(err)
	}
	if got := oauth2.S256ChallengeFromVerifier(tx.verifier()); got != q.Get("code_challenge") {
		t.Errorf("code_challenge %q is not S256 of the stored verifier (%q)", q.Get("code_challenge"), got)
	}
	if tx.nonce() != nonce || tx.ReturnTo != "/salaries?year=2026" || tx.Connection != "google-oauth2" ||
		tx.MaxAge != 300 || tx.Issuer != c.Issuer() || tx.Policy.MaxAge != 5*time.Minute {
		t.Errorf("transaction: %+v", tx)
	}
	if got, want := ar.ExpiresAt, clock.Now().Add(DefaultTransactionTTL); !got.Equal(want) {
		t.Errorf("ExpiresAt: got %v, want %v", got, want)
	}
	// Bound to its state: it opens for no other.
	if _, err := c.openTx(randomToken(), ar.Transaction); !errors.Is(err, ErrStateMismatch) {
		t.Errorf("opened for another state: got %v, want ErrStateMismatch", err)
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
		{"return path over the bound", AuthorizeOptions{ReturnTo: "/" + strings.Repeat("a", maxReturnToBytes)}},
		{"connection over 128", AuthorizeOptions{Connection: strings.Repeat("a", 129)}},
		{"connection with a space", AuthorizeOptions{Connection: "google oauth2"}},
		{"connection with a dot", AuthorizeOptions{Connection: "../x"}},
		{"connection ending in -", AuthorizeOptions{Connection: "google-"}},
		{"connection of 900 KB", AuthorizeOptions{Connection: strings.Repeat("<", 900<<10)}},
		{"login hint over 320", AuthorizeOptions{LoginHint: strings.Repeat("a", 321)}},
		{"login hint with newline", AuthorizeOptions{LoginHint: "a\nb"}},
		{"login hint not UTF-8", AuthorizeOptions{LoginHint: "a\xffb"}},
		{"organization over 50", AuthorizeOptions{Organization: "org_" + strings.Repeat("a", 47)}},
		{"organization with a slash", AuthorizeOptions{Organization: "org/1"}},
		{"invitation over 64", AuthorizeOptions{Extra: url.Values{"invitation": {strings.Repeat("a", 65)}}}},
		{"invitation with a quote", AuthorizeOptions{Extra: url.Values{"invitation": {"a'b"}}}},
		{"extra value over 512", AuthorizeOptions{Extra: url.Values{"ui_locales": {strings.Repeat("a", 513)}}}},
		{"extra with 17 values", AuthorizeOptions{Extra: url.Values{"x": make([]string, 17)}}},
		{"extra name with space", AuthorizeOptions{Extra: url.Values{"a b": {"x"}}}},
		{"extra value with control", AuthorizeOptions{Extra: url.Values{"screen_hint": {"a\x00"}}}},
		{"audience over 512", AuthorizeOptions{Audience: "https://" + strings.Repeat("a", 512)}},
		{"33 scopes", AuthorizeOptions{Scopes: strings.Fields(strings.Repeat("s ", 33))}},
		{"transaction over a cookie", AuthorizeOptions{ReturnTo: "/" + strings.Repeat("r", 2000),
			Policy: Policy{ACR: strings.Fields(strings.Repeat("urn:"+strings.Repeat("a", 200)+" ", 8))}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.AuthorizeURL(context.Background(), tc.opts)
			if !errors.Is(err, ErrInvalidAuthorizeOptions) {
				t.Fatalf("got %v, want ErrInvalidAuthorizeOptions", err)
			}
			if n := len(err.Error()); n > 400 {
				t.Errorf("the error is %d bytes long: it must quote a bounded part of the value", n)
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

// The store is not needed to start a login: a store that is down does not
// stop visitors from being sent to the tenant (the callback needs it).
func TestAuthorizeURLStoreDown(t *testing.T) {
	c, cs, _ := offlineClient(t, nil)
	cs.failing.Store(true)
	if _, err := c.AuthorizeURL(context.Background(), AuthorizeOptions{}); err != nil {
		t.Fatalf("got %v, want a login started without the store", err)
	}
	if n := cs.writes() + cs.gets.Load(); n != 0 {
		t.Errorf("%d store calls, want none", n)
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
	if cs.writes() != 0 {
		t.Errorf("store writes: got %d, want none", cs.writes())
	}
	if tx, err := c.openTx(ar.State, ar.Cookie().Value); err != nil || !tx.Policy.RequiresStepUp() {
		t.Errorf("PAR's transaction cookie: %+v, %v", tx, err)
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
	if cs.writes() != 0 {
		t.Errorf("a failed PAR wrote to the store")
	}
}

// BenchmarkAuthorizeURL: the cost of starting a login (a step-up for a
// connection, with a return path), which must stay under 5 µs with no store
// call: the transaction is sealed into its cookie. The clock moves as in a
// busy server's steady state; nothing depends on it any more.
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
	if w := cs.writes() + cs.gets.Load(); w != 0 {
		b.Fatalf("%d store calls for %d logins, want none", w, b.N)
	}
	b.ReportMetric(float64(cs.writes())/float64(b.N), "writes/op")
}

// BenchmarkAuthorizeURLInterleaved: AuthorizeURL (the step-up of
// BenchmarkAuthorizeURL, its transaction sealed into the cookie) against
// what x/oauth2 alone costs to build the same authorize URL with a state,
// a nonce and PKCE S256 and keep nothing (oauth2.Config.AuthCodeURL with
// GenerateVerifier and S256ChallengeOption), interleaved in each iteration
// so that the machine's load hits both alike; the ratio of their medians is
// reported.
func BenchmarkAuthorizeURLInterleaved(b *testing.B) {
	c, cs, _ := offlineClient(b, func(cfg *Config) { cfg.Audience = "https://api.fabrikam.example" })
	ctx := context.Background()
	opts := AuthorizeOptions{Policy: MFA.WithMaxAge(5 * time.Minute), ReturnTo: "/salaries", Connection: "google-oauth2"}
	conf := oauth2.Config{ // what the Client held for x/oauth2 before it built URLs itself
		ClientID:    c.cfg.ClientID,
		RedirectURL: c.cfg.RedirectURL,
		Endpoint:    oauth2.Endpoint{AuthURL: c.authURL, TokenURL: c.tokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
	extra := []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("acr_values", ACRMultiFactor), oauth2.SetAuthURLParam("max_age", "300"),
		oauth2.SetAuthURLParam("audience", "https://api.fabrikam.example"), oauth2.SetAuthURLParam("connection", "google-oauth2"),
	}
	var ours, bare []time.Duration
	for b.Loop() {
		t0 := time.Now()
		v := oauth2.GenerateVerifier()
		u := conf.AuthCodeURL(randomToken(), append(extra, oauth2.SetAuthURLParam("nonce", randomToken()), oauth2.S256ChallengeOption(v))...)
		t1 := time.Now()
		if _, err := c.AuthorizeURL(ctx, opts); err != nil || u == "" {
			b.Fatal(err)
		}
		t2 := time.Now()
		bare = append(bare, t1.Sub(t0))
		ours = append(ours, t2.Sub(t1))
	}
	if w := cs.writes() + cs.gets.Load(); w != 0 {
		b.Fatalf("%d store calls, want none", w)
	}
	slices.Sort(ours)
	slices.Sort(bare)
	mo, mb := float64(ours[len(ours)/2]), float64(bare[len(bare)/2])
	b.ReportMetric(mo, "ours-ns")
	b.ReportMetric(mb, "x/oauth2-ns")
	b.ReportMetric(mo/mb, "ours/x/oauth2")
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
