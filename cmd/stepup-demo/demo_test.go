package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/internal/redistest"
)

func TestRedirectParameters(t *testing.T) {
	d := startDemo(t, map[string]string{})
	tests := []struct {
		name, path string
		header     http.Header
		stepUp     bool
	}{
		{name: "customers without Accept", path: "/customers"},
		{name: "customers as a browser", path: "/customers", header: http.Header{"Accept": {"text/html,application/xhtml+xml"}, "Sec-Fetch-Mode": {"navigate"}}},
		{name: "employees without Accept", path: "/employees", stepUp: true},
		{name: "employees as a browser", path: "/employees", header: http.Header{"Accept": {"text/html"}}, stepUp: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgent(t)
			resp, body := a.do(http.MethodGet, d.url+tc.path, tc.header)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d, want 302; body %.200s", resp.StatusCode, body)
			}
			loc, err := resp.Location()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := loc.Scheme+"://"+loc.Host+loc.Path, "https://"+d.tenant.Domain()+"/authorize"; got != want {
				t.Fatalf("redirect to %s, want %s", got, want)
			}
			q := loc.Query()
			for k, want := range map[string]string{
				"response_type":         "code",
				"client_id":             demoClientID,
				"redirect_uri":          d.url + "/callback",
				"code_challenge_method": "S256",
				"audience":              defaultAudience,
			} {
				if got := q.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if !slices.Contains(strings.Fields(q.Get("scope")), "openid") {
				t.Errorf("scope %q lacks openid", q.Get("scope"))
			}
			for _, k := range []string{"state", "nonce", "code_challenge"} {
				if len(q.Get(k)) < 43 {
					t.Errorf("%s = %q, want at least 43 random characters", k, q.Get(k))
				}
			}
			if q.Get("state") == q.Get("nonce") {
				t.Error("state equals nonce")
			}
			acr, hasACR := q["acr_values"]
			switch {
			case tc.stepUp && !cmp.Equal(acr, []string{stepup.ACRMultiFactor}):
				t.Errorf("acr_values = %q, want [%q]", acr, stepup.ACRMultiFactor)
			case tc.stepUp && q.Get("max_age") != "600":
				t.Errorf("max_age = %q, want 600 (STEPUP_MAX_AGE default 10m)", q.Get("max_age"))
			case !tc.stepUp && (hasACR || q.Has("max_age")):
				t.Errorf("a plain login sends acr_values %q, max_age %q", acr, q.Get("max_age"))
			}
			if !slices.ContainsFunc(a.c.Jar.Cookies(mustURL(d.url)), func(c *http.Cookie) bool { return strings.HasPrefix(c.Name, "stepup_tx_") }) {
				t.Error("no transaction cookie set with the redirect")
			}
		})
	}
	t.Run("script asking for JSON", func(t *testing.T) {
		resp, body := newAgent(t).do(http.MethodGet, d.url+"/customers", http.Header{"Accept": {"application/json"}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "login_required") {
			t.Errorf("got %d %q, want 401 login_required", resp.StatusCode, body)
		}
	})
}

func TestEmployeesStepUpThenSignOut(t *testing.T) {
	d := startDemo(t, map[string]string{})
	a, b := newAgent(t), d.tenant.NewBrowser()

	resp, body, cb := a.signIn(b, d.url, "/employees", d.url, alice)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/employees" {
		t.Fatalf("callback: %d to %q, want 302 to /employees; body %.300s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if want := []string{"login", "otp"}; !cmp.Equal(b.Pages, want) {
		t.Errorf("tenant pages %v, want %v", b.Pages, want)
	}
	sessionCookie := a.cookie(d.url, "stepup_session")
	if sessionCookie == "" {
		t.Fatal("no session cookie after the callback")
	}

	resp, body = a.get(d.url + "/employees")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /employees after step-up: %d; body %.300s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`id="title">Salaries`, "Alice Fabrikam</td>", `id="who">Alice Fabrikam`,
		`id="acr">` + stepup.ACRMultiFactor, `id="amr">mfa`, `id="stepup_until"><span class="ok">`,
		`id="api-status" data-status="200"`, `id="signout"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("salary page lacks %q", want)
		}
	}
	if resp, body = a.get(d.url + "/customers"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Contoso") {
		t.Errorf("GET /customers with an MFA session: %d", resp.StatusCode)
	}
	if resp, body = a.get(d.url + "/"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="who">Alice Fabrikam`) {
		t.Errorf("home page does not show who is signed in: %d %.300s", resp.StatusCode, body)
	}

	// The one-time code page (embedded tenant only) shows alice's code.
	resp, body = a.get(d.url + "/demo/otp")
	if code := d.tenant.OTP(auth0test.AliceEmail); resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="otp" style="font-size:1.6em">`) {
		t.Errorf("GET /demo/otp: %d, want 200 with the code (now %s)", resp.StatusCode, code)
	}

	// Sign out: session ended here and at the tenant.
	resp, _ = a.do(http.MethodPost, d.url+"/logout", http.Header{"Origin": {d.url}})
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Host != d.tenant.Domain() || loc.Path != "/oidc/logout" ||
		loc.Query().Get("post_logout_redirect_uri") != d.url+"/" || loc.Query().Get("id_token_hint") == "" {
		t.Fatalf("POST /logout: %d to %v, want 303 to the tenant's /oidc/logout returning to %s/", resp.StatusCode, loc, d.url)
	}
	back, err := b.Logout(context.Background(), loc.String())
	if err != nil || back == nil || back.String() != d.url+"/" {
		t.Errorf("tenant logout returned to %v (%v), want %s/", back, err, d.url)
	}
	if a.cookie(d.url, "stepup_session") != "" {
		t.Error("session cookie still set after sign-out")
	}
	// The old cookie is dead, not merely forgotten by the browser.
	resp, _ = newAgent(t).do(http.MethodGet, d.url+"/customers", http.Header{"Cookie": {"stepup_session=" + sessionCookie}})
	if resp.StatusCode != http.StatusFound {
		t.Errorf("old session cookie after sign-out: %d, want 302 to the tenant", resp.StatusCode)
	}

	// Logs: no token, code, cookie or secret.
	logs := d.stderr.String()
	for _, secret := range []string{cb.Query().Get("code"), cb.Query().Get("state"), sessionCookie, "eyJ", "Bearer"} {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	if !strings.Contains(logs, "path=/callback status=302") {
		t.Errorf("logs lack the callback's request line:\n%s", logs)
	}
}

// TestStepUpExpires moves the demo's (and its tenant's) clock past
// STEPUP_MAX_AGE: the salary page then asks for a new MFA, while the login
// still serves /customers.
func TestStepUpExpires(t *testing.T) {
	clk := newClock()
	d := startDemoAt(t, map[string]string{"STEPUP_MAX_AGE": "5m"}, clk.Now)
	a, b := newAgent(t), d.tenant.NewBrowser()
	if resp, _, _ := a.signIn(b, d.url, "/employees", d.url, alice); resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	clk.Advance(4 * time.Minute)
	if resp, body := a.get(d.url + "/employees"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-status="200"`) {
		t.Fatalf("4 minutes after the MFA: %d, want the salary page with the API's 200", resp.StatusCode)
	}
	clk.Advance(2 * time.Minute)
	authz := a.startLogin(d.url, "/employees")
	if q := authz.Query(); q.Get("acr_values") != stepup.ACRMultiFactor || q.Get("max_age") != "300" {
		t.Errorf("6 minutes after the MFA: redirect with acr_values %q max_age %q, want the MFA class and 300", q.Get("acr_values"), q.Get("max_age"))
	}
	resp, body := a.get(d.url + "/customers")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<span class="warn">expired `) {
		t.Errorf("GET /customers after the step-up expired: %d, want 200 showing the step-up as expired", resp.StatusCode)
	}
	// The tenant's session is older than max_age too: password and code again.
	cb, err := b.Login(context.Background(), authz.String(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"login", "otp"}; !cmp.Equal(b.Pages, want) {
		t.Errorf("tenant pages %v, want %v", b.Pages, want)
	}
	if resp, _ = a.get(d.url + "/callback?" + cb.RawQuery); resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	if resp, body = a.get(d.url + "/employees"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-status="200"`) {
		t.Errorf("after the new step-up: %d; %.300s", resp.StatusCode, body)
	}
}

func TestDefaultBaseURL(t *testing.T) {
	tests := []struct{ addr, wantPrefix string }{
		{"127.0.0.1:0", "http://127.0.0.1:"},
		{":0", "http://127.0.0.1:"},
		{"localhost:0", "http://127.0.0.1:"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			d := startDemo(t, map[string]string{"STEPUP_ADDR": tc.addr})
			if !strings.HasPrefix(d.cfg.BaseURL, tc.wantPrefix) || strings.HasSuffix(d.cfg.BaseURL, ":0") {
				t.Fatalf("base URL %q, want %sPORT", d.cfg.BaseURL, tc.wantPrefix)
			}
			resp, _ := newAgent(t).get(d.cfg.BaseURL + "/customers")
			loc, _ := resp.Location()
			if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("redirect_uri") != d.cfg.BaseURL+"/callback" {
				t.Errorf("GET /customers: %d to %v, want a redirect with redirect_uri %s/callback", resp.StatusCode, loc, d.cfg.BaseURL)
			}
		})
	}
}

func TestPasswordOnlySession(t *testing.T) {
	d := startDemo(t, map[string]string{})
	a, b := newAgent(t), d.tenant.NewBrowser()
	resp, body, _ := a.signIn(b, d.url, "/customers", d.url, bob)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/customers" {
		t.Fatalf("callback: %d to %q; body %.300s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if !cmp.Equal(b.Pages, []string{"login"}) {
		t.Errorf("tenant pages %v, want [login]", b.Pages)
	}
	resp, body = a.get(d.url + "/customers")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /customers: %d", resp.StatusCode)
	}
	for _, want := range []string{"Northwind Traders", `id="who">Bob Fabrikam`, `id="acr">—`, "no MFA in this session"} {
		if !strings.Contains(body, want) {
			t.Errorf("customers page lacks %q", want)
		}
	}
	// /employees asks the tenant for MFA; bob has no factor, so the tenant
	// denies it: a 403 page, and the password session is kept as it was.
	cookieBefore := a.cookie(d.url, "stepup_session")
	authz := a.startLogin(d.url, "/employees")
	if authz.Query().Get("acr_values") != stepup.ACRMultiFactor || authz.Query().Get("login_hint") != auth0test.BobEmail {
		t.Errorf("step-up redirect: acr_values %q login_hint %q", authz.Query().Get("acr_values"), authz.Query().Get("login_hint"))
	}
	cb, err := b.Login(context.Background(), authz.String(), bob)
	if err != nil || cb.Query().Get("error") != "access_denied" {
		t.Fatalf("tenant: %v %v, want a callback with error=access_denied", cb, err)
	}
	resp, body = a.get(d.url + "/callback?" + cb.RawQuery)
	if hasCookie(resp, "stepup_session") || a.cookie(d.url, "stepup_session") != cookieBefore {
		t.Error("a failed step-up changed the session cookie")
	}
	// The callback hands over to /error: a page that says what happened and
	// what to do, with bob still signed in, the tenant's answer folded away.
	resp, body = a.errorPage(t, d.url, resp, body, "no_second_factor")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /error: %d, want 403", resp.StatusCode)
	}
	for _, want := range []string{
		"Salary data needs a second factor",
		"Your account has no second factor",
		"Enroll one on the security page, or ask an admin.",
		`id="who">Bob Fabrikam`,
		"You are signed in as <strong>Bob Fabrikam</strong>",
		`<details id="detail"><summary>Technical detail</summary>`,
		"access_denied: Multifactor authentication required",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("bob's refusal page lacks %q:\n%s", want, body)
		}
	}
	if strings.Index(body, "access_denied") < strings.Index(body, "<details") {
		t.Error("the tenant's error code shows outside the folded technical detail")
	}
	// The detail is shown once: a reload keeps the explanation only.
	resp, body = a.get(d.url + "/error?reason=no_second_factor")
	if resp.StatusCode != http.StatusForbidden || strings.Contains(body, "access_denied") || !strings.Contains(body, "Your account has no second factor") {
		t.Errorf("reloaded /error: %d %.400s", resp.StatusCode, body)
	}
	// bob's session is still there: /customers opens without a login.
	if resp, _ := a.get(d.url + "/customers"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /customers after the refused step-up: %d, want 200", resp.StatusCode)
	}
}

func hasCookie(resp *http.Response, name string) bool {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return true
		}
	}
	return false
}

func TestReplayedCallback(t *testing.T) {
	d := startDemo(t, map[string]string{})
	a := newAgent(t)
	resp, _, cb := a.signIn(d.tenant.NewBrowser(), d.url, "/customers", d.url, alice)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("first callback: %d", resp.StatusCode)
	}
	tests := []struct {
		name   string
		agent  *agent
		query  string
		reason string
	}{
		{"same browser replays", a, cb.RawQuery, "link_used"},
		{"another browser replays", newAgent(t), cb.RawQuery, "link_used"},
		{"forged state", newAgent(t), url.Values{"code": {"x"}, "state": {strings.Repeat("A", 43)}}.Encode(), "link_used"},
		{"no state", newAgent(t), "code=x", "bad_request"},
		{"tenant error without transaction", newAgent(t), "error=access_denied&state=" + strings.Repeat("B", 43), "link_used"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := tc.agent.get(d.url + "/callback?" + tc.query)
			resp, body = tc.agent.errorPage(t, d.url, resp, body, tc.reason)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("GET /error: %d, want 400", resp.StatusCode)
			}
			want := []string{"This sign-in link cannot be used",
				"already used, has expired, or was started in another browser", "Open the page you wanted again",
				"authorization transaction not found"}
			if tc.reason == "bad_request" {
				want = []string{"The request could not be used", "Nothing was changed", "Go back to the start page", "stepup: "}
			}
			for _, want := range want {
				if !strings.Contains(body, want) {
					t.Errorf("error page lacks %q: %.600s", want, body)
				}
			}
		})
	}
}

// apiToken obtains an access token for the demo's API straight from the
// tenant, as another client of the API would.
func apiToken(t *testing.T, tn *auth0test.Tenant, env map[string]string, base string, stepUp bool) string {
	t.Helper()
	conf := oauth2.Config{
		ClientID: env["AUTH0_CLIENT_ID"], ClientSecret: env["AUTH0_CLIENT_SECRET"], RedirectURL: base + "/callback",
		Endpoint: oauth2.Endpoint{AuthURL: tn.URL() + "/authorize", TokenURL: tn.URL() + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   []string{"openid"},
	}
	v := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("audience", env["AUTH0_AUDIENCE"])}
	if stepUp {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", stepup.ACRMultiFactor))
	}
	cb, err := tn.Login(context.Background(), conf.AuthCodeURL("state-of-a-test-client", opts...), alice)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, tn.Client())
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func TestAPIEmployees(t *testing.T) {
	addr := freeAddr(t)
	base := "http://" + addr
	tn, env := sharedTenant(t, base)
	env["STEPUP_ADDR"] = addr
	d := startDemo(t, env)

	ns := "https://stepup.example/"
	aliceUser, _ := tn.User(auth0test.AliceEmail)
	minted := func(mut func(c map[string]any)) string {
		c := tn.AccessTokenClaims(env["AUTH0_CLIENT_ID"], env["AUTH0_AUDIENCE"], aliceUser, "openid")
		mut(c)
		return tn.Sign(nil, c)
	}
	stepped := apiToken(t, tn, env, base, true)
	tests := []struct {
		name       string
		token      string
		wantStatus int
		wantError  string // the challenge's error; "-" for none
	}{
		{"token from a step-up login", stepped, 200, ""},
		{"token from a password login", apiToken(t, tn, env, base, false), 401, stepup.ErrorInsufficientUserAuthentication},
		{"no token", "", 401, "-"},
		{"garbage", "not-a-jwt", 401, "invalid_token"},
		{"tampered", stepped[:len(stepped)-4] + "AAAA", 401, "invalid_token"},
		{"other audience", minted(func(c map[string]any) { c["aud"] = "https://other.example/api" }), 401, "invalid_token"},
		{"expired", minted(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), 401, "invalid_token"},
		{"MFA too old", minted(func(c map[string]any) {
			c[ns+"acr"], c[ns+"amr"], c[ns+"auth_time"] = stepup.ACRMultiFactor, []string{"mfa"}, time.Now().Add(-11*time.Minute).Unix()
		}), 401, stepup.ErrorInsufficientUserAuthentication},
		{"MFA fresh (minted)", minted(func(c map[string]any) {
			c[ns+"acr"], c[ns+"amr"], c[ns+"auth_time"] = stepup.ACRMultiFactor, []string{"mfa"}, time.Now().Add(-time.Minute).Unix()
		}), 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, d.url+"/api/employees", nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s; WWW-Authenticate %q", resp.StatusCode, tc.wantStatus, body, resp.Header.Get("WWW-Authenticate"))
			}
			if tc.wantStatus == 200 {
				if !strings.Contains(string(body), `"subject":"auth0|alice"`) || !strings.Contains(string(body), "Head of Finance") {
					t.Errorf("body %s", body)
				}
				return
			}
			ch, err := stepup.ParseChallenge(resp)
			if err != nil {
				t.Fatalf("ParseChallenge: %v (%q)", err, resp.Header.Get("WWW-Authenticate"))
			}
			if want := strings.TrimPrefix(tc.wantError, "-"); ch.Error != want {
				t.Errorf("challenge error %q, want %q", ch.Error, want)
			}
			if tc.wantError == stepup.ErrorInsufficientUserAuthentication {
				if !cmp.Equal(ch.ACRValues, []string{stepup.ACRMultiFactor}) || !ch.HasMaxAge || ch.MaxAge != 10*time.Minute {
					t.Errorf("challenge acr_values %v max_age %v (%v), want [%s] and 600 s", ch.ACRValues, ch.MaxAge, ch.HasMaxAge, stepup.ACRMultiFactor)
				}
			}
			if strings.Contains(resp.Header.Get("WWW-Authenticate"), "alice") {
				t.Error("the challenge echoes token content")
			}
		})
	}
}

// TestSalaryPageAnswersAPIChallenge: the session passed the page's MFA
// policy, but its access token does not satisfy the API's; the salary page
// sends the user through the step-up the API's challenge names, exactly once.
func TestSalaryPageAnswersAPIChallenge(t *testing.T) {
	stepUpOnly := func(ev *auth0test.ActionEvent, api *auth0test.ActionAPI) {
		if slices.Contains(ev.ACRValues, stepup.ACRMultiFactor) {
			api.RequireMFA()
		}
	}
	// claimsFromSecondLogin copies the claims from the second login on: the
	// first step-up's token lacks them.
	claimsFromSecondLogin := func() func(*auth0test.ActionEvent, *auth0test.ActionAPI) {
		inner := newDemoActions("https://stepup.example/", time.Now)
		var mu sync.Mutex
		n := 0
		return func(ev *auth0test.ActionEvent, api *auth0test.ActionAPI) {
			mu.Lock()
			n++
			first := n == 1
			mu.Unlock()
			if first {
				stepUpOnly(ev, api)
				inner(ev, &auth0test.ActionAPI{}) // records the MFA time, drops the claims
				return
			}
			inner(ev, api)
		}
	}
	tests := []struct {
		name       string
		action     func(*auth0test.ActionEvent, *auth0test.ActionAPI)
		wantStatus string // the API status on the final salary page
	}{
		{"token gets the claims on the step-up the API asked for", claimsFromSecondLogin(), "200"},
		{"tenant without the claims Action: no loop", stepUpOnly, "401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := freeAddr(t)
			tn, env := sharedTenantWith(t, tc.action, "http://"+addr)
			env["STEPUP_ADDR"] = addr
			d := startDemo(t, env)
			a, b := newAgent(t), tn.NewBrowser()
			resp, _, _ := a.signIn(b, d.url, "/employees", d.url, alice)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("first callback: %d", resp.StatusCode)
			}
			// The page passes; the API's challenge sends the browser back to the tenant.
			authz := a.startLogin(d.url, "/employees")
			q := authz.Query()
			if q.Get("acr_values") != stepup.ACRMultiFactor || q.Get("max_age") != "600" {
				t.Errorf("step-up for the API: acr_values %q max_age %q, want the challenge's", q.Get("acr_values"), q.Get("max_age"))
			}
			cb, err := b.Login(context.Background(), authz.String(), alice)
			if err != nil {
				t.Fatal(err)
			}
			// The step-up Action says allowRememberBrowser:false: the OTP page
			// again, as on Auth0.
			if !cmp.Equal(b.Pages, []string{"otp"}) {
				t.Errorf("tenant pages %v, want [otp] (MFA each time acr_values asks)", b.Pages)
			}
			resp, body := a.get(d.url + "/callback?" + cb.RawQuery)
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/employees?"+stepup.RetryParam+"=") {
				t.Fatalf("second callback: %d to %q; %.300s", resp.StatusCode, loc, body)
			}
			resp, body = a.get(d.url + loc)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-status="`+tc.wantStatus+`"`) {
				t.Errorf("salary page after the API's step-up: %d, want 200 showing API status %s; %.1500s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantStatus == "401" && !strings.Contains(body, "insufficient_user_authentication") {
				t.Error("the page does not show the API's challenge")
			}
			// The API's Verifier shares the Client's keys: the ID tokens and
			// the access tokens cost the tenant one JWKS fetch.
			if n := tn.Calls("/.well-known/jwks.json"); n != 1 {
				t.Errorf("JWKS fetched %d times, want 1", n)
			}
		})
	}
}

func TestTenantDown(t *testing.T) {
	addr := freeAddr(t)
	tn, env := sharedTenant(t, "http://"+addr)
	env["STEPUP_ADDR"] = addr
	d := startDemo(t, env)
	a := newAgent(t)
	authz := a.startLogin(d.url, "/customers")
	cb, err := tn.Login(context.Background(), authz.String(), alice)
	if err != nil {
		t.Fatal(err)
	}
	tn.Close() // the tenant goes down between its redirect and the code exchange
	resp, body := a.get(d.url + "/callback?" + cb.RawQuery)
	resp, body = a.errorPage(t, d.url, resp, body, "tenant_unavailable")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /error: %d, want 503", resp.StatusCode)
	}
	for _, want := range []string{"The sign-in service is unavailable", "Nothing was let through", "try again in a minute", `id="who">not signed in`} {
		if !strings.Contains(body, want) {
			t.Errorf("error page lacks %q: %.600s", want, body)
		}
	}
	if strings.Contains(body, tn.Domain()) {
		t.Error("a 5xx page names the tenant's address")
	}
}

func TestStoreDown(t *testing.T) {
	// Nothing listens there; without retries, each refusal is quick.
	d := startDemo(t, map[string]string{"REDIS_URL": "redis://" + freeAddr(t) + "/0?max_retries=-1"})
	// Without a session, a protected page still sends the browser to the
	// tenant: the transaction is the browser's cookie, nothing of it needs
	// Redis. Its callback cannot set its single-use marker: 503, no session,
	// before the code is redeemed. A callback without its cookie is a 400.
	for _, path := range []string{"/customers", "/employees"} {
		a := newAgent(t)
		authz := a.startLogin(d.url, path)
		resp, body := a.get(d.url + "/callback?code=x&state=" + authz.Query().Get("state"))
		resp, body = a.errorPage(t, d.url, resp, body, "store_unavailable")
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "Sessions are unavailable") ||
			!strings.Contains(body, "Nothing was let through") {
			t.Errorf("error page after the callback of %s with Redis down: %d; %.600s", path, resp.StatusCode, body)
		}
	}
	a := newAgent(t)
	resp, body := a.get(d.url + "/callback?code=x&state=" + strings.Repeat("C", 43))
	if resp, body = a.errorPage(t, d.url, resp, body, "link_used"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback without its transaction cookie, Redis down: %d, want 400; %.200s", resp.StatusCode, body)
	}
	// A session cookie cannot be checked either: fail closed, explained
	// where it happened (reloading the page is what to do), and the header
	// does not claim "not signed in".
	sessionCookie := http.Header{"Cookie": {"stepup_session=" + strings.Repeat("a", 43) + "." + strings.Repeat("b", 43) + "." + strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)}}
	resp, body = newAgent(t).do(http.MethodGet, d.url+"/customers", sessionCookie)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /customers with a cookie and Redis down: %d, want 503", resp.StatusCode)
	}
	for _, want := range []string{"Sessions are unavailable", "try again in a minute", `id="who">sign-in unavailable`} {
		if !strings.Contains(body, want) {
			t.Errorf("/customers with Redis down lacks %q: %.600s", want, body)
		}
	}
	if strings.Contains(body, "127.0.0.1") {
		t.Error("a 5xx page names the store's address")
	}
	// The public home page says so too.
	if resp, body = newAgent(t).do(http.MethodGet, d.url+"/", sessionCookie); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, `id="who">sign-in unavailable`) {
		t.Errorf("home page with Redis down: %d %.400s", resp.StatusCode, body)
	}
}

func TestBadConfiguration(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"domain without client id", map[string]string{"AUTH0_DOMAIN": "fabrikam.eu.auth0.com"}, "AUTH0_CLIENT_ID"},
		{"client id without domain", map[string]string{"AUTH0_CLIENT_ID": "abc"}, "without AUTH0_DOMAIN"},
		{"domain as URL", map[string]string{"AUTH0_DOMAIN": "https://fabrikam.eu.auth0.com", "AUTH0_CLIENT_ID": "a", "AUTH0_CLIENT_SECRET": "b"}, "AUTH0_DOMAIN"},
		{"max age", map[string]string{"STEPUP_MAX_AGE": "ten minutes"}, "STEPUP_MAX_AGE"},
		{"negative max age", map[string]string{"STEPUP_MAX_AGE": "-1m"}, "STEPUP_MAX_AGE"},
		{"addr", map[string]string{"STEPUP_ADDR": "8080"}, "STEPUP_ADDR"},
		{"base URL scheme", map[string]string{"STEPUP_BASE_URL": "ftp://intranet.example"}, "STEPUP_BASE_URL"},
		{"base URL with path", map[string]string{"STEPUP_BASE_URL": "https://intranet.example/app"}, "STEPUP_BASE_URL"},
		{"plain http off loopback", map[string]string{"STEPUP_BASE_URL": "http://intranet.example"}, "https"},
		{"redis URL", map[string]string{"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"},
		{"redis URL with a bad cluster parameter", map[string]string{"REDIS_URL": "redis://127.0.0.1:6379?cluster=maybe"}, "REDIS_URL"},
		{"redis URL with a bad option", map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/0?pool_size=many"}, "REDIS_URL"},
		{"sealing key", map[string]string{"STEPUP_SEALING_KEY": "c2hvcnQ="}, "STEPUP_SEALING_KEY"},
		{"namespace", map[string]string{"STEPUP_API_CLAIM_NAMESPACE": "stepup"}, "STEPUP_API_CLAIM_NAMESPACE"},
		{"CA file", map[string]string{"SSL_CERT_FILE": "/nonexistent/ca.pem"}, "SSL_CERT_FILE"},
		{"demo CA directory is a file", map[string]string{"STEPUP_DEMO_CA_DIR": os.Args[0]}, "STEPUP_DEMO_CA_DIR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := tc.env["STEPUP_ADDR"]; !ok {
				tc.env["STEPUP_ADDR"] = "127.0.0.1:0"
			}
			if _, ok := tc.env["STEPUP_DEMO_CA_DIR"]; !ok {
				tc.env["STEPUP_DEMO_CA_DIR"] = t.TempDir()
			}
			err := run(context.Background(), func(k string) string { return tc.env[k] }, io.Discard, io.Discard, hooks{ready: func(*demo) {
				t.Error("the demo started")
			}})
			var ce *configError
			if !errors.As(err, &ce) || exitCode(err) != 2 {
				t.Fatalf("run: %v, want a configuration error (exit code 2)", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "stepup-demo: configuration: ") {
				t.Errorf("message %q does not name %q", err, tc.want)
			}
		})
	}
}

// childEnv is a clean environment for the demo run as a child process.
func childEnv(kv ...string) []string {
	// STEPUP_DEMO_CA_DIR: never the user's own demo CA (a test that starts
	// the embedded tenant passes a temporary one).
	env := []string{"STEPUP_DEMO_RUN_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"STEPUP_DEMO_CA_DIR=" + filepath.Join(os.TempDir(), "stepup-demo-test-unused-ca")}
	return append(env, kv...)
}

func TestExitCodeOfMain(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = childEnv("AUTH0_DOMAIN=fabrikam.eu.auth0.com", "STEPUP_ADDR=127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2; output %s", err, out)
	}
	if !strings.Contains(string(out), "AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET must be set") {
		t.Errorf("output %q does not say what to fix", out)
	}
}

func TestGracefulShutdownOnSignal(t *testing.T) {
	// One CA directory for both runs: the first creates the demo CA, the
	// second reuses it, and their banners say so.
	caDir := t.TempDir()
	caState := map[syscall.Signal]string{syscall.SIGTERM: "(new: trust it once", syscall.SIGINT: "(the one of earlier runs"}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = childEnv("STEPUP_ADDR=127.0.0.1:0", "STEPUP_DEMO_CA_DIR="+caDir)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			stderr := &syncBuffer{}
			cmd.Stderr = stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill() })
			sc := bufio.NewScanner(stdout)
			var banner []string
			for sc.Scan() {
				banner = append(banner, sc.Text())
				if strings.HasPrefix(sc.Text(), "Press Ctrl+C") {
					break
				}
			}
			text := strings.Join(banner, "\n")
			for _, want := range []string{"http://127.0.0.1:", auth0test.AliceEmail, auth0test.AlicePassword, "/demo/otp", "store:    memory",
				"demo CA:  " + filepath.Join(caDir, "ca.pem") + " " + caState[sig], "trust:    " + trustCommand(runtime.GOOS, filepath.Join(caDir, "ca.pem"))} {
				if !strings.Contains(text, want) {
					t.Errorf("banner lacks %q:\n%s", want, text)
				}
			}
			go io.Copy(io.Discard, stdout)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("exit after %v: %v, want status 0; stderr:\n%s", sig, err, stderr)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("still running 15 s after %v", sig)
			}
			if !strings.Contains(stderr.String(), "stepup-demo: stopped") {
				t.Errorf("logs lack the shutdown:\n%s", stderr)
			}
		})
	}
}

// TestTwoInstancesShareRedis: two replicas behind one URL share the
// sessions through REDIS_URL, whatever Redis it names: one server, a Redis
// Cluster (its seeds), or a Sentinel set-up (redisstore.OpenURL).
func TestTwoInstancesShareRedis(t *testing.T) {
	tests := []struct {
		name string
		// redis returns the REDIS_URL, what the banner must say, and a
		// way to list the keys under a prefix.
		redis func(t *testing.T) (redisURL, banner string, keys func(prefix string) ([]string, error))
	}{
		{"one server", func(t *testing.T) (string, string, func(string) ([]string, error)) {
			rdb := redistest.Client(t).(*redis.Client)
			return "redis://" + rdb.Options().Addr + "/0", "store:    redis redis://" + rdb.Options().Addr + "/0",
				func(prefix string) ([]string, error) { return rdb.Keys(context.Background(), prefix+"*").Result() }
		}},
		{"cluster", func(t *testing.T) (string, string, func(string) ([]string, error)) {
			c := redistest.Cluster(t)
			seeds := c.Options().Addrs
			u := "redis://" + seeds[0]
			for i, a := range seeds[1:] {
				u += map[bool]string{true: "?", false: "&"}[i == 0] + "addr=" + a
			}
			return u, "store:    redis cluster " + strings.Join(seeds, ","), func(prefix string) ([]string, error) {
				var (
					mu  sync.Mutex
					all []string
				)
				err := c.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
					keys, err := m.Keys(ctx, prefix+"*").Result()
					mu.Lock()
					all = append(all, keys...)
					mu.Unlock()
					return err
				})
				return all, err
			}
		}},
		{"sentinel", func(t *testing.T) (string, string, func(string) ([]string, error)) {
			st := redistest.StartSentinel(t)
			c := st.Client()
			return "redis://" + st.Sentinel.Addr() + "?master_name=" + redistest.MasterName,
				"store:    redis sentinel " + st.Sentinel.Addr() + " (master " + redistest.MasterName + ")",
				func(prefix string) ([]string, error) { return c.Keys(context.Background(), prefix+"*").Result() }
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			redisURL, banner, keysUnder := tc.redis(t)
			prefix := redistest.Prefix(t)
			addrA := freeAddr(t)
			base := "http://" + addrA // the load balancer's URL: both replicas answer behind it
			tn, env := sharedTenant(t, base)
			env["REDIS_URL"] = redisURL
			env["STEPUP_REDIS_PREFIX"] = prefix
			env["STEPUP_BASE_URL"] = base
			envA, envB := map[string]string{"STEPUP_ADDR": addrA}, map[string]string{"STEPUP_ADDR": "127.0.0.1:0"}
			for k, v := range env {
				envA[k], envB[k] = v, v
			}
			replicaA, replicaB := startDemo(t, envA), startDemo(t, envB)
			if !strings.Contains(replicaA.stdout.String(), banner) {
				t.Errorf("banner lacks %q:\n%s", banner, replicaA.stdout)
			}

			// The login starts on A and its callback lands on B.
			a := newAgent(t)
			resp, body, _ := a.signIn(tn.NewBrowser(), replicaA.url, "/employees", replicaB.url, alice)
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/employees" {
				t.Fatalf("callback on B: %d to %q; %.300s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			keys, err := keysUnder(prefix)
			if err != nil || len(keys) == 0 {
				t.Errorf("no session in Redis under %s: %v %v", prefix, keys, err)
			}
			// A serves the session B created, and opens the tokens B sealed.
			resp, body = a.get(replicaA.url + "/employees")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-status="200"`) {
				t.Fatalf("GET /employees on A: %d; %.500s", resp.StatusCode, body)
			}
			if resp, _ = a.get(replicaB.url + "/customers"); resp.StatusCode != http.StatusOK {
				t.Errorf("GET /customers on B: %d", resp.StatusCode)
			}
			// Sign-out on B ends the session on A too.
			if resp, _ = a.do(http.MethodPost, replicaB.url+"/logout", http.Header{"Origin": {base}}); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("POST /logout on B: %d", resp.StatusCode)
			}
			resp, _ = a.get(replicaA.url + "/customers")
			if loc, _ := resp.Location(); resp.StatusCode != http.StatusFound || loc == nil || loc.Path != "/authorize" {
				t.Errorf("GET /customers on A after sign-out on B: %d to %v, want 302 to /authorize", resp.StatusCode, loc)
			}
		})
	}
}
