package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/store/storetest"
)

// TestMain lets a test run the real main in a child process (exit codes,
// signals): the child is this test binary with STEPUP_DEMO_RUN_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("STEPUP_DEMO_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// syncBuffer collects a demo's output; written by the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is a demo started in-process by startDemo.
type running struct {
	*demo
	url    string // where it listens, "http://127.0.0.1:PORT"
	stdout *syncBuffer
	stderr *syncBuffer
}

// startDemo runs the demo in-process with env (STEPUP_ADDR defaults to a
// free loopback port) and stops it, checking a clean shutdown, when t ends.
func startDemo(t *testing.T, env map[string]string) *running {
	t.Helper()
	return startDemoAt(t, env, nil)
}

// startDemoAt is startDemo with a clock (nil: time.Now).
func startDemoAt(t *testing.T, env map[string]string, now func() time.Time) *running {
	t.Helper()
	if _, ok := env["STEPUP_ADDR"]; !ok {
		env["STEPUP_ADDR"] = "127.0.0.1:0"
	}
	if _, ok := env["STEPUP_DEMO_CA_DIR"]; !ok {
		env["STEPUP_DEMO_CA_DIR"] = t.TempDir() // never the user's own demo CA
	}
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	readyc := make(chan *demo, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, getenv, r.stdout, r.stderr, hooks{ready: func(d *demo) { readyc <- d }, now: now})
	}()
	select {
	case d := <-readyc:
		r.demo = d
	case err := <-done:
		cancel()
		t.Fatalf("demo did not start: %v\nstderr:\n%s", err, r.stderr)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("demo did not start within 20 s")
	}
	r.url = strings.TrimSuffix(r.apiURL, "/api/employees")
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo shutdown: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("demo did not shut down within 15 s")
		}
	})
	return r
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// sharedTenant starts a tenant like the README's own tenant: one
// application with the given callback bases, the API and the demo's two
// Actions. It returns the tenant and the demo environment that points at it
// (AUTH0_DOMAIN and SSL_CERT_FILE with the tenant's CA in a temp file).
func sharedTenant(t *testing.T, bases ...string) (*auth0test.Tenant, map[string]string) {
	t.Helper()
	return sharedTenantWith(t, newDemoActions("https://stepup.example/", time.Now), bases...)
}

// sharedTenantWith is sharedTenant with another post-login Action.
func sharedTenantWith(t *testing.T, action func(*auth0test.ActionEvent, *auth0test.ActionAPI), bases ...string) (*auth0test.Tenant, map[string]string) {
	t.Helper()
	return sharedTenantConfig(t, auth0test.Config{Action: action}, bases...)
}

// sharedTenantConfig is sharedTenant with cfg's Action, Users and
// IgnoreACRValues.
func sharedTenantConfig(t *testing.T, cfg auth0test.Config, bases ...string) (*auth0test.Tenant, map[string]string) {
	t.Helper()
	const (
		clientID = "fabrikam-intranet"
		secret   = "a-secret-shared-by-every-replica-0123456789abcdef"
		audience = "https://fabrikam.example/api"
	)
	app := auth0test.Application{Name: "Fabrikam intranet", ClientID: clientID, ClientSecret: secret}
	for _, b := range bases {
		app.CallbackURLs = append(app.CallbackURLs, b+"/callback")
		app.LogoutURLs = append(app.LogoutURLs, b+"/")
	}
	tn := auth0test.NewTenant(t, auth0test.Config{
		Applications:    []auth0test.Application{app},
		APIs:            []auth0test.API{{Identifier: audience}},
		Action:          cfg.Action,
		Users:           cfg.Users,
		IgnoreACRValues: cfg.IgnoreACRValues,
	})
	ca := filepath.Join(t.TempDir(), "tenant-ca.pem")
	if err := os.WriteFile(ca, tn.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return tn, map[string]string{
		"AUTH0_DOMAIN":        tn.Domain(),
		"AUTH0_CLIENT_ID":     clientID,
		"AUTH0_CLIENT_SECRET": secret,
		"AUTH0_AUDIENCE":      audience,
		"SSL_CERT_FILE":       ca,
	}
}

// agent is a user agent for the demo: a cookie jar, no automatic redirects.
type agent struct {
	t *testing.T
	c *http.Client
}

func newAgent(t *testing.T) *agent {
	jar, _ := cookiejar.New(nil)
	return &agent{t: t, c: &http.Client{
		Jar:           jar,
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// get fetches u and returns the response with its body read.
func (a *agent) get(u string) (*http.Response, string) {
	a.t.Helper()
	return a.do(http.MethodGet, u, nil)
}

func (a *agent) do(method, u string, hdr http.Header) (*http.Response, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, u, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// errorPage expects resp to be a failed callback's redirect to
// /error?reason=want, follows it and returns the error page's response.
func (a *agent) errorPage(t *testing.T, base string, resp *http.Response, body, want string) (*http.Response, string) {
	t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || loc != "/error?reason="+want {
		t.Fatalf("callback: %d to %q, want 303 to /error?reason=%s; body %.300s", resp.StatusCode, loc, want, body)
	}
	if hasCookie(resp, "stepup_session") {
		t.Error("the failed callback set a session cookie")
	}
	return a.get(base + loc)
}

// cookie returns the agent's cookie name for base, or "".
func (a *agent) cookie(base, name string) string {
	u, _ := url.Parse(base)
	for _, c := range a.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// startLogin requests path and returns the tenant's authorize URL the demo
// redirected to.
func (a *agent) startLogin(base, path string) *url.URL {
	a.t.Helper()
	resp, body := a.get(base + path)
	if resp.StatusCode != http.StatusFound {
		a.t.Fatalf("GET %s: status %d, want 302; body %.300s", path, resp.StatusCode, body)
	}
	loc, err := resp.Location()
	if err != nil {
		a.t.Fatal(err)
	}
	return loc
}

// signIn requests path, goes through the tenant's pages with b and creds,
// brings the callback to callbackBase (the demo replica that receives it),
// and returns the callback's response.
func (a *agent) signIn(b *auth0test.Browser, base, path, callbackBase string, creds auth0test.Credentials) (*http.Response, string, *url.URL) {
	a.t.Helper()
	authz := a.startLogin(base, path)
	cb, err := b.Login(context.Background(), authz.String(), creds)
	if err != nil {
		a.t.Fatalf("login at the tenant: %v (pages %v)", err, b.Pages)
	}
	// Cookies are not isolated by port: replicas on one host see the
	// transaction cookie, as replicas behind one load balancer would.
	resp, body := a.get(callbackBase + "/callback?" + cb.RawQuery)
	return resp, body, cb
}

var alice = auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword}
var bob = auth0test.Credentials{Email: auth0test.BobEmail, Password: auth0test.BobPassword}

// newClock returns a fake clock that tests move, starting now.
func newClock() *storetest.Clock { return storetest.NewClock(time.Now()) }

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
