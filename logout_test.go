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
// send the browser to the tenant's /v2/logout.
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
	r.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	w := httptest.NewRecorder()
	c.LogoutHandler().ServeHTTP(w, r)

	if loc := w.Header().Get("Location"); w.Code != http.StatusFound || !strings.HasPrefix(loc, e.tn.URL()+"/v2/logout?") {
		t.Errorf("got %d to %q, want a redirect to the tenant's /v2/logout", w.Code, loc)
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
