package stepup

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/store"
)

// harness is an app (a ServeMux with the Client's middleware and handlers)
// in front of an auth0test tenant, sharing one moving clock.
type harness struct {
	t     *testing.T
	tn    *auth0test.Tenant
	clock *testClock
	mem   *store.Memory
	cs    *countingStore
	c     *Client
	mux   *http.ServeMux
}

type harnessOpts struct {
	tenant auth0test.Config
	client func(*Config)
}

const (
	pathPrivate  = "/private"  // RequireLogin
	pathSalaries = "/salaries" // RequireStepUp(MFA)
	pathFresh    = "/fresh"    // RequireStepUp(MFA within 5 minutes)
	pathReports  = "/reports"  // RequireStepUp(MFA within 10 minutes)
)

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	h := &harness{t: t, clock: newTestClock()}
	tcfg := o.tenant
	tcfg.Now = h.clock.Now
	h.tn = auth0test.NewTenant(t, tcfg)
	h.mem = store.NewMemory(store.MemoryOptions{Now: h.clock.Now, SweepInterval: -1})
	t.Cleanup(func() { h.mem.Close() })
	h.cs = &countingStore{Store: h.mem}
	h.c = h.newClient(h.cs, o.client)
	h.mux = h.newMux(h.c)
	return h
}

// newClient makes another Client of the same application on store s (a
// replica, when s is shared).
func (h *harness) newClient(s store.Store, mutate func(*Config)) *Client {
	h.t.Helper()
	app := auth0test.DefaultApplication()
	cfg := Config{
		Domain:       h.tn.Domain(),
		ClientID:     app.ClientID,
		ClientSecret: app.ClientSecret,
		RedirectURL:  app.CallbackURLs[0],
		Store:        s,
		SealingKeys:  [][]byte{sealTestKey(42)},
		HTTPClient:   h.tn.Client(),
		Now:          h.clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(context.Background(), cfg)
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

func (h *harness) newMux(c *Client) *http.ServeMux {
	mux := http.NewServeMux()
	show := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := SessionFromContext(r.Context())
		if !ok {
			http.Error(w, "no session in context", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("hello " + s.Subject))
	})
	mux.Handle("GET "+pathPrivate, c.RequireLogin(show))
	mux.Handle("GET "+pathSalaries, c.RequireStepUp(MFA)(show))
	mux.Handle("GET "+pathFresh, c.RequireStepUp(MFA.WithMaxAge(5*time.Minute).Named("fresh"))(show))
	mux.Handle("GET "+pathReports, c.RequireStepUp(MFA.WithMaxAge(10*time.Minute).Named("reports"))(show))
	mux.Handle("GET /callback", c.CallbackHandler())
	mux.Handle("GET /login", c.LoginHandler())
	mux.Handle("/logout", c.LogoutHandler())
	return mux
}

// user is one person: a browser for the app (its cookies) and one for the
// tenant (its SSO cookie).
type user struct {
	h       *harness
	mux     *http.ServeMux
	cookies map[string]*http.Cookie
	tb      *auth0test.Browser
	creds   auth0test.Credentials
}

func (h *harness) alice() *user {
	return h.newUser(auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword})
}

func (h *harness) newUser(creds auth0test.Credentials) *user {
	return &user{h: h, mux: h.mux, cookies: map[string]*http.Cookie{}, tb: h.tn.NewBrowser(), creds: creds}
}

// do sends one request to the app with the user's cookies, as a browser
// navigation unless headers say otherwise, and keeps the cookies it sets.
func (u *user) do(method, target string, headers map[string]string) *httptest.ResponseRecorder {
	u.h.t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml")
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	for _, ck := range u.cookies {
		r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	w := httptest.NewRecorder()
	u.mux.ServeHTTP(w, r)
	for _, ck := range w.Result().Cookies() {
		if ck.MaxAge < 0 {
			delete(u.cookies, ck.Name)
		} else {
			u.cookies[ck.Name] = ck
		}
	}
	return w
}

func (u *user) get(target string) *httptest.ResponseRecorder {
	return u.do(http.MethodGet, target, nil)
}

// authorize follows a redirect to the tenant through its hosted pages and
// returns the callback URL.
func (u *user) authorize(w *httptest.ResponseRecorder) *url.URL {
	u.h.t.Helper()
	loc := w.Header().Get("Location")
	if w.Code != http.StatusFound || !strings.HasPrefix(loc, u.h.tn.URL()+"/authorize") {
		u.h.t.Fatalf("got %d to %q, want a redirect to the tenant's /authorize (body %q)", w.Code, loc, w.Body.String())
	}
	cb, err := u.tb.Login(context.Background(), loc, u.creds)
	if err != nil {
		u.h.t.Fatalf("tenant login: %v", err)
	}
	return cb
}

// callback delivers the tenant's callback URL to the app.
func (u *user) callback(cb *url.URL) *httptest.ResponseRecorder {
	return u.get(cb.RequestURI())
}

// visit loads a protected page, logging in (or stepping up) on the way if
// asked to, and returns the final answer.
func (u *user) visit(path string) *httptest.ResponseRecorder {
	u.h.t.Helper()
	w := u.get(path)
	if w.Code != http.StatusFound {
		return w
	}
	w = u.callback(u.authorize(w))
	if w.Code != http.StatusFound {
		u.h.t.Fatalf("callback: got %d (%s), want a redirect back", w.Code, w.Body.String())
	}
	if got := w.Header().Get("Location"); got != path {
		u.h.t.Fatalf("callback redirected to %q, want %q", got, path)
	}
	return u.get(path)
}

func (u *user) session() *Session {
	u.h.t.Helper()
	ck, ok := u.cookies[u.h.c.sessionCookie]
	if !ok {
		u.h.t.Fatal("no session cookie")
	}
	s, err := u.h.c.LoadSession(context.Background(), ck.Value)
	if err != nil {
		u.h.t.Fatalf("LoadSession: %v", err)
	}
	return s
}

// startAuthorize begins an authorization directly with the Client and
// returns the request and the callback the tenant answers.
func (h *harness) startAuthorize(tb *auth0test.Browser, creds auth0test.Credentials, opts AuthorizeOptions) (*AuthorizeRequest, url.Values) {
	h.t.Helper()
	ar, err := h.c.AuthorizeURL(context.Background(), opts)
	if err != nil {
		h.t.Fatalf("AuthorizeURL: %v", err)
	}
	if tb == nil {
		tb = h.tn.NewBrowser()
	}
	cb, err := tb.Login(context.Background(), ar.URL, creds)
	if err != nil {
		h.t.Fatalf("tenant login: %v", err)
	}
	return ar, cb.Query()
}

var aliceCreds = auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword}

// tamperIDToken changes one character of the signature of the id_token in a
// token response.
func tamperIDToken(resp *http.Response) (*http.Response, error) {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	if raw, ok := m["id_token"].(string); ok && len(raw) > 10 {
		i := len(raw) - 5
		ch := byte('A')
		if raw[i] == 'A' {
			ch = 'B'
		}
		m["id_token"] = raw[:i] + string(ch) + raw[i+1:]
	}
	body, _ = json.Marshal(m)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}
