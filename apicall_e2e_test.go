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

	"github.com/stepupauth/stepup/auth0test"
)

const apiNamespace = "https://stepup.example/"

// copyMFAAction is a tenant's post-login Action pair: the documented step-up
// Action (MFA when acr_values asks for it) and one that copies the
// authentication level into access tokens under apiNamespace, which Auth0
// does not do on its own. Without copy, the second Action is missing.
func copyMFAAction(now func() time.Time, copy bool) func(*auth0test.ActionEvent, *auth0test.ActionAPI) {
	return func(ev *auth0test.ActionEvent, api *auth0test.ActionAPI) {
		wantMFA := slices.Contains(ev.ACRValues, ACRMultiFactor)
		if wantMFA {
			api.RequireMFA()
		}
		if !copy || ev.Protocol != auth0test.ProtocolOIDC || !wantMFA {
			return
		}
		// The tokens are issued only once the MFA the Action asked for succeeded.
		api.SetAccessTokenClaim(apiNamespace+"acr", ACRMultiFactor)
		api.SetAccessTokenClaim(apiNamespace+"amr", []string{AMRMultiFactor})
		api.SetAccessTokenClaim(apiNamespace+"auth_time", now().Unix())
	}
}

// apiApp is a web backend whose /report page (login required) calls a
// salaries API (MFA within 10 minutes) served by a Verifier that shares the
// Client's keys, and answers the API's challenges with StepUp.
type apiApp struct {
	h        *harness
	api      *httptest.Server
	apiCalls atomic.Int64
	statuses chan int // the API's answers, in order
}

func newAPIApp(t *testing.T, copyClaims bool) *apiApp {
	return newAPIAppFor(t, copyClaims, apiAudience)
}

// newAPIAppFor is newAPIApp with the page calling the API of audience
// (apiAudience, the login's, or apiOther).
func newAPIAppFor(t *testing.T, copyClaims bool, audience string) *apiApp {
	t.Helper()
	a := &apiApp{statuses: make(chan int, 16)}
	var clock atomic.Pointer[testClock] // the harness's, once made
	a.h = newHarness(t, harnessOpts{
		tenant: auth0test.Config{
			APIs: []auth0test.API{{Identifier: apiAudience, AccessTokenLifetime: time.Hour},
				{Identifier: apiOther, AccessTokenLifetime: time.Hour}},
			Action: copyMFAAction(func() time.Time { return clock.Load().Now() }, copyClaims),
		},
		client: func(cfg *Config) {
			cfg.Audience = apiAudience
			cfg.Scopes = []string{"profile", "email", "offline_access"}
		},
	})
	h := a.h
	clock.Store(h.clock)
	v, err := h.c.Verifier(audience, WithClaimNamespace(apiNamespace), WithCacheSize(16))
	if err != nil {
		t.Fatal(err)
	}
	a.api = httptest.NewServer(v.Require(MFA.WithMaxAge(10 * time.Minute).Named("salaries-api"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at, _ := AccessTokenFromContext(r.Context())
		fmt.Fprintf(w, "salaries for %s", at.Subject)
	})))
	t.Cleanup(a.api.Close)
	count := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a.apiCalls.Add(1)
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			a.statuses <- rec.Code
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		})
	}
	a.api.Config.Handler = count(a.api.Config.Handler)

	client, err := h.c.APIClient(APIConfig{Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	h.mux.Handle("GET /report", h.c.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := SessionFromContext(r.Context())
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, a.api.URL+"/salaries?year=2026", nil)
		resp, err := client.Do(s, req)
		var need *StepUpNeededError
		if errors.As(err, &need) {
			if err := h.c.StepUp(w, r, need.AuthorizeOptions); err != nil {
				http.Error(w, "no salaries: "+err.Error(), ErrorStatus(err))
			}
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(w, "API %d: %s", resp.StatusCode, body)
	})))
	return a
}

func (a *apiApp) wantAPIStatuses(t *testing.T, want ...int) {
	t.Helper()
	var got []int
	for len(got) < len(want) {
		select {
		case s := <-a.statuses:
			got = append(got, s)
		default:
			t.Fatalf("API answers %v, want %v", got, want)
		}
	}
	select {
	case s := <-a.statuses:
		t.Fatalf("API answers %v and %d, want %v", got, s, want)
	default:
	}
	if !slices.Equal(got, want) {
		t.Fatalf("API answers %v, want %v", got, want)
	}
}

// TestAPIStepUpEndToEnd: a backend calls an API with the session's token, gets
// the RFC 9470 challenge, steps the user up at the tenant (password login
// first, then the one-time code), and retries successfully; later the token
// is refreshed, and once the MFA is too old for the API, the challenge is
// answered again.
func TestAPIStepUpEndToEnd(t *testing.T) {
	a := newAPIApp(t, true)
	h := a.h
	u := h.alice()

	// A password login for the page (RequireLogin): the access token
	// carries no MFA, so the API challenges and the page sends the user
	// through the step-up it names.
	w := u.get("/report")
	w = u.callback(u.authorize(w))
	if got := w.Header().Get("Location"); got != "/report" {
		t.Fatalf("login callback to %q", got)
	}
	if slices.Contains(u.tb.Pages, "otp") {
		t.Fatalf("the plain login asked for the one-time code: %v", u.tb.Pages)
	}
	w = u.get("/report")
	a.wantAPIStatuses(t, http.StatusUnauthorized)
	loc, err := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), h.tn.URL()+"/authorize") {
		t.Fatalf("page after the API's challenge: %d to %q (%s), want the step-up", w.Code, w.Header().Get("Location"), w.Body.String())
	}
	q := loc.Query()
	if q.Get("acr_values") != ACRMultiFactor || q.Get("max_age") != "600" || q.Get("audience") != apiAudience {
		t.Errorf("step-up parameters acr_values=%q max_age=%q audience=%q, want the challenge's and the API's",
			q.Get("acr_values"), q.Get("max_age"), q.Get("audience"))
	}
	oldToken, _ := h.c.Token(context.Background(), u.session(), apiAudience)

	// The step-up at the tenant: the one-time code.
	cb := u.authorize(w)
	if !slices.Contains(u.tb.Pages, "otp") {
		t.Errorf("tenant pages %v, want the one-time code page", u.tb.Pages)
	}
	w = u.callback(cb)
	retry := w.Header().Get("Location")
	if w.Code != http.StatusFound || !strings.HasPrefix(retry, "/report?"+RetryParam+"=") {
		t.Fatalf("step-up callback: %d to %q, want the page with the retry marker", w.Code, retry)
	}
	s := u.session()
	if s.StepUpAt.IsZero() || !slices.Contains(s.StepUp.AMR, AMRMultiFactor) {
		t.Errorf("session step-up evidence %+v at %v", s.StepUp, s.StepUpAt)
	}
	if tok, _ := h.c.Token(context.Background(), s, apiAudience); tok == nil || tok.AccessToken == oldToken.AccessToken {
		t.Fatal("the step-up did not store a new access token for the API")
	}

	// The retry: the page calls the API again with the new token.
	w = u.get(retry)
	a.wantAPIStatuses(t, http.StatusOK)
	if w.Code != http.StatusOK || w.Body.String() != "API 200: salaries for auth0|alice" {
		t.Fatalf("page after the step-up: %d %q", w.Code, w.Body.String())
	}
	// One JWKS fetch served the ID tokens and the API's access tokens.
	if n := h.tn.Calls(jwksPath); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1 (the Verifier shares the Client's keys)", n)
	}

	// 5 minutes later (a reload of the same URL) the MFA is still fresh
	// enough for the API.
	h.clock.Advance(5 * time.Minute)
	if w = u.get(retry); w.Code != http.StatusOK {
		t.Fatalf("5 minutes later: %d %q", w.Code, w.Body.String())
	}
	a.wantAPIStatuses(t, http.StatusOK)

	// Past the API's 10 minutes: the API challenges again (max_age), and the
	// page, reloaded with the marker still in its URL, sends the user
	// through a new step-up: not taken for a loop.
	h.clock.Advance(6 * time.Minute)
	w = u.get(retry)
	a.wantAPIStatuses(t, http.StatusUnauthorized)
	cb = u.authorize(w)
	if !slices.Contains(u.tb.Pages, "otp") {
		t.Errorf("tenant pages %v, want the one-time code again (max_age)", u.tb.Pages)
	}
	w = u.callback(cb)
	w = u.get(w.Header().Get("Location"))
	a.wantAPIStatuses(t, http.StatusOK)
	if w.Code != http.StatusOK {
		t.Fatalf("page after the second step-up: %d %q", w.Code, w.Body.String())
	}
	if n := a.apiCalls.Load(); n != 5 {
		t.Errorf("API called %d times, want 5", n)
	}
}

// TestAPIStepUpRefresh: an expired access token is refreshed before the
// call (no step-up), with the refresh token of the login.
func TestAPIStepUpRefresh(t *testing.T) {
	a := newAPIApp(t, true)
	h := a.h
	u := h.alice()
	w := u.get("/report")
	w = u.callback(u.authorize(w))
	w = u.get("/report")
	a.wantAPIStatuses(t, http.StatusUnauthorized)
	w = u.callback(u.authorize(w))
	before, _ := h.c.Token(context.Background(), u.session(), apiAudience)

	// Past the access token's hour (the session stays alive: one request
	// every 20 minutes), the API is called with a refreshed token. Refreshed
	// tokens carry no MFA claims (the Action adds them to interactive logins
	// only), so the API challenges: the page steps up again.
	for range 3 {
		h.clock.Advance(20 * time.Minute)
		if w = u.get(pathPrivate); w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", pathPrivate, w.Code)
		}
	}
	w = u.get("/report")
	a.wantAPIStatuses(t, http.StatusUnauthorized)
	if n := h.tn.GrantCalls(auth0test.GrantRefreshToken); n != 1 {
		t.Errorf("refresh-token grants %d, want 1", n)
	}
	after, _ := h.c.Token(context.Background(), u.session(), apiAudience)
	if after.AccessToken == before.AccessToken {
		t.Error("the session's access token was not refreshed")
	}
	if w.Code != http.StatusFound {
		t.Fatalf("page with the refreshed token: %d, want the step-up redirect", w.Code)
	}
}

// TestAPIStepUpLoop: a tenant without the Action that copies the MFA into
// access tokens. The user steps up once; the API still refuses the new
// token; the page does not send the user around again.
func TestAPIStepUpLoop(t *testing.T) {
	a := newAPIApp(t, false)
	h := a.h
	u := h.alice()
	w := u.get("/report")
	w = u.callback(u.authorize(w))
	w = u.get("/report")
	a.wantAPIStatuses(t, http.StatusUnauthorized)
	w = u.callback(u.authorize(w)) // the step-up, with the one-time code
	retry := w.Header().Get("Location")
	w = u.get(retry)
	a.wantAPIStatuses(t, http.StatusUnauthorized)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), ErrStepUpLoop.Error()) {
		t.Fatalf("page after a step-up the API ignores: %d %q, want 403 and ErrStepUpLoop", w.Code, w.Body.String())
	}
	// Reloading the page: the same answer, no new trip to the tenant.
	if w = u.get(retry); w.Code != http.StatusForbidden {
		t.Errorf("reload: %d, want 403", w.Code)
	}
	a.wantAPIStatuses(t, http.StatusUnauthorized)
	// Navigating to the page anew (a user action) tries once more.
	if w = u.get("/report"); w.Code != http.StatusFound {
		t.Errorf("new visit: %d, want a new step-up", w.Code)
	}
	a.wantAPIStatuses(t, http.StatusUnauthorized)
}

// TestAPIStepUpSecondAudience: the page calls an API other than the login's
// audience. The session holds no token for it: an authorization for that
// audience brings one (silently: the tenant's session suffices), which the
// API challenges; the step-up for it brings a token it accepts. The tokens
// of the two audiences are kept side by side in the session.
func TestAPIStepUpSecondAudience(t *testing.T) {
	a := newAPIAppFor(t, true, apiOther)
	h := a.h
	u := h.alice()
	w := u.get("/report")
	w = u.callback(u.authorize(w)) // password login, token for apiAudience
	first, err := h.c.Token(context.Background(), u.session(), apiAudience)
	if err != nil {
		t.Fatal(err)
	}

	w = u.get("/report") // no token for apiOther: an authorization for it
	a.wantAPIStatuses(t)
	loc, _ := url.Parse(w.Header().Get("Location"))
	if q := loc.Query(); w.Code != http.StatusFound || q.Get("audience") != apiOther || q.Has("acr_values") || q.Has("max_age") {
		t.Fatalf("page without a token for the API: %d to %v, want an authorization for %s only", w.Code, loc, apiOther)
	}
	w = u.callback(u.authorize(w))
	if len(u.tb.Pages) != 0 {
		t.Errorf("tenant pages %v, want none (its session suffices)", u.tb.Pages)
	}
	w = u.get(w.Header().Get("Location")) // the API challenges the new token: a step-up, not a loop
	a.wantAPIStatuses(t, http.StatusUnauthorized)
	loc, _ = url.Parse(w.Header().Get("Location"))
	if q := loc.Query(); w.Code != http.StatusFound || q.Get("audience") != apiOther || q.Get("acr_values") != ACRMultiFactor {
		t.Fatalf("page after the challenge: %d to %v, want the step-up for %s", w.Code, loc, apiOther)
	}
	w = u.callback(u.authorize(w))
	if !slices.Contains(u.tb.Pages, "otp") {
		t.Errorf("tenant pages %v, want the one-time code", u.tb.Pages)
	}
	w = u.get(w.Header().Get("Location"))
	a.wantAPIStatuses(t, http.StatusOK)
	if w.Code != http.StatusOK || w.Body.String() != "API 200: salaries for auth0|alice" {
		t.Fatalf("page after the step-up: %d %q", w.Code, w.Body.String())
	}
	s := u.session()
	if tok, err := h.c.Token(context.Background(), s, apiAudience); err != nil || tok.AccessToken != first.AccessToken {
		t.Errorf("the login audience's token changed or is gone: %v", err)
	}
	if tok, err := h.c.Token(context.Background(), s, apiOther); err != nil || tok.AccessToken == "" {
		t.Errorf("no token for %s: %v", apiOther, err)
	}
}

// The loop-protection marker cannot be hidden behind an encoded key: with
// "stepup%5Fretry=x" in the page URL, the page after the step-up the API
// ignores still answers ErrStepUpLoop instead of sending the user around
// again (issue 15).
func TestAPIStepUpLoopEncodedMarkerKey(t *testing.T) {
	a := newAPIApp(t, false)
	u := a.h.alice()
	page := "/report?stepup%5Fretry=x&stepup_r%65try=y"
	w := u.get(page)
	w = u.callback(u.authorize(w))
	w = u.get(page)
	a.wantAPIStatuses(t, http.StatusUnauthorized)
	w = u.callback(u.authorize(w)) // the step-up
	retry := w.Header().Get("Location")
	if strings.Contains(retry, "%5Fretry") || strings.Contains(retry, "%65try") {
		t.Errorf("return path %q keeps an encoded marker key", retry)
	}
	if w = u.get(retry); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), ErrStepUpLoop.Error()) {
		t.Fatalf("page after a step-up the API ignores: %d, want 403 and ErrStepUpLoop", w.Code)
	}
}

// A page URL a little under 2 KB can be stepped up: the marker does not push
// the return path past the limit (issue 15: it answered 400).
func TestAPIStepUpLongPageURL(t *testing.T) {
	a := newAPIApp(t, false)
	u := a.h.alice()
	page := "/report?q=" + strings.Repeat("x", 2000)
	w := u.get(page)
	w = u.callback(u.authorize(w))
	w = u.get(page)
	if w.Code != http.StatusFound {
		t.Fatalf("step-up from a %d-byte page URL: %d %s, want a redirect to the tenant", len(page), w.Code, w.Body.String())
	}
	w = u.callback(u.authorize(w))
	if loc := w.Header().Get("Location"); !strings.HasPrefix(loc, page+"&"+RetryParam+"=") {
		t.Fatalf("back to %.80q... (%d %.300s), want the page with its marker", loc, w.Code, w.Body.String())
	}
}
