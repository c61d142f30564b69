package stepup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

const (
	apiAudience = "https://salaries.fabrikam.example/"
	apiOther    = "https://other.fabrikam.example/"
)

// apiSession starts a session for auth0|alice holding an access token for
// each audience of tokens.
func apiSession(t *testing.T, c *Client, subject string, tokens map[string]*oauth2.Token) *Session {
	t.Helper()
	var s *Session
	if len(tokens) == 0 {
		tokens = map[string]*oauth2.Token{"": nil}
	}
	for aud, tok := range tokens {
		login := &LoginResult{IDToken: &IDToken{Subject: subject, Email: "alice@fabrikam.example"},
			Token: tok, Audience: aud, At: c.now()}
		var err error
		if s, err = c.StartSession(context.Background(), login, s); err != nil {
			t.Fatalf("StartSession: %v", err)
		}
	}
	return s
}

// fakeAPI is an API that answers with answer and records the requests' Authorization.
type fakeAPI struct {
	*httptest.Server
	hits atomic.Int64
	auth atomic.Value // string
}

func newFakeAPI(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *fakeAPI {
	f := &fakeAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		f.auth.Store(r.Header.Get("Authorization"))
		answer(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func TestAPIClientDo(t *testing.T) {
	fiveMinutes, zero := 5*time.Minute, time.Duration(0)
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request)
		// wantStatus is the status of the response handed back; 0 when a
		// *StepUpNeededError is expected instead, with wantOpts.
		wantStatus int
		wantOpts   AuthorizeOptions
	}{
		{
			name:       "success",
			answer:     func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) },
			wantStatus: 200,
		},
		{
			name: "step-up challenge with acr_values and max_age",
			answer: func(w http.ResponseWriter, r *http.Request) {
				WriteChallenge(w, StepUpChallenge(MFA.WithMaxAge(fiveMinutes)))
			},
			wantOpts: AuthorizeOptions{Audience: apiAudience, MaxAge: &fiveMinutes,
				Policy: Policy{Name: "challenge", ACR: []string{ACRMultiFactor}, MaxAge: fiveMinutes}},
		},
		{
			name: "challenge without acr_values: max_age only, sent unchanged",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_user_authentication", max_age=0`)
				w.WriteHeader(http.StatusUnauthorized)
			},
			wantOpts: AuthorizeOptions{Audience: apiAudience, MaxAge: &zero, Policy: Policy{Name: "challenge", MaxAge: freshAuthentication}},
		},
		{
			name: "challenge without acr_values nor max_age",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Basic realm="x", Bearer error=insufficient_user_authentication`)
				w.WriteHeader(http.StatusUnauthorized)
			},
			wantOpts: AuthorizeOptions{Audience: apiAudience, Policy: Policy{Name: "challenge"}},
		},
		{
			name: "challenge on a 403",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_user_authentication", acr_values="urn:a urn:b"`)
				w.WriteHeader(http.StatusForbidden)
			},
			wantOpts: AuthorizeOptions{Audience: apiAudience, Policy: Policy{Name: "challenge", ACR: []string{"urn:a", "urn:b"}}},
		},
		{
			name: "401 invalid_token is not a step-up",
			answer: func(w http.ResponseWriter, r *http.Request) {
				WriteChallenge(w, Challenge{Error: "invalid_token", ErrorDescription: "The access token expired"})
			},
			wantStatus: 401,
		},
		{
			name:       "401 without a challenge",
			answer:     func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusUnauthorized) },
			wantStatus: 401,
		},
		{
			name: "401 with a malformed challenge",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_user_authentication`)
				w.WriteHeader(http.StatusUnauthorized)
			},
			wantStatus: 401,
		},
		{
			name: "403 insufficient_scope is not a step-up",
			answer: func(w http.ResponseWriter, r *http.Request) {
				WriteChallenge(w, Challenge{Error: "insufficient_scope", Scope: []string{"read:salaries"}})
			},
			wantStatus: 403,
		},
		{
			name: "a redirect is not followed",
			answer: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
			},
			wantStatus: 302,
		},
		{
			name: "step-up challenge on a 500 is not a step-up",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_user_authentication"`)
				w.WriteHeader(http.StatusInternalServerError)
			},
			wantStatus: 500,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, clock := offlineClient(t, func(cfg *Config) { cfg.Audience = apiAudience })
			s := apiSession(t, c, "auth0|alice", map[string]*oauth2.Token{
				apiAudience: {AccessToken: "at-1", TokenType: "Bearer", Expiry: clock.Now().Add(time.Hour)},
			})
			api := newFakeAPI(t, tc.answer)
			ac, err := c.APIClient(APIConfig{})
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodGet, api.URL+"/salaries", nil)
			resp, err := ac.Do(s, req)
			if got := api.auth.Load(); got != "Bearer at-1" {
				t.Errorf("API got Authorization %q, want the session's token", got)
			}
			if req.Header.Get("Authorization") != "" {
				t.Error("Do modified the caller's request")
			}
			if n := api.hits.Load(); n != 1 {
				t.Errorf("API called %d times, want 1", n)
			}
			if tc.wantStatus != 0 {
				if err != nil {
					t.Fatalf("Do: %v, want the response", err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != tc.wantStatus {
					t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
				}
				return
			}
			var need *StepUpNeededError
			if !errors.As(err, &need) || resp != nil {
				t.Fatalf("Do: %v, %v; want a *StepUpNeededError and no response", resp, err)
			}
			if !errors.Is(err, ErrStepUpRequired) || need.Challenge == nil || need.Audience != apiAudience {
				t.Errorf("error %#v", need)
			}
			if diff := cmp.Diff(tc.wantOpts, need.AuthorizeOptions); diff != "" {
				t.Errorf("AuthorizeOptions (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(err.Error(), "stepup: ") {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestAPIClientWithoutUsableToken(t *testing.T) {
	c, _, clock := offlineClient(t, func(cfg *Config) { cfg.Audience = apiAudience })
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {})
	tests := []struct {
		name     string
		audience string
		tokens   map[string]*oauth2.Token
		advance  time.Duration
		want     error
	}{
		{"no token for the audience", apiOther,
			map[string]*oauth2.Token{apiAudience: {AccessToken: "at-1", Expiry: clock.Now().Add(time.Hour)}}, 0, ErrNoSession},
		{"expired, no refresh token", apiAudience,
			map[string]*oauth2.Token{apiAudience: {AccessToken: "at-1", Expiry: clock.Now().Add(5 * time.Minute)}}, 10 * time.Minute, ErrNoRefreshToken},
		{"expires within EarlyExpiry, no refresh token", apiAudience,
			map[string]*oauth2.Token{apiAudience: {AccessToken: "at-1", Expiry: clock.Now().Add(5 * time.Minute)}}, 5*time.Minute - 10*time.Second, ErrNoRefreshToken},
		{"expired, and the session has ended since it was loaded", apiAudience,
			map[string]*oauth2.Token{apiAudience: {AccessToken: "at-1", Expiry: clock.Now().Add(5 * time.Minute)}}, time.Hour, ErrNoSession},
		{"session without tokens", apiAudience, nil, 0, ErrNoSession},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := apiSession(t, c, "auth0|alice", tc.tokens)
			clock.Advance(tc.advance)
			defer clock.Advance(-tc.advance)
			ac, err := c.APIClient(APIConfig{Audience: tc.audience})
			if err != nil {
				t.Fatal(err)
			}
			before := api.hits.Load()
			req, _ := http.NewRequest(http.MethodGet, api.URL, nil)
			_, err = ac.Do(s, req)
			var need *StepUpNeededError
			if !errors.As(err, &need) || !errors.Is(err, tc.want) || need.Challenge != nil {
				t.Fatalf("Do: %v, want a *StepUpNeededError wrapping %v", err, tc.want)
			}
			if diff := cmp.Diff(AuthorizeOptions{Audience: tc.audience}, need.AuthorizeOptions); diff != "" {
				t.Errorf("AuthorizeOptions (-want +got):\n%s", diff)
			}
			if api.hits.Load() != before {
				t.Error("the API was called without a usable token")
			}
		})
	}
	t.Run("no session", func(t *testing.T) {
		ac, _ := c.APIClient(APIConfig{})
		req, _ := http.NewRequest(http.MethodGet, api.URL, nil)
		if _, err := ac.Do(nil, req); !errors.Is(err, ErrNoSession) {
			t.Errorf("Do(nil session): %v, want ErrNoSession", err)
		}
	})
}

func TestAPIClientConfigAndTransport(t *testing.T) {
	c, _, clock := offlineClient(t, nil)
	if _, err := c.APIClient(APIConfig{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("APIClient without any audience: %v, want ErrInvalidConfig", err)
	}
	s := apiSession(t, c, "auth0|alice", map[string]*oauth2.Token{apiAudience: {AccessToken: "at-1", Expiry: clock.Now().Add(time.Hour)}})
	var sent atomic.Int64
	rt := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent.Add(1)
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
	})}
	tests := []struct {
		url       string
		allowHTTP bool
		wantSent  bool
	}{
		{"https://api.example/x", false, true},
		{"http://127.0.0.1:9/x", false, true},
		{"http://[::1]:9/x", false, true},
		{"http://localhost/x", false, true},
		{"http://api.internal/x", false, false},
		{"http://api.internal/x", true, true},
		{"ftp://api.example/x", true, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s allowHTTP=%v", tc.url, tc.allowHTTP), func(t *testing.T) {
			ac, err := c.APIClient(APIConfig{Audience: apiAudience, HTTPClient: rt, InsecureAllowHTTP: tc.allowHTTP})
			if err != nil {
				t.Fatal(err)
			}
			before := sent.Load()
			req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
			resp, err := ac.Do(s, req)
			if got := sent.Load() > before; got != tc.wantSent {
				t.Fatalf("sent %v, want %v (err %v)", got, tc.wantSent, err)
			}
			if tc.wantSent {
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			} else if err == nil || !strings.HasPrefix(err.Error(), "stepup: refusing") {
				t.Errorf("err %v, want a refusal", err)
			}
		})
	}
	// A transport failure is wrapped.
	down := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errStoreDown })}
	ac, _ := c.APIClient(APIConfig{Audience: apiAudience, HTTPClient: down})
	req, _ := http.NewRequest(http.MethodGet, "https://api.example/x", nil)
	if _, err := ac.Do(s, req); !errors.Is(err, errStoreDown) || !strings.HasPrefix(err.Error(), "stepup: ") {
		t.Errorf("transport failure: %v", err)
	}
}

// stepUpRequest is a browser's request for target carrying session s.
func stepUpRequest(method, target string, s *Session) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if s != nil {
		r = r.WithContext(context.WithValue(r.Context(), sessionCtxKey{}, s))
	}
	return r
}

// txOf returns the transaction that a redirect to /authorize started.
func txOf(t *testing.T, c *Client, w *httptest.ResponseRecorder) (*url.URL, *txRecord) {
	t.Helper()
	if w.Code != http.StatusFound {
		t.Fatalf("status %d, want 302; body %q", w.Code, w.Body.String())
	}
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil || loc.Path != "/authorize" {
		t.Fatalf("Location %q, want the tenant's /authorize", w.Header().Get("Location"))
	}
	return loc, txOfResponse(t, c, w, loc.Query().Get("state"))
}

func TestStepUp(t *testing.T) {
	c, cs, clock := offlineClient(t, func(cfg *Config) { cfg.Audience = apiAudience })
	alice := apiSession(t, c, "auth0|alice", nil)
	bob := apiSession(t, c, "auth0|bob", nil)
	tenMinutes := 10 * time.Minute
	challenge := Challenge{Error: ErrorInsufficientUserAuthentication, ACRValues: []string{ACRMultiFactor}, MaxAge: tenMinutes, HasMaxAge: true}
	opts := challenge.AuthorizeOptions()
	opts.Audience = apiAudience

	// The API's challenge: a redirect with exactly its acr_values and
	// max_age, for the API's audience, coming back to the page.
	w := httptest.NewRecorder()
	if err := c.StepUp(w, stepUpRequest("GET", "/report?year=2026", alice), opts); err != nil {
		t.Fatal(err)
	}
	loc, tx := txOf(t, c, w)
	q := loc.Query()
	if q.Get("acr_values") != ACRMultiFactor || q.Get("max_age") != "600" || q.Get("audience") != apiAudience || q.Get("login_hint") != "alice@fabrikam.example" {
		t.Errorf("authorize parameters %v", q)
	}
	if q.Has("connection") || q.Has("prompt") {
		t.Errorf("authorize parameters %v: nothing beyond the challenge's", q)
	}
	if !strings.HasPrefix(tx.ReturnTo, "/report?year=2026&"+RetryParam+"=") || strings.Count(tx.ReturnTo, RetryParam) != 1 {
		t.Fatalf("ReturnTo %q", tx.ReturnTo)
	}
	if tx.Audience != apiAudience || !slices.Equal(tx.Policy.ACR, []string{ACRMultiFactor}) || tx.MaxAge != 600 {
		t.Errorf("transaction %+v", tx)
	}
	if !slices.ContainsFunc(w.Result().Cookies(), func(ck *http.Cookie) bool { return ck.Name == c.TransactionCookieName(q.Get("state")) }) {
		t.Error("no transaction cookie")
	}
	retry := tx.ReturnTo
	// The login the step-up brought: the session goes on with a new cookie.
	stepped := relogin(t, c, alice)

	// markAndLogin makes a marker for o as StepUp does and completes a login.
	markAndLogin := func(o AuthorizeOptions) (string, *Session) {
		w := httptest.NewRecorder()
		if err := c.StepUp(w, stepUpRequest("GET", "/report?year=2026", stepped), o); err != nil {
			t.Fatal(err)
		}
		_, tx := txOf(t, c, w)
		return tx.ReturnTo, relogin(t, c, stepped)
	}
	noMaxAge := opts
	noMaxAge.MaxAge, noMaxAge.Policy.MaxAge = nil, 0
	retryNoMaxAge, steppedNoMaxAge := markAndLogin(noMaxAge)
	zero := time.Duration(0)
	maxAgeZero := opts
	maxAgeZero.MaxAge, maxAgeZero.Policy.MaxAge = &zero, freshAuthentication
	retryZero, steppedZero := markAndLogin(maxAgeZero)
	noToken := AuthorizeOptions{Audience: apiOther}
	retryNoToken, steppedNoToken := markAndLogin(noToken)
	same := func(o AuthorizeOptions) func(AuthorizeOptions) AuthorizeOptions {
		return func(AuthorizeOptions) AuthorizeOptions { return o }
	}

	tests := []struct {
		name     string
		target   string
		session  *Session
		opts     func(AuthorizeOptions) AuthorizeOptions
		advance  time.Duration
		wantLoop bool
	}{
		{name: "the same challenge on the page load after the step-up", target: retry, session: stepped, wantLoop: true},
		{name: "the same challenge, max_age as Policy.MaxAge only", target: retry, session: stepped, wantLoop: true,
			opts: func(o AuthorizeOptions) AuthorizeOptions { o.MaxAge = nil; return o }},
		{name: "the same challenge just before the API's max_age has passed", target: retry, session: stepped, wantLoop: true,
			advance: 10*time.Minute - time.Second},
		{name: "the same challenge once the API's max_age has passed", target: retry, session: stepped, advance: 10 * time.Minute},
		{name: "no login since the marker (a copied URL)", target: retry, session: alice},
		{name: "another acr_values", target: retry, session: stepped,
			opts: func(o AuthorizeOptions) AuthorizeOptions { o.Policy.ACR = []string{"urn:other"}; return o }},
		{name: "another max_age", target: retry, session: stepped,
			opts: func(o AuthorizeOptions) AuthorizeOptions { d := time.Minute; o.MaxAge = &d; return o }},
		{name: "another audience", target: retry, session: stepped,
			opts: func(o AuthorizeOptions) AuthorizeOptions { o.Audience = apiOther; return o }},
		{name: "another session", target: retry, session: bob},
		{name: "a tampered marker", target: strings.Replace(retry, RetryParam+"=", RetryParam+"=A", 1), session: stepped},
		{name: "no marker", target: "/report?year=2026", session: stepped},
		{name: "without max_age, just before the marker expires", target: retryNoMaxAge, session: steppedNoMaxAge, opts: same(noMaxAge),
			advance: c.cfg.TransactionTTL + 59*time.Second, wantLoop: true},
		{name: "without max_age, an expired marker", target: retryNoMaxAge, session: steppedNoMaxAge, opts: same(noMaxAge),
			advance: c.cfg.TransactionTTL + time.Minute},
		{name: "max_age=0, within a minute", target: retryZero, session: steppedZero, opts: same(maxAgeZero),
			advance: 59 * time.Second, wantLoop: true},
		{name: "max_age=0, after a minute", target: retryZero, session: steppedZero, opts: same(maxAgeZero), advance: time.Minute},
		{name: "still no token after the authorization for the audience", target: retryNoToken, session: steppedNoToken,
			opts: same(noToken), wantLoop: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock.Advance(tc.advance)
			defer clock.Advance(-tc.advance)
			o := opts
			if tc.opts != nil {
				o = tc.opts(o)
			}
			w := httptest.NewRecorder()
			err := c.StepUp(w, stepUpRequest("GET", tc.target, tc.session), o)
			if tc.wantLoop {
				if !errors.Is(err, ErrStepUpLoop) || ErrorStatus(err) != http.StatusForbidden {
					t.Fatalf("StepUp: %v, want ErrStepUpLoop (403)", err)
				}
				if len(w.Header()) != 0 || w.Body.Len() != 0 {
					t.Errorf("StepUp wrote %v %q on error", w.Header(), w.Body.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("StepUp: %v, want a new step-up", err)
			}
			_, tx := txOf(t, c, w)
			if !strings.HasPrefix(tx.ReturnTo, "/report?year=2026&"+RetryParam+"=") || strings.Count(tx.ReturnTo, RetryParam) != 1 {
				t.Errorf("ReturnTo %q", tx.ReturnTo)
			}
		})
	}

	t.Run("POST is not replayed", func(t *testing.T) {
		w := httptest.NewRecorder()
		if err := c.StepUp(w, stepUpRequest("POST", "/report/export", alice), opts); err != nil {
			t.Fatal(err)
		}
		if _, tx := txOf(t, c, w); !strings.HasPrefix(tx.ReturnTo, "/?"+RetryParam+"=") {
			t.Errorf("ReturnTo %q, want Config.DefaultReturnTo", tx.ReturnTo)
		}
		o := opts
		o.ReturnTo = "/report/form?id=7"
		w = httptest.NewRecorder()
		if err := c.StepUp(w, stepUpRequest("POST", "/report/export", alice), o); err != nil {
			t.Fatal(err)
		}
		if _, tx := txOf(t, c, w); !strings.HasPrefix(tx.ReturnTo, "/report/form?id=7&"+RetryParam+"=") {
			t.Errorf("ReturnTo %q, want the given one with the marker", tx.ReturnTo)
		}
	})
	t.Run("without a session: a plain redirect", func(t *testing.T) {
		w := httptest.NewRecorder()
		if err := c.StepUp(w, stepUpRequest("GET", "/report", nil), opts); err != nil {
			t.Fatal(err)
		}
		if _, tx := txOf(t, c, w); tx.ReturnTo != "/report" {
			t.Errorf("ReturnTo %q", tx.ReturnTo)
		}
	})
	t.Run("session from the cookie", func(t *testing.T) {
		// The latest login's cookie (each relogin rotated the previous one).
		r := httptest.NewRequest("GET", retryNoToken, nil)
		ck := c.SessionCookie(steppedNoToken)
		r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		if err := c.StepUp(httptest.NewRecorder(), r, noToken); !errors.Is(err, ErrStepUpLoop) {
			t.Errorf("StepUp: %v, want ErrStepUpLoop", err)
		}
	})
	t.Run("invalid options are returned, nothing written", func(t *testing.T) {
		o := opts
		o.ReturnTo = "https://evil.example/"
		w := httptest.NewRecorder()
		if err := c.StepUp(w, stepUpRequest("GET", "/report", alice), o); !errors.Is(err, ErrInvalidAuthorizeOptions) || w.Code != 200 || len(w.Header()) != 0 {
			t.Errorf("StepUp: %v (wrote %d %v), want ErrInvalidAuthorizeOptions and nothing written", err, w.Code, w.Header())
		}
	})
	t.Run("store down: the step-up starts without it", func(t *testing.T) {
		cs.failing.Store(true)
		defer cs.failing.Store(false)
		calls := cs.writes() + cs.gets.Load()
		w := httptest.NewRecorder()
		if err := c.StepUp(w, stepUpRequest("GET", "/report", alice), opts); err != nil || w.Code != http.StatusFound {
			t.Errorf("StepUp: %v (%d), want a redirect: the transaction is a cookie", err, w.Code)
		}
		if n := cs.writes() + cs.gets.Load() - calls; n != 0 {
			t.Errorf("%d store calls, want none", n)
		}
	})
}

// relogin completes a login of s's user in s: same handle, new cookie.
func relogin(t *testing.T, c *Client, s *Session) *Session {
	t.Helper()
	login := &LoginResult{IDToken: &IDToken{Subject: s.Subject}, At: c.now()}
	next, err := c.StartSession(context.Background(), login, s)
	if err != nil || next.Handle != s.Handle || next.secret == s.secret {
		t.Fatalf("StartSession: %v, %v", next, err)
	}
	return next
}

func TestWithRetryMark(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/", "/?" + RetryParam + "=M"},
		{"/a?b=1", "/a?b=1&" + RetryParam + "=M"},
		{"/a?" + RetryParam + "=old&b=1", "/a?b=1&" + RetryParam + "=M"},
		{"/a?b=1&" + RetryParam + "=old&" + RetryParam + "=older", "/a?b=1&" + RetryParam + "=M"},
		{"/a?", "/a?" + RetryParam + "=M"},
		// Keys are compared decoded, as the reader (url.Values) sees them.
		{"/a?stepup%5Fretry=x&b=1", "/a?b=1&" + RetryParam + "=M"},
		{"/a?stepup%5fretry=x&stepup_r%65try=y", "/a?" + RetryParam + "=M"},
		{"/a?b%zz=1&c=2", "/a?c=2&" + RetryParam + "=M"},
	}
	for _, tc := range tests {
		got, err := withRetryMark(tc.in, "M")
		if err != nil || got != tc.want {
			t.Errorf("withRetryMark(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := withRetryMark("//evil.example/", "M"); err == nil {
		t.Error("a non-local path was accepted")
	}
	if _, err := withRetryMark("/"+strings.Repeat("a", 2048), "M"); err == nil {
		t.Error("a path over 2048 bytes was accepted")
	}
	// A page URL a little under 2 KB still gets its (long) marker.
	page := "/" + strings.Repeat("a", 2000)
	if out, err := withRetryMark(page, strings.Repeat("M", maxRetryMarkBytes)); err != nil || checkReturnTo(out) != nil {
		t.Errorf("withRetryMark(a %d-byte page): %v", len(page), err)
	}
}

func TestClientVerifierOptions(t *testing.T) {
	c, _, _ := offlineClient(t, nil)
	var called bool
	v, err := c.Verifier(apiAudience, WithClaimNamespace("https://stepup.example/"), WithCacheSize(8),
		WithAlgorithms("RS256"), WithVerifierErrorHandler(func(http.ResponseWriter, *http.Request, error) { called = true }), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.keys != c.keys || v.ownsKeys {
		t.Error("the Verifier does not share the Client's key set")
	}
	if v.ns != "https://stepup.example/" || v.names.amr != "https://stepup.example/amr" || v.cache == nil || !slices.Equal(v.jws.algs, []string{"RS256"}) ||
		v.issuer != c.issuer || v.audience != apiAudience || v.leeway != c.cfg.Leeway {
		t.Errorf("Verifier %+v", v)
	}
	v.failed(nil, nil, errStoreDown)
	if !called {
		t.Error("the error handler was not installed")
	}
	if _, err := c.Verifier(apiAudience, WithAlgorithms("HS256")); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("HS256: %v, want ErrInvalidConfig", err)
	}
	if err := v.Close(); err != nil {
		t.Error(err)
	}
	if c.keys.closed {
		t.Error("closing the Verifier closed the Client's key set")
	}
}
