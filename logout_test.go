package stepup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stepupauth/stepup/store"
)

// refreshTokenTap records the refresh tokens the tenant issues at
// /oauth/token and the tokens the Client revokes at /oauth/revoke.
type refreshTokenTap struct {
	base    http.RoundTripper
	mu      sync.Mutex
	issued  []string // in order: the last is the chain's current token
	revoked []string
}

func (tap *refreshTokenTap) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/oauth/revoke" && r.Body != nil {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil {
			tap.mu.Lock()
			tap.revoked = append(tap.revoked, form.Get("token"))
			tap.mu.Unlock()
		}
	}
	resp, err := tap.base.RoundTrip(r)
	if err != nil || r.URL.Path != "/oauth/token" {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var tr struct {
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(body, &tr) == nil && tr.RefreshToken != "" {
		tap.mu.Lock()
		tap.issued = append(tap.issued, tr.RefreshToken)
		tap.mu.Unlock()
	}
	return resp, nil
}

// LogoutHandler ends the session through Client.Logout: after a worker's
// refresh rotated the session's refresh token (the token record is the
// authority on the chain), Logout must revoke the current one, delete the
// session with its token, ID-token and lease records and its index, and
// send the browser to the tenant's /oidc/logout.
func TestLogoutHandlerRevokesCurrentRefreshToken(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	tap := &refreshTokenTap{}
	c := e.client(nil, func(cfg *Config) {
		tap.base = cfg.HTTPClient.Transport
		cfg.HTTPClient = &http.Client{Timeout: cfg.HTTPClient.Timeout, Transport: tap}
	})
	s := e.login(c, Login)
	cookie := c.SessionCookie(s)
	ctx := context.Background()

	// A page load before the refresh: it moves the TTL, writes nothing.
	if _, err := c.LoadSession(ctx, cookie.Value); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(wkAccessLifetime)
	if _, err := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token(); err != nil {
		t.Fatalf("worker refresh: %v", err)
	}
	if len(tap.issued) != 2 {
		t.Fatalf("refresh tokens issued: %d, want 2 (login, rotation)", len(tap.issued))
	}
	login, current := tap.issued[0], tap.issued[1]
	stored, err := c.Session(ctx, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := c.Token(ctx, stored, wkAPI); err != nil || tok.RefreshToken != current {
		t.Fatalf("the token record should hold the rotated-in refresh token (%v)", err)
	}
	leaseKey := c.leaseKey(s.Handle, wkAPI, refreshHash(login), 0)
	if _, err := e.store.Get(ctx, leaseKey); err != nil {
		t.Fatalf("no lease record after the refresh: %v", err)
	}

	r := httptest.NewRequest(http.MethodPost, "/logout", nil)
	r.Header.Set("Origin", "http://127.0.0.1:8080")
	r.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	w := httptest.NewRecorder()
	c.LogoutHandler().ServeHTTP(w, r)

	if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || !strings.HasPrefix(loc, e.tn.URL()+"/oidc/logout?") {
		t.Errorf("got %d to %q, want a redirect to the tenant's /oidc/logout", w.Code, loc)
	}
	var cleared bool
	for _, ck := range w.Result().Cookies() {
		cleared = cleared || (ck.Name == cookie.Name && ck.MaxAge < 0)
	}
	if !cleared {
		t.Error("the session cookie was not cleared")
	}
	if !slices.Contains(tap.revoked, current) {
		t.Errorf("revoked %d token(s), not the current (rotated-in) refresh token", len(tap.revoked))
	}
	for _, key := range []string{c.sessionKey(s.Handle), c.tokenKey(s.Handle, wkAPI), c.idTokenKey(s.Handle), leaseKey} {
		if _, err := e.store.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("record %q after logout: %v, want store.ErrNotFound", strings.SplitN(key, ":", 2)[0], err)
		}
	}
	if m, err := e.store.IndexMembers(ctx, c.handleIndexKey(s.Handle)); err != nil || len(m) != 0 {
		t.Errorf("the session's index after logout: %v, %v", m, err)
	}
	if _, err := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token(); !errors.Is(err, ErrNoSession) {
		t.Errorf("worker after logout: %v, want ErrNoSession", err)
	}
	if got := e.refreshEvents()["revoked"]; got != 1 {
		t.Errorf("tenant: family revoked %d times, want 1", got)
	}
}

// After Client.Logout deleted the session, only the tenant's refusals to
// revoke remain, and they do not stop the browser's logout; a store failure
// (the session may still be live) does.
func TestOnlyRevocationErrors(t *testing.T) {
	revokeFailed := &TenantError{Endpoint: "/oauth/revoke", StatusCode: 503, Code: "Service Unavailable"}
	storeDown := fmt.Errorf("stepup: deleting the session: %w", errors.Join(store.ErrUnavailable, errStoreDown))
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"one revocation", errors.Join(revokeFailed), true},
		{"two revocations", errors.Join(revokeFailed, &TenantError{Endpoint: "/oauth/revoke", Err: errors.New("connection refused")}), true},
		{"store down", storeDown, false},
		{"store down and a revocation", errors.Join(revokeFailed, storeDown), false},
		{"other error", errors.New("stepup: signing the client assertion: bad key"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := onlyRevocationErrors(tc.err); got != tc.want {
				t.Errorf("onlyRevocationErrors(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// appOrigin is the harness's app origin (that of its RedirectURL).
const appOrigin = "http://127.0.0.1:8080"

// signOut posts the sign-out form as the app's own page does.
func (u *user) signOut(form url.Values) *httptest.ResponseRecorder {
	u.h.t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/logout", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Origin", appOrigin)
	for _, ck := range u.cookies {
		r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	w := httptest.NewRecorder()
	u.mux.ServeHTTP(w, r)
	for _, ck := range w.Result().Cookies() {
		if ck.MaxAge < 0 {
			delete(u.cookies, ck.Name)
		}
	}
	return w
}

// The app's sign-out ends the session, revokes its refresh token, and sends
// the browser to /oidc/logout with the session's ID token and sid as hints:
// the tenant ends that session without asking, and returns to the app.
func TestLogout(t *testing.T) {
	h := newHarness(t, harnessOpts{client: func(c *Config) {
		c.Scopes = []string{"openid", "profile", "email", "offline_access"}
	}})
	u := h.alice()
	u.visit(pathPrivate)
	s := u.session()
	ctx := context.Background()
	tok, _ := h.c.Token(ctx, s, "")
	if tok == nil || tok.RefreshToken == "" {
		t.Fatal("no refresh token to revoke")
	}
	idt, err := h.c.IDToken(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var events []Event
	h.c.cfg.Events = func(_ context.Context, e Event) { events = append(events, e) }
	w := u.signOut(nil)
	loc, _ := url.Parse(w.Header().Get("Location"))
	q := loc.Query()
	if w.Code != http.StatusSeeOther || loc.Path != "/oidc/logout" || q.Get("client_id") != h.c.cfg.ClientID ||
		q.Get("post_logout_redirect_uri") != appOrigin+"/" || q.Get("id_token_hint") != idt || q.Get("logout_hint") != s.SessionID {
		t.Fatalf("logout: %d to %s", w.Code, loc)
	}
	if _, ok := q["federated"]; ok {
		t.Error("federated sent without LogoutFederated")
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Error("the logout redirect may be cached")
	}
	if u.cookies[h.c.sessionCookie] != nil {
		t.Error("session cookie not cleared")
	}
	if _, err := h.c.Session(ctx, s.Handle); !errors.Is(err, ErrNoSession) {
		t.Errorf("session after logout: %v", err)
	}
	if h.tn.Calls("/oauth/revoke") != 1 {
		t.Errorf("revoke calls: %d", h.tn.Calls("/oauth/revoke"))
	}
	if got := h.refreshKinds()["revoked"]; got != 1 {
		t.Errorf("refresh families revoked: %d, want 1", got)
	}
	if len(events) != 1 || events[0].Kind != EventLogout || events[0].Reason != LogoutLocal || events[0].Sessions != 1 ||
		events[0].SessionID != s.SessionID || events[0].Subject != s.Subject {
		t.Errorf("events: %+v", events)
	}
	back, err := u.tb.Logout(ctx, loc.String())
	if err != nil {
		t.Fatalf("tenant logout: %v", err)
	}
	if slices.Contains(u.tb.Pages, "logout-confirm") {
		t.Error("the tenant asked to confirm: the hints did not name the session")
	}
	if u.tb.HasSession() {
		t.Error("the tenant's SSO session survived /oidc/logout")
	}
	if back == nil || back.String() != appOrigin+"/" {
		t.Errorf("the tenant returned to %v, want %s/", back, appOrigin)
	}
}

func (h *harness) refreshKinds() map[string]int {
	m := map[string]int{}
	for _, e := range h.tn.RefreshLog() {
		m[e.Kind]++
	}
	return m
}

// return_to chooses where the tenant sends the browser back (a local path
// on the app's origin); one that is not a safe local path is ignored.
// LogoutEndpointV2 uses /v2/logout with returnTo; federated is sent when
// asked for.
func TestLogoutReturnToAndEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name      string
		endpoint  string
		federated bool
		returnTo  string
		wantPath  string
		wantBack  string
	}{
		{"oidc default", "", false, "", "/oidc/logout", appOrigin + "/"},
		{"oidc return_to", LogoutEndpointOIDC, false, "/bye?x=1", "/oidc/logout", appOrigin + "/bye?x=1"},
		{"oidc foreign return_to ignored", "", false, "//evil.example/", "/oidc/logout", appOrigin + "/"},
		{"oidc absolute return_to ignored", "", false, "https://evil.example/", "/oidc/logout", appOrigin + "/"},
		{"v2", LogoutEndpointV2, false, "", "/v2/logout", appOrigin + "/"},
		{"v2 federated return_to", LogoutEndpointV2, true, "/bye", "/v2/logout", appOrigin + "/bye"},
		{"oidc federated", LogoutEndpointOIDC, true, "", "/oidc/logout", appOrigin + "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{client: func(c *Config) {
				c.LogoutEndpoint, c.LogoutFederated = tc.endpoint, tc.federated
			}})
			if err := h.tn.AddLogoutURL(h.c.cfg.ClientID, appOrigin+"/bye"); err != nil {
				t.Fatal(err)
			}
			u := h.alice()
			u.visit(pathPrivate)
			w := u.signOut(url.Values{"return_to": {tc.returnTo}})
			loc, _ := url.Parse(w.Header().Get("Location"))
			if w.Code != http.StatusSeeOther || loc.Path != tc.wantPath {
				t.Fatalf("logout: %d to %s, want %s", w.Code, loc, tc.wantPath)
			}
			q := loc.Query()
			ret := q.Get("post_logout_redirect_uri")
			if tc.wantPath == "/v2/logout" {
				ret = q.Get("returnTo")
				if q.Has("id_token_hint") || q.Has("post_logout_redirect_uri") {
					t.Errorf("/v2/logout got OIDC parameters: %s", loc.RawQuery)
				}
			}
			if ret != tc.wantBack {
				t.Errorf("return URL %q, want %q", ret, tc.wantBack)
			}
			if q.Has("federated") != tc.federated {
				t.Errorf("federated sent: %v, want %v", q.Has("federated"), tc.federated)
			}
			back, err := u.tb.Logout(context.Background(), loc.String())
			if err != nil {
				t.Fatalf("tenant logout: %v", err)
			}
			if back == nil || back.String() != tc.wantBack {
				t.Errorf("the tenant returned to %v, want %s", back, tc.wantBack)
			}
			if u.tb.HasSession() {
				t.Error("the tenant's session survived")
			}
		})
	}
	h := newHarness(t, harnessOpts{})
	if _, err := h.c.LogoutURL(LogoutOptions{ReturnTo: "https://evil.example/"}); !errors.Is(err, ErrInvalidAuthorizeOptions) {
		t.Errorf("LogoutURL with a foreign ReturnTo: %v, want ErrInvalidAuthorizeOptions", err)
	}
}

// A sign-out that another site caused (a link, an auto-submitting form) is
// refused with ErrCrossSiteRequest (403) and changes nothing: the session,
// its token records and the tenant's refresh-token family stay.
func TestLogoutRefusesCrossSite(t *testing.T) {
	var gotErr error
	h := newHarness(t, harnessOpts{client: func(c *Config) {
		c.Scopes = []string{"openid", "profile", "email", "offline_access"}
		c.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			gotErr = err
			DefaultErrorHandler(w, r, err)
		}
	}})
	u := h.alice()
	u.visit(pathPrivate)
	s := u.session()
	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"cross-site form", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}},
		{"same-site sibling", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:9090"}},
		{"sec-fetch-site none", map[string]string{"Sec-Fetch-Site": "none"}},
		{"cross-site claiming our origin", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": appOrigin}},
		{"same-origin with another Origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"}},
		{"foreign origin only", map[string]string{"Origin": "https://evil.example"}},
		{"null origin", map[string]string{"Origin": "null"}},
		{"https origin of our host", map[string]string{"Origin": "https://127.0.0.1:8080"}},
		{"origin with a path", map[string]string{"Origin": appOrigin + "/x"}},
		{"no header at all", nil},
		{"foreign referer only", map[string]string{"Referer": "https://evil.example/page"}},
		{"referer of a lookalike host", map[string]string{"Referer": "http://127.0.0.1:8080.evil.example/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotErr = nil
			r := httptest.NewRequest(http.MethodPost, "/logout", strings.NewReader("return_to=%2F"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			for _, ck := range u.cookies {
				r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
			}
			w := httptest.NewRecorder()
			h.mux.ServeHTTP(w, r)
			if w.Code != http.StatusForbidden || !errors.Is(gotErr, ErrCrossSiteRequest) {
				t.Fatalf("got %d (%v), want 403 with ErrCrossSiteRequest", w.Code, gotErr)
			}
			for _, ck := range w.Result().Cookies() {
				if ck.Name == h.c.sessionCookie {
					t.Error("the refused request touched the session cookie")
				}
			}
		})
	}
	if got := u.session(); got.Handle != s.Handle {
		t.Fatal("the session changed")
	}
	if _, err := h.c.Token(context.Background(), s, ""); err != nil {
		t.Errorf("the token record after refused sign-outs: %v", err)
	}
	if n := h.tn.Calls("/oauth/revoke"); n != 0 {
		t.Errorf("revocations: %d, want 0", n)
	}

	// Accepted: what browsers send from the app's own page, in its forms.
	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"fetch metadata and origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": appOrigin}},
		{"origin only (older browsers)", map[string]string{"Origin": appOrigin}},
		{"origin with default port spelled", map[string]string{"Origin": "HTTP://127.0.0.1:8080"}},
		{"sec-fetch-site only", map[string]string{"Sec-Fetch-Site": "same-origin"}},
		{"referer only (no Origin, no fetch metadata)", map[string]string{"Referer": appOrigin + "/customers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := h.alice()
			v.visit(pathPrivate)
			vs := v.session()
			r := httptest.NewRequest(http.MethodPost, "/logout", nil)
			for k, val := range tc.headers {
				r.Header.Set(k, val)
			}
			for _, ck := range v.cookies {
				r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
			}
			w := httptest.NewRecorder()
			h.mux.ServeHTTP(w, r)
			if w.Code != http.StatusSeeOther {
				t.Fatalf("got %d, want 303 (%s)", w.Code, w.Body.String())
			}
			if _, err := h.c.Session(context.Background(), vs.Handle); !errors.Is(err, ErrNoSession) {
				t.Errorf("session after sign-out: %v", err)
			}
		})
	}
}

// GET /logout is a page with a sign-out button (a POST form that keeps
// return_to), which may not be framed; it ends nothing. Other methods: 405.
func TestLogoutGetShowsButton(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.alice()
	u.visit(pathPrivate)
	s := u.session()
	w := u.do(http.MethodGet, "/logout?return_to=%2Fbye", map[string]string{"Sec-Fetch-Site": "cross-site"})
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, `<form method="post" action="/logout">`) ||
		!strings.Contains(body, `name="return_to" value="/bye"`) || !strings.Contains(body, `id="stepup-signout"`) {
		t.Fatalf("GET /logout: %d %q", w.Code, body)
	}
	if csp := w.Header().Get("Content-Security-Policy"); csp != "frame-ancestors 'none'" || w.Header().Get("X-Frame-Options") != "DENY" {
		t.Errorf("the sign-out page may be framed (CSP %q)", csp)
	}
	w = u.get("/logout?return_to=https://evil.example/")
	if strings.Contains(w.Body.String(), "evil") {
		t.Errorf("a foreign return_to reached the page: %q", w.Body.String())
	}
	if w := u.do(http.MethodDelete, "/logout", map[string]string{"Origin": appOrigin}); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /logout: %d, want 405", w.Code)
	}
	if got := u.session(); got.Handle != s.Handle {
		t.Error("GET ended the session")
	}
}

// A store that fails during the sign-out answers 503 through ErrorHandler:
// the session may still be live, so the user is not sent on as signed out.
func TestLogoutStoreDown(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.alice()
	u.visit(pathPrivate)
	h.cs.failing.Store(true)
	w := u.signOut(nil)
	h.cs.failing.Store(false)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Location") != "" {
		t.Fatalf("got %d to %q, want 503", w.Code, w.Header().Get("Location"))
	}
	if _, ok := u.cookies[h.c.sessionCookie]; !ok {
		t.Error("the cookie was cleared although the session may be live")
	}
}

func FuzzNormalizeOrigin(f *testing.F) {
	for _, s := range []string{appOrigin, "https://a.example", "https://a.example:443", "null", "http://[::1]:80", "https://a.example/x", "HTTP://A.EXAMPLE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, ok := normalizeOrigin(s)
		if !ok {
			return
		}
		again, ok2 := normalizeOrigin(o)
		if !ok2 || again != o {
			t.Fatalf("normalizeOrigin(%q) = %q, which normalizes to %q, %v", s, o, again, ok2)
		}
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			t.Fatalf("normalizeOrigin(%q) = %q", s, o)
		}
	})
}
