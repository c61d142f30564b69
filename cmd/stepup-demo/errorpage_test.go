package main

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stepupauth/stepup/auth0test"
)

// TestErrorPages walks each failure a person can meet that the other tests
// do not (bob's refusal: TestPasswordOnlySession; replayed and foreign
// callbacks: TestReplayedCallback; tenant down: TestTenantDown; store down:
// TestStoreDown) and reads the page it ends on.
func TestErrorPages(t *testing.T) {
	addr := freeAddr(t)
	// The tenant's Action refuses bob outright, and refuses alice's
	// step-ups.
	action := func(ev *auth0test.ActionEvent, api *auth0test.ActionAPI) {
		switch {
		case ev.User.Email == auth0test.BobEmail:
			api.Deny("bob is blocked by the tenant's policy")
			return
		case ev.User.Email == auth0test.AliceEmail && slices.Contains(ev.ACRValues, auth0test.MFAACR):
			api.Deny("salary access is closed on weekends")
			return
		}
	}
	tn, env := sharedTenantWith(t, action, "http://"+addr)
	env["STEPUP_ADDR"] = addr
	d := startDemo(t, env)

	t.Run("tenant denies the login", func(t *testing.T) {
		a := newAgent(t)
		resp, body, _ := a.signIn(tn.NewBrowser(), d.url, "/customers", d.url, bob)
		resp, body = a.errorPage(t, d.url, resp, body, "login_denied")
		expectPage(t, resp, body, http.StatusForbidden, "Sign-in refused", "The sign-in service refused to sign you in.",
			"Check that you use the right account, or ask an admin", `id="who">not signed in`,
			"access_denied: bob is blocked by the tenant&#39;s policy")
	})
	t.Run("tenant denies the step-up", func(t *testing.T) {
		a, b := newAgent(t), tn.NewBrowser()
		if resp, body, _ := a.signIn(b, d.url, "/customers", d.url, alice); resp.StatusCode != http.StatusFound {
			t.Fatalf("password login: %d %.300s", resp.StatusCode, body)
		}
		resp, body, _ := a.signIn(b, d.url, "/employees", d.url, alice)
		resp, body = a.errorPage(t, d.url, resp, body, "stepup_denied")
		expectPage(t, resp, body, http.StatusForbidden, "The extra check was refused",
			"You are still signed in as before.", `id="who">Alice Fabrikam`, "You are signed in as <strong>Alice Fabrikam</strong>",
			"salary access is closed on weekends")
	})
	t.Run("bad request", func(t *testing.T) {
		resp, body := newAgent(t).get(d.url + "/login?" + url.Values{"return_to": {"/" + strings.Repeat("a", 3000)}}.Encode())
		expectPage(t, resp, body, http.StatusBadRequest, "The request could not be used", "Nothing was changed",
			"Go back to the start page", "return_to is 3001 bytes")
	})
	t.Run("unknown reason", func(t *testing.T) {
		resp, body := newAgent(t).get(d.url + "/error?reason=%3Cscript%3Ealert(1)%3C/script%3E")
		expectPage(t, resp, body, http.StatusBadRequest, "Something went wrong", "without a reason the intranet knows")
		if strings.Contains(body, "script") {
			t.Errorf("the page shows text from its URL: %s", body)
		}
	})
	t.Run("every reason", func(t *testing.T) {
		for code, p := range problems {
			resp, body := newAgent(t).get(d.url + "/error?reason=" + code)
			expectPage(t, resp, body, p.Status, html.EscapeString(p.Title), html.EscapeString(p.What), html.EscapeString(p.Next),
				`data-reason="`+code+`"`, `id="who">not signed in`, "<summary>Technical detail</summary>")
		}
	})
	t.Run("login route", func(t *testing.T) {
		a := newAgent(t)
		authz := a.startLogin(d.url, "/login?return_to=%2Fcustomers")
		cb, err := tn.NewBrowser().Login(context.Background(), authz.String(), alice)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := a.get(d.url + "/callback?" + cb.RawQuery)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/customers" {
			t.Errorf("callback of /login?return_to=/customers: %d to %q; %.300s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
	})
}

// TestErrorPageStepUpNotPerformed: a tenant whose Action ignores acr_values
// (no MFA, no acr): the step-up comes back without MFA, once, and the page
// says that asking again would end the same way.
func TestErrorPageStepUpNotPerformed(t *testing.T) {
	addr := freeAddr(t)
	daveUser := auth0test.NewUser("dave", true)
	dave := daveUser.Credentials()
	tn, env := sharedTenantConfig(t, auth0test.Config{IgnoreACRValues: true, Users: append(auth0test.DefaultUsers(), daveUser)}, "http://"+addr)
	env["STEPUP_ADDR"] = addr
	d := startDemo(t, env)

	a, b := newAgent(t), tn.NewBrowser()
	if resp, body, _ := a.signIn(b, d.url, "/customers", d.url, dave); resp.StatusCode != http.StatusFound {
		t.Fatalf("password login: %d %.300s", resp.StatusCode, body)
	}
	// /employees sends dave to the tenant, which ignores acr_values; the
	// login comes back without MFA: the callback refuses it (asking again
	// would loop) and the page explains it.
	resp, body, _ := a.signIn(b, d.url, "/employees", d.url, dave)
	if hasCookie(resp, "stepup_session") {
		t.Error("the step-up without MFA replaced the session")
	}
	resp, body = a.errorPage(t, d.url, resp, body, "stepup_not_performed")
	expectPage(t, resp, body, http.StatusForbidden, "The extra check did not happen",
		"without the second factor this page needs", "Ask an admin: the sign-in service is not set up to ask for a second factor",
		`id="who">Dave`, "tenant did not perform the requested step-up")
}

// expectPage checks an error page's status and that it holds each of want.
func expectPage(t *testing.T, resp *http.Response, body string, status int, want ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d", resp.StatusCode, status)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q:\n%s", w, body)
		}
	}
}
