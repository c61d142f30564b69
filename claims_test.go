package stepup

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/internal/redistest"
	"github.com/stepupauth/stepup/redisstore"
)

// The hook refuses a login: 403 through ErrorHandler, nothing stored, the
// previous session left as it was.
func TestBeforeSessionRefuses(t *testing.T) {
	refuse := false
	h := newHarness(t, harnessOpts{client: func(c *Config) {
		c.BeforeSession = func(ctx context.Context, login *LoginResult) (map[string]string, error) {
			if refuse {
				return nil, errors.New("contractors may not sign in here")
			}
			return nil, nil
		}
	}})
	u := h.alice()
	if w := u.visit(pathPrivate); w.Code != http.StatusOK {
		t.Fatalf("first login: %d", w.Code)
	}
	before := u.session()
	refuse = true
	sets := h.cs.sets.Load() + h.cs.indexAdds.Load()
	w := u.get(pathSalaries)
	w = u.callback(u.authorize(w))
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "contractors may not sign in here") {
		t.Fatalf("refused login: %d %q, want 403 with the hook's message", w.Code, w.Body.String())
	}
	if n := h.cs.sets.Load() + h.cs.indexAdds.Load(); n != sets {
		t.Errorf("a refused login wrote %d records", n-sets)
	}
	after := u.session() // the cookie still works, as weak as it was
	if after.Handle != before.Handle || !after.StepUpAt.IsZero() {
		t.Errorf("refused step-up changed the session: handle kept %v, step-up at %v", after.Handle == before.Handle, after.StepUpAt)
	}

	// StartSession says why with ErrLoginRefused.
	_, err := h.c.StartSession(context.Background(), &LoginResult{IDToken: &IDToken{Subject: "auth0|x"}}, nil)
	if !errors.Is(err, ErrLoginRefused) || ErrorStatus(err) != http.StatusForbidden {
		t.Fatalf("StartSession: %v (status %d), want ErrLoginRefused, 403", err, ErrorStatus(err))
	}
}

// The claims the hook keeps are read back on every page, on every replica
// sharing the Store (Redis), and a step-up replaces them.
func TestBeforeSessionClaimsAcrossReplicas(t *testing.T) {
	forEachSharedStore(t, func(t *testing.T, h *harness, replica *Client) {
		u := h.alice()
		if w := u.visit(pathPrivate); w.Code != http.StatusOK {
			t.Fatalf("login: %d", w.Code)
		}
		ck := u.cookies[h.c.sessionCookie]
		s, err := replica.LoadSession(context.Background(), ck.Value)
		if err != nil {
			t.Fatalf("replica LoadSession: %v", err)
		}
		want := map[string]string{"email_domain": "fabrikam.example", "level": "login"}
		if diff := cmp.Diff(want, s.Claims()); diff != "" {
			t.Errorf("claims on the replica (-want +got):\n%s", diff)
		}
		if v, ok := s.Claim("level"); !ok || v != "login" {
			t.Errorf("Claim(level) = %q, %v", v, ok)
		}
		if _, ok := s.Claim("absent"); ok {
			t.Error("Claim(absent) found")
		}
		if w := u.visit(pathSalaries); w.Code != http.StatusOK {
			t.Fatalf("step-up: %d", w.Code)
		}
		s, err = replica.LoadSession(context.Background(), u.cookies[h.c.sessionCookie].Value)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := s.Claim("level"); v != "mfa" {
			t.Errorf("after the step-up Claim(level) = %q, want mfa", v)
		}
	})
}

// claimsHook keeps the email's domain and the login's level.
func claimsHook(ctx context.Context, login *LoginResult) (map[string]string, error) {
	email, _ := login.IDToken.Claims()["email"].(string)
	_, domain, _ := strings.Cut(email, "@")
	level := "login"
	if login.Policy.RequiresStepUp() {
		level = "mfa"
	}
	return map[string]string{"email_domain": domain, "level": level}, nil
}

func TestSessionClaimsBounds(t *testing.T) {
	big := map[string]string{}
	for i := range MaxSessionClaims + 1 {
		big[fmt.Sprint("c", i)] = "v"
	}
	tests := []struct {
		name   string
		claims map[string]string
		ok     bool
	}{
		{"none", nil, true},
		{"sixteen", func() map[string]string { m := map[string]string{}; maps16(m); return m }(), true},
		{"seventeen", big, false},
		{"empty name", map[string]string{"": "v"}, false},
		{"long name", map[string]string{strings.Repeat("n", MaxSessionClaimName+1): "v"}, false},
		{"too large", map[string]string{"a": strings.Repeat("v", MaxSessionClaimsSize)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := encodeClaims(tc.claims)
			if tc.ok != (err == nil) {
				t.Fatalf("encodeClaims: %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrLoginRefused) {
					t.Errorf("error %v does not match ErrLoginRefused", err)
				}
				return
			}
			if enc != "" {
				if err := checkEncodedClaims(enc); err != nil {
					t.Fatalf("checkEncodedClaims: %v", err)
				}
			}
			s := &Session{rec: &sessionRecord{Claims: enc}}
			got := s.Claims()
			if len(tc.claims) == 0 {
				if got != nil {
					t.Errorf("Claims() = %v, want nil", got)
				}
				return
			}
			if diff := cmp.Diff(tc.claims, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
	// Unsorted or duplicated names in a record are corrupt.
	w := recWriter{}
	w.uvarint(2)
	w.str("b")
	w.str("1")
	w.str("a")
	w.str("2")
	if checkEncodedClaims(string(w.b)) == nil {
		t.Error("unsorted claims accepted")
	}
}

func maps16(m map[string]string) {
	for i := range MaxSessionClaims {
		m[fmt.Sprintf("claim%02d", i)] = strings.Repeat("x", 100)
	}
}

// Organizations are checked as Auth0's SDKs do. auth0test on this base
// refuses the organization parameter, so the test sends the authorization
// without it and has the tenant forge org_id/org_name into its ID tokens:
// the SDK's check is what is under test.
func TestOrganizationChecked(t *testing.T) {
	tests := []struct {
		name             string
		org              string // requested
		orgID, orgName   string // in the ID token ("" absent)
		wantErr          bool
		wantID, wantName string
	}{
		{name: "id matches", org: "org_abc123", orgID: "org_abc123", orgName: "acme", wantID: "org_abc123", wantName: "acme"},
		{name: "id differs", org: "org_abc123", orgID: "org_zzz", wantErr: true},
		{name: "id absent", org: "org_abc123", wantErr: true},
		{name: "id case differs", org: "org_abc123", orgID: "org_ABC123", wantErr: true},
		{name: "name ignores case", org: "Acme", orgID: "org_abc123", orgName: "acme", wantID: "org_abc123", wantName: "acme"},
		{name: "name differs", org: "acme", orgID: "org_abc123", orgName: "globex", wantErr: true},
		{name: "name absent", org: "acme", orgID: "org_abc123", wantErr: true},
		{name: "none requested", orgID: "org_abc123", wantID: "org_abc123"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.tn.ForgeIDTokens(func(_, c map[string]any) {
				if tc.orgID != "" {
					c["org_id"] = tc.orgID
				}
				if tc.orgName != "" {
					c["org_name"] = tc.orgName
				}
			})
			ar, err := h.c.AuthorizeURL(context.Background(), AuthorizeOptions{Organization: tc.org})
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(ar.URL)
			q := u.Query()
			if q.Get("organization") != tc.org {
				t.Fatalf("organization sent %q, want %q", q.Get("organization"), tc.org)
			}
			q.Del("organization")
			u.RawQuery = q.Encode()
			cb, err := h.tn.NewBrowser().Login(context.Background(), u.String(), aliceCreds)
			if err != nil {
				t.Fatal(err)
			}
			login, err := h.c.Exchange(context.Background(), cb.Query(), ar.Transaction)
			if tc.wantErr {
				if !errors.Is(err, ErrOrganizationMismatch) || ErrorStatus(err) != http.StatusForbidden {
					t.Fatalf("got %v (status %d), want ErrOrganizationMismatch, 403", err, ErrorStatus(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s, err := h.c.StartSession(context.Background(), login, nil)
			if err != nil {
				t.Fatal(err)
			}
			s, err = h.c.Session(context.Background(), s.Handle)
			if err != nil {
				t.Fatal(err)
			}
			if s.OrgID != tc.wantID || s.OrgName != tc.wantName || login.Organization != tc.org {
				t.Errorf("session org %q %q, login %q; want %q %q %q", s.OrgID, s.OrgName, login.Organization, tc.wantID, tc.wantName, tc.org)
			}
		})
	}
}

// Config.Organization is sent by default, and the browser cannot name another.
func TestConfigOrganizationAndInvitation(t *testing.T) {
	c, _, _ := offlineClient(t, func(cfg *Config) { cfg.Organization = "org_default1" })
	ar, err := c.AuthorizeURL(context.Background(), AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := query(t, ar.URL).Get("organization"); got != "org_default1" {
		t.Errorf("organization %q, want Config.Organization", got)
	}
	tests := []struct {
		name   string
		target string
		status int
		org    string
		inv    string
	}{
		{"invitation link", "/login?organization=org_default1&invitation=Ab12cD34", http.StatusFound, "org_default1", "Ab12cD34"},
		{"invitation with the configured organization", "/login?invitation=Ab12cD34", http.StatusFound, "org_default1", "Ab12cD34"},
		{"another organization's invitation", "/login?organization=org_abc&invitation=Ab12cD34", http.StatusBadRequest, "", ""},
		{"another organization by name", "/login?organization=acme-corp", http.StatusBadRequest, "", ""},
		{"organization too long", "/login?organization=" + strings.Repeat("o", 51), http.StatusBadRequest, "", ""},
		{"organization with a dot", "/login?organization=a.b", http.StatusBadRequest, "", ""},
		{"invitation with a slash", "/login?organization=org_abc&invitation=a/b", http.StatusBadRequest, "", ""},
		{"invitation too long", "/login?organization=org_abc&invitation=" + strings.Repeat("i", 65), http.StatusBadRequest, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(c.LoginHandler(), tc.target, nil)
			if w.Code != tc.status {
				t.Fatalf("%s: %d, want %d (%s)", tc.target, w.Code, tc.status, w.Body.String())
			}
			if tc.status != http.StatusFound {
				return
			}
			q := query(t, w.Header().Get("Location"))
			if q.Get("organization") != tc.org || q.Get("invitation") != tc.inv {
				t.Errorf("sent organization %q invitation %q, want %q %q", q.Get("organization"), q.Get("invitation"), tc.org, tc.inv)
			}
		})
	}
	// Without Config.Organization the browser names one (the app then
	// checks Session.OrgID itself); an invitation needs it.
	c2, _, _ := offlineClient(t, nil)
	for target, org := range map[string]string{"/login?organization=org_abc&invitation=Ab12cD34": "org_abc", "/login?organization=acme-corp": "acme-corp"} {
		w := serve(c2.LoginHandler(), target, nil)
		if w.Code != http.StatusFound || query(t, w.Header().Get("Location")).Get("organization") != org {
			t.Errorf("%s without Config.Organization: %d %q, want a redirect for %s", target, w.Code, w.Header().Get("Location"), org)
		}
	}
	if w := serve(c2.LoginHandler(), "/login?invitation=Ab12cD34", nil); w.Code != http.StatusBadRequest {
		t.Errorf("invitation without organization: %d, want 400", w.Code)
	}
}

func TestStepUpValidUntil(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.alice()
	u.visit(pathPrivate)
	s := u.session()
	fresh := MFA.WithMaxAge(5 * time.Minute)
	if _, ok := s.StepUpValidUntil(fresh); ok {
		t.Error("a plain login satisfies MFA")
	}
	if until, ok := s.StepUpValidUntil(Login); !ok || !until.Equal(s.ExpiresAt) {
		t.Errorf("Login: %v %v, want the session's end", until, ok)
	}
	h.clock.Advance(time.Minute)
	u.visit(pathSalaries) // a plain MFA step-up: no max_age sent
	s = u.session()
	until, ok := s.StepUpValidUntil(fresh)
	if want := s.StepUpAt.Truncate(time.Second).Add(5 * time.Minute); !ok || !until.Equal(want) {
		t.Fatalf("MFA within 5m: %v %v, want %v (the step-up's time)", until, ok, want)
	}
	// What it says agrees with CheckSession on both sides of the bound.
	h.clock.Advance(until.Add(-time.Second).Sub(h.clock.Now()))
	if err := h.c.CheckSession(s, fresh); err != nil {
		t.Errorf("a second before the end: %v", err)
	}
	h.clock.Advance(2 * time.Second)
	if err := h.c.CheckSession(s, fresh); err == nil {
		t.Error("a second after the end: still satisfied")
	}
}

// A plain MFA step-up (no max_age, so Auth0 sends no auth_time) satisfies a
// later page demanding MFA within 5 minutes without asking again.
func TestStepUpWithoutAuthTimeSatisfiesMaxAge(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.alice()
	if w := u.visit(pathSalaries); w.Code != http.StatusOK {
		t.Fatal(w.Code)
	}
	h.clock.Advance(2 * time.Minute)
	if w := u.get(pathFresh); w.Code != http.StatusOK {
		t.Fatalf("MFA within 5m two minutes after an MFA step-up: %d, want 200", w.Code)
	}
	h.clock.Advance(4 * time.Minute)
	if w := u.get(pathFresh); w.Code != http.StatusFound {
		t.Fatalf("six minutes after: %d, want a redirect", w.Code)
	}
}

// prompt=none without a tenant session falls back to an interactive login;
// with NoSilentFallback it ends on the error page.
func TestSilentLoginFallsBack(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoSilentFallback=%v", off), func(t *testing.T) {
			h := newHarness(t, harnessOpts{client: func(c *Config) { c.NoSilentFallback = off }})
			u := h.alice()
			ar, err := h.c.AuthorizeURL(context.Background(), AuthorizeOptions{Prompt: "none", ReturnTo: "/private?x=1"})
			if err != nil {
				t.Fatal(err)
			}
			u.cookies[ar.Cookie().Name] = ar.Cookie()
			cb, err := u.tb.Login(context.Background(), ar.URL, aliceCreds)
			if err != nil {
				t.Fatal(err)
			}
			if cb.Query().Get("error") != "login_required" {
				t.Fatalf("tenant answered %v, want login_required", cb.Query())
			}
			w := u.callback(cb)
			if off {
				if w.Code != http.StatusForbidden {
					t.Fatalf("got %d, want 403", w.Code)
				}
				return
			}
			q := query(t, w.Header().Get("Location"))
			if w.Code != http.StatusFound || q.Get("prompt") != "" || q.Get("state") == ar.State {
				t.Fatalf("got %d to %v, want a new interactive authorization", w.Code, q)
			}
			if _, ok := u.cookies[ar.Cookie().Name]; ok {
				t.Error("the silent transaction's cookie was kept")
			}
			w = u.callback(u.authorize(w))
			if loc := w.Header().Get("Location"); w.Code != http.StatusFound || loc != "/private?x=1" {
				t.Fatalf("interactive login: %d to %q, want the silent login's return path", w.Code, loc)
			}
		})
	}
}

// Browser detection: navigations (Chromium's and curl's) are redirected,
// fetch/XHR and API clients get 401.
func TestNavigationDetection(t *testing.T) {
	chromium := map[string]string{ // what Chromium sends for a typed URL / link
		"Accept":         "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
		"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "none", "Sec-Fetch-User": "?1",
	}
	tests := []struct {
		name     string
		method   string
		headers  map[string]string
		redirect bool
	}{
		{"chromium navigation", http.MethodGet, chromium, true},
		{"chromium fetch", http.MethodGet, map[string]string{"Accept": "*/*", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, false},
		{"fetch asking for html", http.MethodGet, map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "cors"}, false},
		{"iframe without mode", http.MethodGet, map[string]string{"Sec-Fetch-Dest": "iframe"}, true},
		{"image without mode", http.MethodGet, map[string]string{"Sec-Fetch-Dest": "image", "Accept": "text/html"}, false},
		{"curl", http.MethodGet, map[string]string{"Accept": "*/*", "User-Agent": "curl/8.5.0"}, true},
		{"go client, no Accept", http.MethodGet, map[string]string{"Accept": ""}, true},
		{"HEAD, no Accept", http.MethodHead, map[string]string{"Accept": ""}, true},
		{"xhr", http.MethodGet, map[string]string{"Accept": "*/*", "X-Requested-With": "XMLHttpRequest"}, false},
		{"json client", http.MethodGet, map[string]string{"Accept": "application/json"}, false},
		{"json or anything", http.MethodGet, map[string]string{"Accept": "application/json, */*;q=0.1"}, false},
		{"old browser, html", http.MethodGet, map[string]string{"Accept": "text/html"}, true},
		{"POST without Accept", http.MethodPost, map[string]string{"Accept": ""}, false},
	}
	h := newHarness(t, harnessOpts{})
	h.mux.Handle("HEAD "+pathPrivate, h.c.RequireLogin(http.NotFoundHandler()))
	h.mux.Handle("POST "+pathPrivate, h.c.RequireLogin(http.NotFoundHandler()))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := h.alice().do(tc.method, pathPrivate, tc.headers)
			if tc.redirect != (w.Code == http.StatusFound) || (!tc.redirect && w.Code != http.StatusUnauthorized) {
				t.Errorf("got %d, want redirect=%v (else 401)", w.Code, tc.redirect)
			}
		})
	}
	// Config.Navigation changes the default for requests that say nothing.
	h2 := newHarness(t, harnessOpts{client: func(c *Config) { c.Navigation = func(*http.Request) bool { return false } }})
	if w := h2.alice().do(http.MethodGet, pathPrivate, map[string]string{"Accept": "*/*"}); w.Code != http.StatusUnauthorized {
		t.Errorf("Navigation false, curl: %d, want 401", w.Code)
	}
	if w := h2.alice().do(http.MethodGet, pathPrivate, chromium); w.Code != http.StatusFound {
		t.Errorf("Navigation false, chromium: %d, want a redirect (Sec-Fetch-Mode decides)", w.Code)
	}
}

// Token and TokenSource take "" as Config.Audience.
func TestEmptyAudienceIsConfigAudience(t *testing.T) {
	const api = "https://api.fabrikam.example/"
	h := newHarness(t, harnessOpts{
		tenant: auth0test.Config{APIs: []auth0test.API{{Identifier: api}}},
		client: func(c *Config) { c.Audience = api },
	})
	u := h.alice()
	u.visit(pathPrivate)
	s := u.session()
	tok, err := h.c.Token(context.Background(), s, "")
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("Token(s, \"\"): %v", err)
	}
	ts := h.c.TokenSource(context.Background(), s.Handle, TokenSourceOptions{})
	got, err := ts.Token()
	if err != nil || got.AccessToken != tok.AccessToken {
		t.Fatalf("TokenSource{Audience: \"\"}: %v", err)
	}
}

// A worker-only process needs no RedirectURL: jobs work, logins fail with
// ErrInvalidConfig.
func TestWorkerOnlyClient(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.alice()
	u.visit(pathSalaries)
	handle := u.session().Handle
	w := h.newClient(h.cs, func(c *Config) { c.RedirectURL = "" })
	if _, err := w.SessionFor(context.Background(), handle, MFA); err != nil {
		t.Fatalf("SessionFor on the worker: %v", err)
	}
	if _, err := w.AuthorizeURL(context.Background(), AuthorizeOptions{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("AuthorizeURL: %v, want ErrInvalidConfig", err)
	}
	if _, err := w.Exchange(context.Background(), url.Values{"state": {"x"}, "code": {"y"}}, "t"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Exchange: %v, want ErrInvalidConfig", err)
	}
	rec := serve(w.LoginHandler(), "/login", nil)
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("LoginHandler: %d, want 500", rec.Code)
	}
	rec = serve(w.RequireLogin(http.NotFoundHandler()), "/private", map[string]string{"Accept": "text/html"})
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("RequireLogin redirecting: %d, want 500", rec.Code)
	}
}

// serve sends one GET for target to hd with headers.
func serve(hd http.Handler, target string, headers map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	hd.ServeHTTP(w, r)
	return w
}

// query returns the query of the URL u.
func query(t *testing.T, u string) url.Values {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatalf("parsing %q: %v", u, err)
	}
	return p.Query()
}

// forEachSharedStore runs f with a harness whose Client (with claimsHook)
// and a replica share one Store: the memory store, and Redis when the test
// environment has it.
func forEachSharedStore(t *testing.T, f func(t *testing.T, h *harness, replica *Client)) {
	hook := func(c *Config) { c.BeforeSession = claimsHook }
	t.Run("memory", func(t *testing.T) {
		h := newHarness(t, harnessOpts{client: hook})
		f(t, h, h.newClient(h.cs, hook))
	})
	t.Run("redis", func(t *testing.T) {
		rs, err := redisstore.New(redistest.Client(t), redisstore.Options{Prefix: redistest.Prefix(t)})
		if err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, harnessOpts{client: hook})
		h.c = h.newClient(rs, hook)
		h.mux = h.newMux(h.c)
		f(t, h, h.newClient(rs, hook))
	})
}

// An idle timeout above the default lifetime raises the lifetime when it is
// not set; set both and the idle timeout may not exceed it (client_config_test).
func TestIdleTimeoutRaisesDefaultLifetime(t *testing.T) {
	c, _, _ := offlineClient(t, func(cfg *Config) { cfg.SessionIdleTimeout = 24 * time.Hour })
	if c.cfg.SessionLifetime != 24*time.Hour {
		t.Errorf("SessionLifetime %s, want 24h", c.cfg.SessionLifetime)
	}
}

// A login of the same user for another organization starts a new session.
func TestOtherOrganizationStartsNewSession(t *testing.T) {
	c, _, _ := offlineClient(t, nil)
	ctx := context.Background()
	a, err := c.StartSession(ctx, &LoginResult{IDToken: &IDToken{Subject: "auth0|x", OrgID: "org_a"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	same, err := c.StartSession(ctx, &LoginResult{IDToken: &IDToken{Subject: "auth0|x", OrgID: "org_a"}}, a)
	if err != nil || same.Handle != a.Handle {
		t.Fatalf("same organization: %v, handle kept %v", err, same != nil && same.Handle == a.Handle)
	}
	b, err := c.StartSession(ctx, &LoginResult{IDToken: &IDToken{Subject: "auth0|x", OrgID: "org_b"}}, same)
	if err != nil || b.Handle == a.Handle || b.OrgID != "org_b" {
		t.Fatalf("other organization: %v, handle kept %v", err, b != nil && b.Handle == a.Handle)
	}
	if _, err := c.Session(ctx, a.Handle); !errors.Is(err, ErrNoSession) {
		t.Errorf("the org_a session lives on: %v", err)
	}
}
