package stepup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/store"
)

// End-to-end tests of the Client against the auth0test dev tenant.

func TestLoginGivesSession(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.alice()

	w := u.get(pathPrivate)
	loc, _ := url.Parse(w.Header().Get("Location"))
	if q := loc.Query(); q.Get("acr_values") != "" || q.Get("max_age") != "" {
		t.Errorf("a plain login asked for a step-up: %s", loc)
	}
	txc := u.cookies[h.c.TransactionCookieName(loc.Query().Get("state"))]
	if txc == nil || !txc.HttpOnly || txc.SameSite != http.SameSiteLaxMode || txc.Path != "/" || txc.MaxAge != int(DefaultTransactionTTL/time.Second) {
		t.Fatalf("transaction cookie: %+v, want HttpOnly, SameSite=Lax, Path=/ and Max-Age the transaction's TTL", txc)
	}
	cb := u.authorize(w)
	w = u.callback(cb)
	if w.Code != http.StatusFound || w.Header().Get("Location") != pathPrivate {
		t.Fatalf("callback: %d to %q, want 302 to %s", w.Code, w.Header().Get("Location"), pathPrivate)
	}
	if u.cookies[txc.Name] != nil {
		t.Error("the callback left its transaction cookie")
	}
	ck := u.cookies[h.c.sessionCookie]
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge <= 0 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/ and a lifetime", ck)
	}

	gets, writes := h.cs.reads(), h.cs.writes()
	w = u.get(pathPrivate)
	if w.Code != http.StatusOK || w.Body.String() != "hello auth0|alice" {
		t.Fatalf("protected page: %d %q", w.Code, w.Body.String())
	}
	if g, wr := h.cs.reads()-gets, h.cs.writes()-writes; g != 1 || wr != 0 {
		t.Errorf("a page load cost %d store reads and %d writes, want 1 and 0", g, wr)
	}

	s := u.session()
	if s.Subject != "auth0|alice" || s.Email != auth0test.AliceEmail || s.SessionID == "" || s.Connection != "auth0" {
		t.Errorf("session: %+v", s)
	}
	if !s.StepUpAt.IsZero() || slices.Contains(s.Authentication.AMR, "mfa") {
		t.Errorf("a plain login recorded a step-up: %+v", s)
	}
	// A plain login does not satisfy MFA; a non-browser request gets 401, not a redirect.
	w = u.do(http.MethodGet, pathSalaries, map[string]string{"Accept": "application/json"})
	if w.Code != http.StatusUnauthorized || w.Header().Get("Location") != "" {
		t.Fatalf("API request needing MFA: %d to %q, want 401", w.Code, w.Header().Get("Location"))
	}
	var body map[string]any
	json.Unmarshal(w.Body.Bytes(), &body)
	if body["error"] != "insufficient_user_authentication" || body["acr_values"] != ACRMultiFactor {
		t.Errorf("401 body: %v", body)
	}
	for _, hdr := range []map[string]string{{"X-Requested-With": "XMLHttpRequest"}, {"Sec-Fetch-Mode": "cors"}} {
		if w := u.do(http.MethodGet, pathSalaries, hdr); w.Code != http.StatusUnauthorized {
			t.Errorf("%v: got %d, want 401", hdr, w.Code)
		}
	}
	// No session at all: 401 login_required for an API call.
	anon := h.alice()
	if w := anon.do(http.MethodGet, pathPrivate, map[string]string{"Accept": "application/json"}); w.Code != http.StatusUnauthorized ||
		!strings.Contains(w.Body.String(), "login_required") {
		t.Errorf("anonymous API call: %d %s", w.Code, w.Body.String())
	}
}

func TestStepUpGivesACRAMRAndAuthTime(t *testing.T) {
	for _, always := range []bool{false, true} {
		t.Run(fmt.Sprintf("AlwaysIncludeAuthTime=%v", always), func(t *testing.T) {
			h := newHarness(t, harnessOpts{tenant: auth0test.Config{AlwaysIncludeAuthTime: always}})
			u := h.alice()
			if w := u.visit(pathPrivate); w.Code != http.StatusOK {
				t.Fatalf("login: %d", w.Code)
			}
			before := u.session()
			oldCookie := u.cookies[h.c.sessionCookie].Value

			h.clock.Advance(time.Minute)
			w := u.get(pathSalaries)
			loc, _ := url.Parse(w.Header().Get("Location"))
			if got := loc.Query().Get("acr_values"); got != ACRMultiFactor {
				t.Fatalf("step-up redirect acr_values: got %q, want %q", got, ACRMultiFactor)
			}
			cb := u.authorize(w)
			if !slices.Contains(u.tb.Pages, "otp") {
				t.Errorf("the tenant did not ask for the OTP (pages %v)", u.tb.Pages)
			}
			if w := u.callback(cb); w.Code != http.StatusFound {
				t.Fatalf("callback: %d %s", w.Code, w.Body.String())
			}
			if w := u.get(pathSalaries); w.Code != http.StatusOK {
				t.Fatalf("after step-up: %d", w.Code)
			}
			s := u.session()
			// auth_time is the SSO session's last interactive authentication (the
			// first login here); StepUpAt says when the step-up completed.
			// Auth0 sends auth_time only with max_age / prompt=login: the step-up sent
			// neither, so the strict tenant sends none.
			want := Authentication{ACR: ACRMultiFactor, AMR: s.Authentication.AMR, AuthTime: before.Authentication.AuthTime}
			if diff := cmp.Diff(want, s.Authentication); diff != "" || !slices.Contains(s.Authentication.AMR, "mfa") || s.Authentication.AuthTime.IsZero() != !always {
				t.Errorf("evidence (-want +got):\n%s (amr %v must contain mfa)", diff, s.Authentication.AMR)
			}
			if !s.StepUpAt.Equal(h.clock.Now()) || s.StepUp.ACR != ACRMultiFactor {
				t.Errorf("StepUpAt %v, StepUp %+v", s.StepUpAt, s.StepUp)
			}
			if s.Handle != before.Handle || !s.CreatedAt.Equal(before.CreatedAt) {
				t.Errorf("step-up started a new session (handle %s→%s)", before.Handle, s.Handle)
			}
			// The cookie rotated: the old one is dead.
			if u.cookies[h.c.sessionCookie].Value == oldCookie {
				t.Fatal("the session cookie did not rotate on step-up")
			}
			if _, err := h.c.LoadSession(context.Background(), oldCookie); !errors.Is(err, ErrNoSession) {
				t.Errorf("old cookie after step-up: got %v, want ErrNoSession", err)
			}
			// Background jobs find it by handle.
			js, err := h.c.Session(context.Background(), s.Handle)
			if err != nil || js.StepUp.ACR != ACRMultiFactor {
				t.Fatalf("Session(handle): %+v, %v", js, err)
			}
			if err := h.c.CheckSession(js, MFA); err != nil {
				t.Errorf("CheckSession(MFA) for the job: %v", err)
			}
		})
	}
}

func TestTenantIgnoringACRValuesIsNotAStepUp(t *testing.T) {
	h := newHarness(t, harnessOpts{tenant: auth0test.Config{IgnoreACRValues: true}})
	u := h.alice()
	u.visit(pathPrivate)
	calls := h.tn.Calls("/authorize")

	w := u.callback(u.authorize(u.get(pathSalaries)))
	if w.Code != http.StatusForbidden || w.Header().Get("Location") != "" {
		t.Fatalf("callback of an ignored step-up: %d to %q, want 403 and no redirect", w.Code, w.Header().Get("Location"))
	}
	if !strings.Contains(w.Body.String(), "did not perform the requested step-up") {
		t.Errorf("error page does not say the tenant did not perform MFA: %s", w.Body.String())
	}
	if got := h.tn.Calls("/authorize") - calls; got != 1 {
		t.Errorf("/authorize calls: %d, want 1 (no second redirect)", got)
	}
	// The session is still a plain login; the page still refuses.
	if s := u.session(); !s.StepUpAt.IsZero() {
		t.Errorf("an ignored step-up was recorded: %+v", s)
	}

	// The same through Exchange: a typed error with the cause.
	ar, cb := h.startAuthorize(u.tb, aliceCreds, AuthorizeOptions{Policy: MFA})
	_, err := h.c.Exchange(context.Background(), cb, ar.Transaction)
	var se *StepUpError
	if !errors.As(err, &se) || se.Reason != ReasonNotPerformed || se.Cause != ReasonACRMissing || !errors.Is(err, ErrStepUpRequired) {
		t.Fatalf("got %v, want *StepUpError{ReasonNotPerformed, Cause: ReasonACRMissing}", err)
	}
}

// Callbacks that must fail, each with its typed error, and leave no session.
func TestCallbackFailures(t *testing.T) {
	denyBob := func(ev *auth0test.ActionEvent, api *auth0test.ActionAPI) {
		if ev.User.Email == auth0test.BobEmail {
			api.Deny("no access for bob")
		}
	}
	h := newHarness(t, harnessOpts{tenant: auth0test.Config{Action: denyBob}})
	ctx := context.Background()

	check := func(t *testing.T, got error, want error, status int) {
		t.Helper()
		if !errors.Is(got, want) {
			t.Errorf("Exchange: got %v, want %v", got, want)
		}
		if ErrorStatus(got) != status {
			t.Errorf("ErrorStatus: got %d, want %d", ErrorStatus(got), status)
		}
	}

	t.Run("replayed callback", func(t *testing.T) {
		u := h.alice()
		cb := u.authorize(u.get(pathPrivate))
		if w := u.callback(cb); w.Code != http.StatusFound {
			t.Fatalf("first callback: %d", w.Code)
		}
		// The browser's own replay: its transaction cookie is gone.
		if w := u.callback(cb); w.Code != http.StatusBadRequest {
			t.Fatalf("replay: %d, want 400", w.Code)
		}
		// Even with the transaction cookie kept (a copy taken before the
		// callback), the marker refuses it, and sets no cookie.
		ar, cb2 := h.startAuthorize(nil, aliceCreds, AuthorizeOptions{})
		if _, err := h.c.Exchange(ctx, cb2, ar.Transaction); err != nil {
			t.Fatal(err)
		}
		u2 := h.alice()
		u2.cookies = map[string]*http.Cookie{ar.Cookie().Name: ar.Cookie()}
		w := u2.callback(&url.URL{Path: "/callback", RawQuery: cb2.Encode()})
		if w.Code != http.StatusBadRequest || len(w.Result().Cookies()) != 0 {
			t.Fatalf("replay: %d, cookies %v; want 400 and no session", w.Code, w.Result().Cookies())
		}
		_, err := h.c.Exchange(ctx, cb2, ar.Transaction)
		check(t, err, ErrTransactionNotFound, http.StatusBadRequest)
	})
	t.Run("callback from another browser", func(t *testing.T) {
		ar, cb := h.startAuthorize(nil, aliceCreds, AuthorizeOptions{})
		writes := h.cs.writes()
		_, err := h.c.Exchange(ctx, cb, "")
		check(t, err, ErrTransactionNotFound, http.StatusBadRequest)
		other, _ := h.c.AuthorizeURL(ctx, AuthorizeOptions{})
		_, err = h.c.Exchange(ctx, cb, other.Transaction) // another transaction's cookie
		check(t, err, ErrStateMismatch, http.StatusBadRequest)
		if got := h.cs.writes() - writes; got != 0 {
			t.Errorf("foreign callbacks wrote %d records, want none", got)
		}
		// Nothing was consumed: the right browser still completes it.
		if _, err = h.c.Exchange(ctx, cb, ar.Transaction); err != nil {
			t.Fatalf("the owner's callback after foreign ones: %v", err)
		}

		u := h.alice()
		cb2 := u.authorize(u.get(pathPrivate))
		thief := h.alice()
		w := thief.callback(cb2) // no transaction cookie
		if w.Code != http.StatusBadRequest || thief.cookies[h.c.sessionCookie] != nil {
			t.Fatalf("foreign browser: %d, want 400 and no session", w.Code)
		}
		if w := u.callback(cb2); w.Code != http.StatusFound || u.cookies[h.c.sessionCookie] == nil {
			t.Fatalf("the victim's callback after the thief's: %d, want 302 and a session", w.Code)
		}
	})
	t.Run("unknown state", func(t *testing.T) {
		_, err := h.c.Exchange(ctx, url.Values{"state": {randomToken()}, "code": {"x"}}, "")
		check(t, err, ErrTransactionNotFound, http.StatusBadRequest)
		_, err = h.c.Exchange(ctx, url.Values{"state": {randomToken()}, "code": {"x"}}, randomToken())
		check(t, err, ErrTransactionNotFound, http.StatusBadRequest)
		_, err = h.c.Exchange(ctx, url.Values{"state": {"../../etc"}, "code": {"x"}}, randomToken())
		check(t, err, ErrTransactionNotFound, http.StatusBadRequest)
		_, err = h.c.Exchange(ctx, url.Values{"code": {"x"}}, randomToken())
		check(t, err, ErrInvalidCallback, http.StatusBadRequest)
	})
	t.Run("expired state", func(t *testing.T) {
		ar, cb := h.startAuthorize(nil, aliceCreds, AuthorizeOptions{})
		h.clock.Advance(DefaultTransactionTTL + time.Second)
		_, err := h.c.Exchange(ctx, cb, ar.Transaction)
		check(t, err, ErrTransactionNotFound, http.StatusBadRequest)
	})
	t.Run("access denied", func(t *testing.T) {
		u := h.newUser(auth0test.Credentials{Email: auth0test.BobEmail, Password: auth0test.BobPassword})
		cb := u.authorize(u.get(pathPrivate))
		if cb.Query().Get("error") != "access_denied" {
			t.Fatalf("tenant callback %s, want error=access_denied", cb)
		}
		w := u.callback(cb)
		if w.Code != http.StatusForbidden || u.cookies[h.c.sessionCookie] != nil {
			t.Fatalf("denied login: %d, want 403 and no session", w.Code)
		}
		ar, cb2 := h.startAuthorize(nil, u.creds, AuthorizeOptions{})
		_, err := h.c.Exchange(ctx, cb2, ar.Transaction)
		var ae *AuthorizeError
		if !errors.As(err, &ae) || ae.Code != "access_denied" || ae.Description != "no access for bob" {
			t.Fatalf("got %v, want *AuthorizeError access_denied", err)
		}
	})
	t.Run("code already redeemed", func(t *testing.T) {
		ar, cb := h.startAuthorize(nil, aliceCreds, AuthorizeOptions{})
		if _, err := h.c.Exchange(ctx, cb, ar.Transaction); err != nil {
			t.Fatal(err)
		}
		// Same code, new transaction (the marker names state and code).
		ar2, _ := h.c.AuthorizeURL(ctx, AuthorizeOptions{})
		cb.Set("state", ar2.State)
		_, err := h.c.Exchange(ctx, cb, ar2.Transaction)
		var te *TenantError
		if !errors.As(err, &te) || te.Code != "invalid_grant" || te.StatusCode != http.StatusForbidden || errors.Is(err, ErrTenantUnavailable) {
			t.Fatalf("got %v, want *TenantError invalid_grant 403", err)
		}
	})
}

func TestMaxAgeTooOldSendsBackToLogin(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.alice()
	if w := u.visit(pathFresh); w.Code != http.StatusOK {
		t.Fatalf("first visit: %d", w.Code)
	}
	h.clock.Advance(4 * time.Minute)
	if w := u.get(pathFresh); w.Code != http.StatusOK {
		t.Fatalf("4 minutes later: %d, want 200", w.Code)
	}
	h.clock.Advance(2 * time.Minute)
	w := u.get(pathFresh)
	loc, _ := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusFound || loc.Query().Get("max_age") != "300" || loc.Query().Get("acr_values") != ACRMultiFactor {
		t.Fatalf("6 minutes later: %d to %s, want a redirect with max_age=300 and acr_values", w.Code, loc)
	}
	cb := u.authorize(w)
	if !slices.Contains(u.tb.Pages, "login") || !slices.Contains(u.tb.Pages, "otp") {
		t.Errorf("the tenant did not re-authenticate (pages %v)", u.tb.Pages)
	}
	u.callback(cb)
	if w := u.get(pathFresh); w.Code != http.StatusOK {
		t.Fatalf("after re-authentication: %d", w.Code)
	}
	if got := u.session().Authentication.AuthTime; !got.Equal(h.clock.Now().Truncate(time.Second)) {
		t.Errorf("auth_time %v, want now", got)
	}
}

func TestPerConnectionPolicies(t *testing.T) {
	h := newHarness(t, harnessOpts{client: func(c *Config) {
		c.ConnectionPolicies = map[string]Policy{auth0test.GoogleConnection: MFA.WithMaxAge(5 * time.Minute)}
	}})
	alice := h.alice()
	carol := h.newUser(auth0test.Credentials{Email: auth0test.CarolEmail})
	w := carol.get("/login?connection=google-oauth2&return_to=" + url.QueryEscape(pathReports))
	if w := carol.callback(carol.authorize(w)); w.Header().Get("Location") != pathReports {
		t.Fatalf("carol's login: %d to %q", w.Code, w.Header().Get("Location"))
	}
	for _, u := range []*user{alice, carol} {
		if w := u.visit(pathReports); w.Code != http.StatusOK {
			t.Fatalf("%s: %d", u.creds.Email, w.Code)
		}
	}
	if got := carol.session().Connection; got != auth0test.GoogleConnection {
		t.Errorf("carol's connection: %q", got)
	}
	h.clock.Advance(6 * time.Minute)
	if w := alice.get(pathReports); w.Code != http.StatusOK {
		t.Errorf("alice (database, 10 minutes) after 6 minutes: %d, want 200", w.Code)
	}
	w = carol.get(pathReports)
	loc, _ := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusFound || loc.Query().Get("max_age") != "300" || loc.Query().Get("connection") != auth0test.GoogleConnection {
		t.Errorf("carol (google-oauth2, 5 minutes) after 6 minutes: %d to %s, want a step-up with max_age=300 on google-oauth2", w.Code, loc)
	}
	// A plain login page is the same for every connection.
	if w := carol.get(pathPrivate); w.Code != http.StatusOK {
		t.Errorf("carol on a login-only page: %d", w.Code)
	}
}

func TestKeyRotationBetweenLogins(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if w := h.alice().visit(pathPrivate); w.Code != http.StatusOK {
		t.Fatalf("first login: %d", w.Code)
	}
	h.clock.Advance(time.Minute) // the key set refetches on an unknown kid at most every 30 s
	h.tn.RotateKeys()
	h.tn.RotateKeys() // past the published "next" key too: the kid is unknown to the cached set
	if w := h.alice().visit(pathPrivate); w.Code != http.StatusOK {
		t.Fatalf("login after key rotation: %d %s", w.Code, w.Body.String())
	}
	if got := h.tn.Calls("/.well-known/jwks.json"); got != 2 {
		t.Errorf("JWKS fetches: %d, want 2 (first use, then the unknown kid)", got)
	}
}

// A table of forged ID tokens, each rejected with its typed error.
func TestForgedIDTokens(t *testing.T) {
	h := newHarness(t, harnessOpts{tenant: auth0test.Config{IssuerInAuthorizationResponse: true}})
	ctx := context.Background()
	tb := h.tn.NewBrowser()
	h.startAuthorize(tb, aliceCreds, AuthorizeOptions{Policy: MFA}) // SSO with MFA: later logins need no pages
	tests := []struct {
		name   string
		policy Policy
		maxAge *time.Duration
		forge  func(hd, c map[string]any)
		want   error
		reason Reason // for StepUpError
	}{
		{name: "alg none", forge: func(hd, c map[string]any) { hd["alg"] = "none" }, want: ErrTokenAlgorithm},
		{name: "HS256 signed with the RSA public key", forge: func(hd, c map[string]any) { hd["alg"] = "HS256" }, want: ErrTokenAlgorithm},
		{name: "unknown kid", forge: func(hd, c map[string]any) { hd["kid"] = "not-a-key" }, want: ErrTokenUnknownKey},
		{name: "wrong iss", forge: func(hd, c map[string]any) { c["iss"] = "https://evil.example/" }, want: ErrTokenIssuer},
		{name: "missing iss", forge: func(hd, c map[string]any) { delete(c, "iss") }, want: ErrTokenIssuer},
		{name: "wrong aud", forge: func(hd, c map[string]any) { c["aud"] = "another-client" }, want: ErrTokenAudience},
		{name: "missing aud", forge: func(hd, c map[string]any) { delete(c, "aud") }, want: ErrTokenAudience},
		{name: "several aud without azp", forge: func(hd, c map[string]any) { c["aud"] = []any{c["aud"], "other"}; delete(c, "azp") }, want: ErrTokenAuthorizedParty},
		{name: "several aud, wrong azp", forge: func(hd, c map[string]any) { c["aud"] = []any{c["aud"], "other"}; c["azp"] = "other" }, want: ErrTokenAuthorizedParty},
		{name: "missing sub", forge: func(hd, c map[string]any) { delete(c, "sub") }, want: ErrTokenSubject},
		{name: "missing iat", forge: func(hd, c map[string]any) { delete(c, "iat") }, want: ErrTokenIssuedAt},
		{name: "iat in the future", forge: func(hd, c map[string]any) { c["iat"] = h.clock.Now().Add(time.Hour).Unix() }, want: ErrTokenIssuedAt},
		{name: "expired", forge: func(hd, c map[string]any) { c["exp"] = h.clock.Now().Add(-2 * time.Minute).Unix() }, want: ErrTokenExpired},
		{name: "wrong nonce", forge: func(hd, c map[string]any) { c["nonce"] = randomToken() }, want: ErrTokenNonce},
		{name: "missing nonce", forge: func(hd, c map[string]any) { delete(c, "nonce") }, want: ErrTokenNonce},
		{name: "auth_time too old", policy: MFA.WithMaxAge(time.Minute), forge: func(hd, c map[string]any) { c["auth_time"] = h.clock.Now().Add(-time.Hour).Unix() }, want: ErrTokenAuthTime},
		{name: "auth_time missing with max_age", policy: MFA.WithMaxAge(time.Minute), forge: func(hd, c map[string]any) { delete(c, "auth_time") }, want: ErrTokenAuthTime},
		{name: "acr missing", policy: MFA, forge: func(hd, c map[string]any) { delete(c, "acr") }, want: ErrStepUpRequired, reason: ReasonACRMissing},
		{name: "acr wrong", policy: MFA, forge: func(hd, c map[string]any) { c["acr"] = "urn:weak" }, want: ErrStepUpRequired, reason: ReasonACRMismatch},
		{name: "amr missing", policy: MFA, forge: func(hd, c map[string]any) { delete(c, "amr") }, want: ErrStepUpRequired, reason: ReasonAMRMissing},
		{name: "amr without mfa", policy: MFA, forge: func(hd, c map[string]any) { c["amr"] = []any{"pwd"} }, want: ErrStepUpRequired, reason: ReasonAMRMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.tn.ForgeIDTokens(tc.forge)
			defer h.tn.ForgeIDTokens(nil)
			ar, cb := h.startAuthorize(tb, aliceCreds, AuthorizeOptions{Policy: tc.policy, MaxAge: tc.maxAge})
			login, err := h.c.Exchange(ctx, cb, ar.Transaction)
			if err == nil {
				t.Fatalf("a forged ID token was accepted: %+v", login.IDToken)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.reason != "" {
				var se *StepUpError
				if !errors.As(err, &se) || se.Reason != ReasonNotPerformed || se.Cause != tc.reason {
					t.Fatalf("got %v, want ReasonNotPerformed caused by %q", err, tc.reason)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("got %v, want a *TokenError matching ErrInvalidToken", err)
			}
		})
	}

	// A bad signature: the token is altered after signing, in transit.
	t.Run("bad signature", func(t *testing.T) {
		c := h.newClient(h.cs, func(cfg *Config) {
			base := h.tn.Client()
			cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				resp, err := base.Transport.RoundTrip(r)
				if err != nil || r.URL.Path != "/oauth/token" {
					return resp, err
				}
				return tamperIDToken(resp)
			})}
		})
		ar, err := c.AuthorizeURL(ctx, AuthorizeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cb, err := tb.Login(ctx, ar.URL, aliceCreds)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Exchange(ctx, cb.Query(), ar.Transaction)
		if !errors.Is(err, ErrTokenSignature) || !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("got %v, want ErrTokenSignature", err)
		}
	})

	// RFC 9207: a wrong iss in the authorization response is refused before the code is redeemed.
	t.Run("authorization response iss mismatch", func(t *testing.T) {
		ar, cb := h.startAuthorize(tb, aliceCreds, AuthorizeOptions{})
		if cb.Get("iss") != h.tn.Issuer() {
			t.Fatalf("tenant sent iss %q", cb.Get("iss"))
		}
		cb.Set("iss", "https://evil.example/")
		calls := h.tn.Calls("/oauth/token")
		if _, err := h.c.Exchange(ctx, cb, ar.Transaction); !errors.Is(err, ErrIssuerMismatch) {
			t.Fatalf("got %v, want ErrIssuerMismatch", err)
		}
		if h.tn.Calls("/oauth/token") != calls {
			t.Error("the code was redeemed despite the issuer mismatch")
		}
	})
}

func TestRequireIssuerParameter(t *testing.T) {
	h := newHarness(t, harnessOpts{client: func(c *Config) { c.RequireIssuerParameter = true }})
	ar, cb := h.startAuthorize(nil, aliceCreds, AuthorizeOptions{})
	if _, err := h.c.Exchange(context.Background(), cb, ar.Transaction); !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("callback without iss: got %v, want ErrIssuerMismatch", err)
	}
	h2 := newHarness(t, harnessOpts{tenant: auth0test.Config{IssuerInAuthorizationResponse: true},
		client: func(c *Config) { c.RequireIssuerParameter = true }})
	if w := h2.alice().visit(pathPrivate); w.Code != http.StatusOK {
		t.Fatalf("with iss: %d", w.Code)
	}
}

func TestFailClosed(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.alice()
	u.visit(pathPrivate)

	h.cs.failing.Store(true)
	for _, p := range []string{pathPrivate, pathSalaries} {
		w := u.get(p)
		if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "hello") {
			t.Errorf("%s with the store down: %d, want 503", p, w.Code)
		}
	}
	// Starting a login needs no store: the transaction is the cookie.
	anon := h.alice()
	if w := anon.get(pathPrivate); w.Code != http.StatusFound {
		t.Errorf("starting a login with the store down: %d, want 302 to the tenant", w.Code)
	}
	h.cs.failing.Store(false)

	// The tenant's token endpoint down: 503, and no session.
	v := h.alice()
	cb := v.authorize(v.get(pathPrivate))
	h.tn.InjectFault("/oauth/token", auth0test.Fault{Status: http.StatusServiceUnavailable, Times: 1})
	if w := v.callback(cb); w.Code != http.StatusServiceUnavailable || v.cookies[h.c.sessionCookie] != nil {
		t.Errorf("token endpoint down: %d, want 503 and no session", w.Code)
	}
	ar, cb2 := h.startAuthorize(nil, aliceCreds, AuthorizeOptions{})
	h.tn.InjectFault("/oauth/token", auth0test.Fault{Drop: true, Times: 1})
	_, err := h.c.Exchange(context.Background(), cb2, ar.Transaction)
	var te *TenantError
	if !errors.Is(err, ErrTenantUnavailable) || !errors.As(err, &te) || te.Endpoint != "/oauth/token" {
		t.Errorf("dropped connection: got %v, want a *TenantError matching ErrTenantUnavailable", err)
	}

	// The JWKS unreachable on first use: 503, nothing let through.
	h3 := newHarness(t, harnessOpts{})
	h3.tn.InjectFault("/.well-known/jwks.json", auth0test.Fault{Status: http.StatusInternalServerError})
	ar, cb3 := h3.startAuthorize(nil, aliceCreds, AuthorizeOptions{})
	_, err = h3.c.Exchange(context.Background(), cb3, ar.Transaction)
	if !errors.Is(err, ErrTenantUnavailable) || ErrorStatus(err) != http.StatusServiceUnavailable {
		t.Errorf("JWKS down: got %v (status %d), want ErrTenantUnavailable and 503", err, ErrorStatus(err))
	}
	// Service resumes by itself once the tenant is back: no restart.
	h3.tn.ClearFaults()
	h3.clock.Advance(5 * time.Second)
	if w := h3.alice().visit(pathPrivate); w.Code != http.StatusOK {
		t.Errorf("login after the JWKS came back: %d %s", w.Code, w.Body.String())
	}
}

func TestSessionExpiry(t *testing.T) {
	h := newHarness(t, harnessOpts{client: func(c *Config) {
		c.SessionIdleTimeout = 30 * time.Minute
		c.SessionLifetime = 2 * time.Hour
	}})
	u := h.alice()
	u.visit(pathPrivate)
	ctx := context.Background()

	// A page load writes nothing: one GetEx reads the session and moves
	// its idle deadline (the record's TTL), whenever it comes.
	writes, getexs := h.cs.writes(), h.cs.getexs.Load()
	h.clock.Advance(30 * time.Second)
	u.get(pathPrivate)
	h.clock.Advance(40 * time.Second)
	u.get(pathPrivate)
	if got := h.cs.writes() - writes; got != 0 {
		t.Errorf("two page loads wrote %d times, want 0", got)
	}
	if got := h.cs.getexs.Load() - getexs; got != 2 {
		t.Errorf("two page loads made %d GetEx calls, want 2", got)
	}
	if s := u.session(); !s.IdleExpiresAt.Equal(h.clock.Now().Add(30 * time.Minute).Truncate(time.Millisecond)) {
		t.Errorf("idle deadline %v, want now+30m", s.IdleExpiresAt)
	}
	// Active every 25 minutes: alive until the absolute limit.
	for range 4 {
		h.clock.Advance(25 * time.Minute)
		if w := u.get(pathPrivate); w.Code != http.StatusOK {
			t.Fatalf("active session at %v: %d", h.clock.Now(), w.Code)
		}
	}
	h.clock.Advance(25 * time.Minute) // 2h06m after login
	if w := u.get(pathPrivate); w.Code != http.StatusFound {
		t.Errorf("past the absolute lifetime: %d, want a redirect to log in", w.Code)
	}

	// Idle: 30 minutes without a request ends it.
	v := h.alice()
	v.visit(pathPrivate)
	handle := v.session().Handle
	// The idle deadline is the record's TTL: there a millisecond before,
	// gone at it.
	h.clock.Advance(30*time.Minute - time.Millisecond)
	if _, err := h.mem.Get(ctx, h.c.sessionKey(handle)); err != nil {
		t.Errorf("the session record before its idle deadline: %v", err)
	}
	h.clock.Advance(time.Millisecond)
	if w := v.get(pathPrivate); w.Code != http.StatusFound {
		t.Errorf("idle for 30 minutes: %d, want a redirect to log in", w.Code)
	}
	if _, err := h.c.Session(ctx, handle); !errors.Is(err, ErrNoSession) {
		t.Errorf("Session(handle) after idle expiry: %v, want ErrNoSession", err)
	}
	if _, err := h.mem.Get(ctx, h.c.sessionKey(handle)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the store still has the idle session: %v", err)
	}
}

// A silent login (no amr) after a step-up keeps the step-up evidence and
// never upgrades it.
func TestSilentLoginKeepsStepUpEvidence(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.alice()
	u.visit(pathSalaries)
	before := u.session()
	if before.StepUpAt.IsZero() {
		t.Fatal("no step-up recorded")
	}
	h.clock.Advance(2 * time.Minute)
	ctx := context.Background()
	ar, cb := h.startAuthorize(u.tb, aliceCreds, AuthorizeOptions{Prompt: "none"})
	login, err := h.c.Exchange(ctx, cb, ar.Transaction)
	if err != nil {
		t.Fatal(err)
	}
	if login.IDToken.AMR != nil || !login.Silent {
		t.Fatalf("silent login: amr %v, silent %v", login.IDToken.AMR, login.Silent)
	}
	s, err := h.c.StartSession(ctx, login, before)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before.Authentication, s.Authentication); diff != "" {
		t.Errorf("silent login changed the evidence (-before +after):\n%s", diff)
	}
	if !s.StepUpAt.Equal(before.StepUpAt) || s.Handle != before.Handle {
		t.Errorf("step-up at %v (was %v), handle changed: %v", s.StepUpAt, before.StepUpAt, s.Handle != before.Handle)
	}
	if err := h.c.CheckSession(s, MFA); err != nil {
		t.Errorf("MFA after a silent login: %v", err)
	}

	// A new session from a silent login alone is not a step-up.
	bare, err := h.c.StartSession(ctx, &LoginResult{IDToken: &IDToken{Subject: "auth0|x", ACR: ACRMultiFactor, AMR: []string{"mfa"}}, Silent: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.c.CheckSession(bare, MFA); !errors.Is(err, ErrStepUpRequired) {
		t.Errorf("a silent-only session passed MFA: %v", err)
	}
}

func TestReplicasShareSessions(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	replica := h.newClient(h.cs, nil)
	u := h.alice()
	w := u.get(pathSalaries)  // replica A builds the authorize URL
	u.mux = h.newMux(replica) // the callback lands on B
	u.callback(u.authorize(w))
	u.mux = h.mux // and the session works on A
	if w := u.get(pathSalaries); w.Code != http.StatusOK {
		t.Fatalf("session from replica B on replica A: %d", w.Code)
	}
}

func TestTokensSealedPerSession(t *testing.T) {
	api := "https://api.fabrikam.example"
	h := newHarness(t, harnessOpts{
		tenant: auth0test.Config{APIs: []auth0test.API{{Identifier: api, Scopes: []string{"read:salaries"}}}},
		client: func(c *Config) { c.Audience = api; c.Scopes = []string{"profile", "email", "offline_access"} },
	})
	a, b := h.alice(), h.alice()
	a.visit(pathPrivate)
	b.visit(pathPrivate)
	sa, sb := a.session(), b.session()
	ctx := context.Background()
	tok, err := h.c.Token(ctx, sa, api)
	if err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("Token: %+v, %v", tok, err)
	}
	for _, key := range []string{h.c.sessionKey(sa.Handle), h.c.tokenKey(sa.Handle, api), h.c.idTokenKey(sa.Handle)} {
		raw, err := h.mem.Get(ctx, key)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if strings.Contains(string(raw), tok.AccessToken[:40]) || strings.Contains(string(raw), tok.RefreshToken) || strings.Contains(string(raw), "alice") {
			t.Fatalf("%s holds a token or the user in clear", key)
		}
	}
	// The session record holds no token: it is small.
	if raw, _ := h.mem.Get(ctx, h.c.sessionKey(sa.Handle)); len(raw) > 400 || len(raw) >= len(tok.AccessToken) {
		t.Errorf("the session record is %d bytes, want it without tokens", len(raw))
	}
	// The access token verifies with the Client's Verifier (shared key set).
	v, err := h.c.Verifier(api)
	if err != nil {
		t.Fatal(err)
	}
	at, err := v.Verify(ctx, tok.AccessToken)
	if err != nil || at.Subject != "auth0|alice" {
		t.Fatalf("Verify: %+v, %v", at, err)
	}
	// Copied to another session's key, a sealed token record does not
	// open: that session has no token.
	raw, _ := h.mem.Get(ctx, h.c.tokenKey(sa.Handle, api))
	if err := h.mem.Set(ctx, h.c.tokenKey(sb.Handle, api), raw, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Token(ctx, sb, api); !errors.Is(err, ErrNoSession) {
		t.Fatalf("a token record moved to another session: got %v, want ErrNoSession", err)
	}
	if _, err := h.c.TokenSource(ctx, sb.Handle, TokenSourceOptions{Audience: api}).Token(); !errors.Is(err, ErrNoSession) {
		t.Fatalf("TokenSource on a token record moved to another session: got %v, want ErrNoSession", err)
	}
	// Nor does one copied to another audience of the same session.
	if err := h.mem.Set(ctx, h.c.tokenKey(sa.Handle, "https://other.example"), raw, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Token(ctx, sa, "https://other.example"); !errors.Is(err, ErrNoSession) {
		t.Fatalf("a token record moved to another audience: got %v, want ErrNoSession", err)
	}
	if _, err := h.c.Verifier(""); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Verifier without audience: %v", err)
	}
}

func TestClientAuthMethodsAndPAR(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		par    bool
	}{
		{"client_secret_basic", AuthClientSecretBasic, false},
		{"client_secret_post with PAR", AuthClientSecretPost, true},
		{"client_secret_basic with PAR", AuthClientSecretBasic, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := auth0test.DefaultApplication()
			app.TokenEndpointAuthMethod = tc.method
			h := newHarness(t, harnessOpts{
				tenant: auth0test.Config{Applications: []auth0test.Application{app}},
				client: func(c *Config) { c.TokenEndpointAuthMethod = tc.method; c.UsePAR = tc.par },
			})
			if w := h.alice().visit(pathSalaries); w.Code != http.StatusOK {
				t.Fatalf("login: %d %s", w.Code, w.Body.String())
			}
			wantPAR := 0
			if tc.par {
				wantPAR = 1
			}
			if got := h.tn.Calls("/oauth/par"); got != wantPAR {
				t.Errorf("PAR calls: %d, want %d", got, wantPAR)
			}
			if got := h.tn.Calls("/oauth/token"); got != 1 {
				t.Errorf("token calls: %d, want 1 (no auth-style probing)", got)
			}
		})
	}
}

func TestSecureCookiesOnHTTPS(t *testing.T) {
	app := auth0test.DefaultApplication()
	app.CallbackURLs = []string{"https://app.fabrikam.example/callback"}
	h := newHarness(t, harnessOpts{
		tenant: auth0test.Config{Applications: []auth0test.Application{app}},
		client: func(c *Config) { c.RedirectURL = "https://app.fabrikam.example/callback" },
	})
	u := h.alice()
	w := u.get(pathPrivate)
	txName := h.c.TransactionCookieName(mustParse(t, w.Header().Get("Location")).Query().Get("state"))
	txc := u.cookies[txName]
	w = u.callback(u.authorize(w))
	if w.Code != http.StatusFound {
		t.Fatalf("login: %d", w.Code)
	}
	u.cookies[txName] = txc
	for _, name := range []string{"__Host-stepup_session", txName} {
		if !strings.HasPrefix(name, "__Host-stepup_") {
			t.Errorf("cookie name %q, want the __Host- prefix", name)
		}
		ck := u.cookies[name]
		if ck == nil || !ck.Secure || !ck.HttpOnly || ck.Path != "/" || ck.Domain != "" || ck.SameSite != http.SameSiteLaxMode {
			t.Errorf("%s: %+v, want Secure, HttpOnly, Path=/, no Domain, SameSite=Lax", name, ck)
		}
	}
}

func TestReturnPathIsLocal(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.alice()
	for _, rt := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example"} {
		w := u.get("/login?return_to=" + url.QueryEscape(rt))
		cb := u.authorize(w)
		w = u.callback(cb)
		if got := w.Header().Get("Location"); got != "/" {
			t.Errorf("return_to %q: redirected to %q, want /", rt, got)
		}
	}
}

// Parallel logins in two tabs of one browser, each with its own transaction cookie: both complete.
func TestTwoTabs(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.alice()
	w1 := u.get(pathPrivate)
	w2 := u.get(pathSalaries)
	cb1, cb2 := u.authorize(w1), u.authorize(w2)
	if w := u.callback(cb2); w.Code != http.StatusFound {
		t.Fatalf("tab 2: %d %s", w.Code, w.Body.String())
	}
	if w := u.callback(cb1); w.Code != http.StatusFound {
		t.Fatalf("tab 1: %d %s", w.Code, w.Body.String())
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
