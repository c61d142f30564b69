package stepup

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/store"
)

// bclEnv is a wkEnv whose tenant delivers back-channel logout tokens, over
// TLS, to the BackChannelLogoutHandler of one of the replicas (receiver).
// readmeInitiators are the initiators the README's "Use your own tenant"
// asks for: Auth0's default rp-logout and idp-logout, and password changes,
// revoked sessions and deleted accounts.
var readmeInitiators = auth0test.LogoutInitiators{Mode: "custom", Selected: []string{
	auth0test.InitiatorRPLogout, auth0test.InitiatorIDPLogout, auth0test.InitiatorPasswordChanged,
	auth0test.InitiatorSessionRevoked, auth0test.InitiatorAccountDeleted}}

type bclEnv struct {
	*wkEnv
	srv      *httptest.Server
	receiver atomic.Pointer[Client]
	events   *eventLog
}

func (l *eventLog) logouts() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, e := range l.events {
		if e.Kind == EventLogout {
			out = append(out, e)
		}
	}
	return out
}

func newBCLEnv(t *testing.T, o wkOpts, initiators auth0test.LogoutInitiators) *bclEnv {
	t.Helper()
	e := &bclEnv{events: &eventLog{}}
	e.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := e.receiver.Load()
		if c == nil || r.URL.Path != "/backchannel-logout" {
			http.NotFound(w, r)
			return
		}
		c.BackChannelLogoutHandler().ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	inner := o.tenant
	o.tenant = func(cfg *auth0test.Config) {
		app := auth0test.DefaultApplication()
		app.BackChannelLogoutURLs = []string{e.srv.URL + "/backchannel-logout"}
		app.BackChannelLogoutInitiators = initiators
		cfg.Applications = []auth0test.Application{app}
		cfg.BackChannelLogoutClient = e.srv.Client()
		if inner != nil {
			inner(cfg)
		}
	}
	e.wkEnv = newWkEnv(t, o)
	return e
}

// replica returns a Client on the shared store that reports its events.
func (e *bclEnv) replica() *Client {
	return e.client(nil, func(cfg *Config) { cfg.Events = e.events.add })
}

// loginAs signs a user in through c from a fresh tenant browser (a new
// Auth0 session, so a new sid).
func (e *wkEnv) loginAs(c *Client, creds auth0test.Credentials) *Session {
	e.t.Helper()
	ctx := context.Background()
	ar, err := c.AuthorizeURL(ctx, AuthorizeOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	cb, err := e.tn.NewBrowser().Login(ctx, ar.URL, creds)
	if err != nil {
		e.t.Fatalf("tenant login: %v", err)
	}
	res, err := c.Exchange(ctx, cb.Query(), ar.Transaction)
	if err != nil {
		e.t.Fatalf("Exchange: %v", err)
	}
	s, err := c.StartSession(ctx, res, nil)
	if err != nil {
		e.t.Fatalf("StartSession: %v", err)
	}
	return s
}

var bobCreds = auth0test.Credentials{Email: auth0test.BobEmail, Password: auth0test.BobPassword}

// alive reports whether every session is live, read through c, with its
// login token record.
func alive(t *testing.T, c *Client, sessions ...*Session) bool {
	t.Helper()
	ctx := context.Background()
	for _, s := range sessions {
		got, err := c.Session(ctx, s.Handle)
		if errors.Is(err, ErrNoSession) {
			return false
		}
		if err != nil {
			t.Fatalf("Session: %v", err)
		}
		if _, err := c.Token(ctx, got, wkAPI); err != nil {
			t.Fatalf("a live session without its token record: %v", err)
		}
	}
	return true
}

// ended checks that nothing of s is left in the store.
func (e *wkEnv) ended(t *testing.T, c *Client, s *Session) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.Session(ctx, s.Handle); !errors.Is(err, ErrNoSession) {
		t.Errorf("session %s: %v, want ErrNoSession", handlePrefix(s.Handle), err)
	}
	for _, key := range []string{c.sessionKey(s.Handle), c.tokenKey(s.Handle, wkAPI), c.idTokenKey(s.Handle), c.outOfBandKey(s.Handle)} {
		if _, err := e.store.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("record %q of an ended session: %v", strings.SplitN(strings.TrimPrefix(key, c.cfg.KeyPrefix), ":", 2)[0], err)
		}
	}
	if m, err := e.store.IndexMembers(ctx, c.handleIndexKey(s.Handle)); err != nil || len(m) != 0 {
		t.Errorf("the index of an ended session: %v, %v", m, err)
	}
	if _, err := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token(); !errors.Is(err, ErrNoSession) {
		t.Errorf("a worker of an ended session: %v, want ErrNoSession", err)
	}
}

func (e *bclEnv) lastDelivery(t *testing.T) auth0test.LogoutDelivery {
	t.Helper()
	d := e.tn.LogoutDeliveries()
	if len(d) == 0 {
		t.Fatal("the tenant delivered no logout token")
	}
	return d[len(d)-1]
}

// A back-channel logout delivered to replica B ends, on every replica, the
// session of that sid (with its token and lease records; its refresh-token
// family revoked at the tenant), and leaves the user's other session alone.
func TestBackChannelLogoutAcrossReplicas(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    wkOpts
	}{{"memory", wkOpts{}}, {"redis", wkOpts{redis: true}}, {"cluster", wkOpts{cluster: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newBCLEnv(t, tc.o, readmeInitiators)
			a, b := e.replica(), e.replica()
			e.receiver.Store(b)
			ctx := context.Background()
			x := e.login(a, Login)
			y := e.loginAs(a, aliceCreds)
			if x.SessionID == "" || x.SessionID == y.SessionID {
				t.Fatalf("sids %q and %q", x.SessionID, y.SessionID)
			}
			// A worker refresh on x leaves a lease record.
			e.clock.Advance(wkAccessLifetime)
			if _, err := a.TokenSource(ctx, x.Handle, TokenSourceOptions{Audience: wkAPI}).Token(); err != nil {
				t.Fatal(err)
			}
			if !e.tn.EndSession(x.SessionID) {
				t.Fatal("the tenant had no session", x.SessionID)
			}
			if d := e.lastDelivery(t); d.Status != http.StatusOK || d.SID != x.SessionID {
				t.Fatalf("delivery: status %d (%s) for sid %q", d.Status, d.Err, d.SID)
			}
			e.ended(t, a, x)
			if !alive(t, a, y) || !alive(t, b, y) {
				t.Error("the other sid's session ended too")
			}
			if got := e.refreshEvents()["revoked"]; got != 1 {
				t.Errorf("refresh families revoked: %d, want 1", got)
			}
			ev := e.events.logouts()
			if len(ev) != 1 || ev[0].Reason != LogoutBackChannel || ev[0].Sessions != 1 || ev[0].SessionID != x.SessionID || ev[0].Subject != x.Subject {
				t.Errorf("logout events: %+v", ev)
			}
		})
	}
}

// The forged-token table, through the handler: each is answered 400 with
// the spec's JSON error, and every session lives on. Then a valid token for
// sid X ends X only; its replay, and another token with its jti, are 400.
func TestBackChannelLogoutRefusesForgedTokens(t *testing.T) {
	e := newBCLEnv(t, wkOpts{}, readmeInitiators)
	c := e.replica()
	x := e.login(c, Login)
	y := e.loginAs(c, aliceCreds)
	bob := e.loginAs(c, bobCreds)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cur, _, _ := e.tn.SigningKeys()
	n := 0
	claims := func(mutate func(map[string]any)) map[string]any {
		n++
		now := e.clock.Now().Unix()
		m := map[string]any{
			"iss": e.tn.Issuer(), "aud": c.cfg.ClientID, "iat": now, "exp": now + 120,
			"jti": fmt.Sprintf("forged-%d", n), "sid": x.SessionID, "sub": x.Subject,
			"events": map[string]any{backchannelLogoutEvent: map[string]any{}},
		}
		if mutate != nil {
			mutate(m)
		}
		return m
	}
	typ := map[string]any{"typ": "logout+jwt"}
	post := func(form url.Values, contentType string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/backchannel-logout", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		c.BackChannelLogoutHandler().ServeHTTP(w, r)
		return w
	}
	const formType = "application/x-www-form-urlencoded"
	deliver := func(tok string) *httptest.ResponseRecorder { return post(url.Values{"logout_token": {tok}}, formType) }
	want400 := func(t *testing.T, w *httptest.ResponseRecorder) {
		t.Helper()
		var raw map[string]string
		if w.Code != http.StatusBadRequest || w.Header().Get("Content-Type") != "application/json" ||
			json.Unmarshal(w.Body.Bytes(), &raw) != nil || raw["error"] != "invalid_request" || raw["error_description"] == "" {
			t.Fatalf("got %d %q, want 400 invalid_request", w.Code, w.Body.String())
		}
		if strings.Contains(w.Body.String(), "eyJ") {
			t.Errorf("the error echoes token content: %s", w.Body.String())
		}
	}
	for _, tc := range []struct {
		name string
		tok  func() string
	}{
		{"another key", func() string {
			return e.tn.SignWith(otherKey, map[string]any{"typ": "logout+jwt", "kid": cur.KID}, claims(nil))
		}},
		{"unknown kid", func() string { return e.tn.Sign(map[string]any{"typ": "logout+jwt", "kid": "nope"}, claims(nil)) }},
		{"alg none", func() string { return e.tn.Sign(map[string]any{"alg": "none", "typ": "logout+jwt"}, claims(nil)) }},
		{"HS256 with the public key", func() string { return e.tn.Sign(map[string]any{"alg": "HS256", "typ": "logout+jwt"}, claims(nil)) }},
		{"wrong aud", func() string { return e.tn.Sign(typ, claims(func(m map[string]any) { m["aud"] = "other-app" })) }},
		{"wrong iss", func() string {
			return e.tn.Sign(typ, claims(func(m map[string]any) { m["iss"] = "https://evil.example/" }))
		}},
		{"no events", func() string { return e.tn.Sign(typ, claims(func(m map[string]any) { delete(m, "events") })) }},
		{"events without the member", func() string {
			return e.tn.Sign(typ, claims(func(m map[string]any) { m["events"] = map[string]any{"urn:other": map[string]any{}} }))
		}},
		{"event member not an object", func() string {
			return e.tn.Sign(typ, claims(func(m map[string]any) { m["events"] = map[string]any{backchannelLogoutEvent: "x"} }))
		}},
		{"with nonce", func() string { return e.tn.Sign(typ, claims(func(m map[string]any) { m["nonce"] = "n" })) }},
		{"neither sid nor sub", func() string {
			return e.tn.Sign(typ, claims(func(m map[string]any) { delete(m, "sid"); delete(m, "sub") }))
		}},
		{"iat in the future", func() string {
			return e.tn.Sign(typ, claims(func(m map[string]any) { m["iat"] = e.clock.Now().Add(10 * time.Minute).Unix() }))
		}},
		{"expired", func() string {
			return e.tn.Sign(typ, claims(func(m map[string]any) {
				m["iat"] = e.clock.Now().Add(-10 * time.Minute).Unix()
				m["exp"] = e.clock.Now().Add(-5 * time.Minute).Unix()
			}))
		}},
		{"no jti", func() string { return e.tn.Sign(typ, claims(func(m map[string]any) { delete(m, "jti") })) }},
		{"an ID token's typ", func() string { return e.tn.Sign(map[string]any{"typ": "at+jwt"}, claims(nil)) }},
		{"not a JWT", func() string { return "not.a.jwt" }},
		{"sid over 1 KB", func() string {
			return e.tn.Sign(typ, claims(func(m map[string]any) { m["sid"] = strings.Repeat("s", 2048) }))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want400(t, deliver(tc.tok()))
			if !alive(t, c, x, y, bob) {
				t.Fatal("a forged token ended a session")
			}
		})
	}
	validClaims := claims(nil)
	valid := e.tn.Sign(typ, validClaims)
	for _, tc := range []struct {
		name        string
		form        url.Values
		contentType string
	}{
		{"no logout_token", url.Values{"token": {valid}}, formType},
		{"two logout_tokens", url.Values{"logout_token": {valid, valid}}, formType},
		{"JSON body", url.Values{"logout_token": {valid}}, "application/json"},
		{"over 64 KB", url.Values{"logout_token": {valid}, "pad": {strings.Repeat("a", 65<<10)}}, formType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want400(t, post(tc.form, tc.contentType))
			if !alive(t, c, x, y, bob) {
				t.Fatal("a bad request ended a session")
			}
		})
	}
	r := httptest.NewRequest(http.MethodGet, "/backchannel-logout?logout_token="+valid, nil)
	w := httptest.NewRecorder()
	c.BackChannelLogoutHandler().ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed || !alive(t, c, x) {
		t.Fatalf("GET: %d", w.Code)
	}
	if n := len(e.events.logouts()); n != 0 {
		t.Fatalf("%d logout events before any valid token", n)
	}

	w = deliver(valid)
	if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("a valid token: %d %q", w.Code, w.Body.String())
	}
	e.ended(t, c, x)
	if !alive(t, c, y, bob) {
		t.Fatal("a token for sid X ended another session")
	}
	t.Run("replayed jti", func(t *testing.T) { want400(t, deliver(valid)) })
	t.Run("same jti for another sid", func(t *testing.T) {
		want400(t, deliver(e.tn.Sign(typ, claims(func(m map[string]any) { m["jti"] = validClaims["jti"]; m["sid"] = y.SessionID }))))
		if !alive(t, c, y) {
			t.Fatal("a replayed jti ended a session")
		}
	})
	// sub alone: every session of the user.
	w = deliver(e.tn.Sign(typ, claims(func(m map[string]any) { delete(m, "sid") })))
	if w.Code != http.StatusOK {
		t.Fatalf("sub-only token: %d %s", w.Code, w.Body.String())
	}
	e.ended(t, c, y)
	if !alive(t, c, bob) {
		t.Fatal("a token for alice ended bob's session")
	}
}

// deleteFailStore fails its next failDeletes Delete calls, as a store that
// breaks in the middle of a logout.
type deleteFailStore struct {
	store.Store
	failDeletes atomic.Int64
}

func (s *deleteFailStore) Delete(ctx context.Context, k string) error {
	if s.failDeletes.Add(-1) >= 0 {
		return errors.Join(store.ErrUnavailable, errWkStoreDown)
	}
	return s.Store.Delete(ctx, k)
}

// A store failure in the middle of a back-channel logout answers 503 and
// leaves the jti free, so that the tenant's retry of the same token ends
// the sessions. When even the release failed, a retry is 503 until the
// claim's 30 s have passed, then it ends them; once done, it is a replay.
func TestBackChannelLogoutStoreFailureIsRetryable(t *testing.T) {
	for _, tc := range []struct {
		name        string
		failDeletes int64 // the first is the session's record; the next the jti's release
		wait        bool
	}{{"released", 1, false}, {"release failed too", 2, true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newBCLEnv(t, wkOpts{}, readmeInitiators)
			fs := &deleteFailStore{Store: e.store}
			c := e.client(fs, func(cfg *Config) { cfg.Events = e.events.add })
			x := e.login(c, Login)
			now := e.clock.Now().Unix()
			tok := e.tn.Sign(map[string]any{"typ": "logout+jwt"}, map[string]any{
				"iss": e.tn.Issuer(), "aud": c.cfg.ClientID, "iat": now, "exp": now + 120, "jti": "retry-1",
				"sid": x.SessionID, "sub": x.Subject, "events": map[string]any{backchannelLogoutEvent: map[string]any{}},
			})
			deliver := func() *httptest.ResponseRecorder {
				r := httptest.NewRequest(http.MethodPost, "/backchannel-logout", strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				w := httptest.NewRecorder()
				c.BackChannelLogoutHandler().ServeHTTP(w, r)
				return w
			}
			fs.failDeletes.Store(tc.failDeletes)
			if w := deliver(); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "temporarily_unavailable") {
				t.Fatalf("with the store failing: %d %s, want 503", w.Code, w.Body.String())
			}
			if !alive(t, c, x) {
				t.Fatal("the session ended although the answer was 503") // the first Delete failed: nothing went
			}
			if tc.wait {
				if w := deliver(); w.Code != http.StatusServiceUnavailable {
					t.Fatalf("a retry within the claim: %d, want 503", w.Code)
				}
				e.clock.Advance(backChannelPending)
			}
			if w := deliver(); w.Code != http.StatusOK {
				t.Fatalf("the retry: %d %s, want 200", w.Code, w.Body.String())
			}
			e.ended(t, c, x)
			if w := deliver(); w.Code != http.StatusBadRequest {
				t.Fatalf("a replay after the logout: %d, want 400", w.Code)
			}
		})
	}
}

// A password change and a user deletion at the tenant end that user's
// sessions on every replica (the tenant delivers to the app's handler), and
// nobody else's.
func TestBackChannelLogoutUserChanges(t *testing.T) {
	for _, tc := range []struct {
		name      string
		initiator string
		change    func(tn *auth0test.Tenant) error
	}{
		{"password changed", auth0test.InitiatorPasswordChanged, func(tn *auth0test.Tenant) error {
			return tn.ChangePassword(auth0test.AliceEmail, "a new correct horse")
		}},
		{"user deleted", auth0test.InitiatorAccountDeleted, func(tn *auth0test.Tenant) error { return tn.DeleteUser(auth0test.AliceEmail) }},
		{"user blocked", auth0test.InitiatorSessionRevoked, func(tn *auth0test.Tenant) error {
			return tn.BlockUser(auth0test.AliceEmail, true)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newBCLEnv(t, wkOpts{}, auth0test.LogoutInitiators{Mode: "all"})
			a, b := e.replica(), e.replica()
			e.receiver.Store(b)
			s1, s2 := e.login(a, Login), e.loginAs(b, aliceCreds)
			bob := e.loginAs(a, bobCreds)
			if err := tc.change(e.tn); err != nil {
				t.Fatal(err)
			}
			ds := e.tn.LogoutDeliveries()
			if len(ds) != 2 {
				t.Fatalf("deliveries: %d, want 2 (one per Auth0 session)", len(ds))
			}
			for _, d := range ds {
				if d.Status != http.StatusOK || d.Initiator != tc.initiator {
					t.Errorf("delivery %s: status %d (%s)", d.Initiator, d.Status, d.Err)
				}
			}
			e.ended(t, a, s1)
			e.ended(t, b, s2)
			if !alive(t, a, bob) || !alive(t, b, bob) {
				t.Error("bob's session ended")
			}
			var n int
			for _, ev := range e.events.logouts() {
				if ev.Reason != LogoutBackChannel || ev.Subject != s1.Subject {
					t.Errorf("event %+v", ev)
				}
				n += ev.Sessions
			}
			if n != 2 {
				t.Errorf("events count %d sessions ended, want 2", n)
			}
		})
	}
}

// LogoutUser, called on one of three Clients sharing Redis, ends the user's
// sessions started through all three, with their token records and their
// refresh-token families, and leaves other users alone.
func TestLogoutUserAcrossThreeClientsOnRedis(t *testing.T) {
	e := newBCLEnv(t, wkOpts{redis: true}, readmeInitiators)
	cs := []*Client{e.replica(), e.replica(), e.replica()}
	var alices []*Session
	for _, c := range cs {
		alices = append(alices, e.loginAs(c, aliceCreds))
	}
	bob := e.loginAs(cs[0], bobCreds)
	n, err := cs[2].LogoutUser(context.Background(), alices[0].Subject)
	if err != nil || n != 3 {
		t.Fatalf("LogoutUser: %d, %v; want 3 sessions", n, err)
	}
	for _, c := range cs {
		for _, s := range alices {
			e.ended(t, c, s)
		}
		if !alive(t, c, bob) {
			t.Error("bob's session ended")
		}
	}
	if got := e.refreshEvents()["revoked"]; got != 3 {
		t.Errorf("refresh families revoked: %d, want 3", got)
	}
	ev := e.events.logouts()
	if len(ev) != 1 || ev[0].Reason != LogoutAdmin || ev[0].Sessions != 3 || ev[0].Subject != alices[0].Subject {
		t.Errorf("logout events: %+v", ev)
	}
	if n, err := cs[1].LogoutUser(context.Background(), alices[0].Subject); err != nil || n != 0 {
		t.Errorf("LogoutUser again: %d, %v; want 0, nil", n, err)
	}
}

// FuzzBackChannelLogoutHandler: whatever body arrives, the handler answers
// 400 (or 503, keys unreachable) with the spec's JSON error, never 200, and
// writes nothing to the store.
func FuzzBackChannelLogoutHandler(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "logout_token=eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
	f.Add("application/x-www-form-urlencoded", "logout_token=a&logout_token=b")
	f.Add("application/x-www-form-urlencoded; charset=utf-8", "logout_token=%zz")
	f.Add("multipart/form-data; boundary=x", "--x\r\n")
	f.Add("application/x-www-form-urlencoded", "logout_token=eyJhbGciOiJub25lIn0.eyJzaWQiOiJ4In0.")
	c, cs, _ := offlineClient(f, func(cfg *Config) {
		// The tenant is unreachable: a token that gets as far as its
		// signature is answered 503.
		cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, errors.New("offline (fuzz)")
		})}
	})
	h := c.BackChannelLogoutHandler()
	f.Fuzz(func(t *testing.T, contentType, body string) {
		r := httptest.NewRequest(http.MethodPost, "/backchannel-logout", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var m map[string]string
		if (w.Code != http.StatusBadRequest && w.Code != http.StatusServiceUnavailable) || json.Unmarshal(w.Body.Bytes(), &m) != nil || m["error"] == "" {
			t.Fatalf("got %d %q", w.Code, w.Body.String())
		}
		if n := cs.sets.Load() + cs.setnxs.Load() + cs.deletes.Load(); n != 0 {
			t.Fatalf("a refused delivery wrote to the store (%d calls)", n)
		}
	})
}
