package main

import (
	"context"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stepupauth/stepup/auth0test"
)

// post sends a form to the demo as a same-origin browser form would (hdr
// adds or replaces headers).
func (a *agent) post(u string, form url.Values, hdr http.Header) (*http.Response, string) {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	pu, _ := url.Parse(u)
	req.Header.Set("Origin", pu.Scheme+"://"+pu.Host)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("POST %s: %v", u, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// stepUpVia follows a redirect to the tenant (the confirmation page's
// step-up) with b and brings the callback back; it returns where the demo
// sends the browser then.
func (a *agent) stepUpVia(d *running, b *auth0test.Browser, resp *http.Response, creds auth0test.Credentials) string {
	a.t.Helper()
	loc, err := resp.Location()
	if err != nil || resp.StatusCode != http.StatusFound || loc.Host != d.tenant.Domain() {
		a.t.Fatalf("want a 302 to the tenant, got %d to %v", resp.StatusCode, loc)
	}
	cb, err := b.Login(context.Background(), loc.String(), creds)
	if err != nil {
		a.t.Fatalf("step-up at the tenant: %v (pages %v)", err, b.Pages)
	}
	back, body := a.get(d.url + "/callback?" + cb.RawQuery)
	if back.StatusCode != http.StatusFound {
		a.t.Fatalf("callback: %d %.300s", back.StatusCode, body)
	}
	return back.Header.Get("Location")
}

var factorRow = regexp.MustCompile(`data-type="totp" data-id="([^"]+)"`)

// TestSecurityPage: the page is read-only after a password login; a change
// steps the user up first, then a confirmation finishes it; forged and
// cross-site POSTs change nothing; a stale step-up is asked again.
func TestSecurityPage(t *testing.T) {
	clk := newClock()
	d := startDemoAt(t, map[string]string{}, clk.Now)
	a, b := newAgent(t), d.tenant.NewBrowser()
	resp, body, _ := a.signIn(b, d.url, "/account/security", d.url, alice)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/account/security" {
		t.Fatalf("callback: %d to %q; %.300s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, body = a.get(d.url + "/account/security")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /account/security: %d %.300s", resp.StatusCode, body)
	}
	for _, want := range []string{`id="title">Security`, `data-type="recovery-code"`, "Changes need a fresh multi-factor authentication", `id="security-link"`, "Authenticator app"} {
		if !strings.Contains(body, want) {
			t.Errorf("security page lacks %q", want)
		}
	}
	m := factorRow.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no totp row: %.2000s", body)
	}
	id := m[1]
	remove := url.Values{"action": {"remove"}, "id": {id}}

	// Cross-site, and without any origin: refused, nothing changes.
	for name, hdr := range map[string]http.Header{
		"cross-site":   {"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}},
		"other origin": {"Sec-Fetch-Site": nil, "Origin": {"https://evil.example"}},
		"no origin":    {"Sec-Fetch-Site": nil, "Origin": nil},
	} {
		if resp, _ := a.post(d.url+"/account/security", remove, hdr); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s POST: %d, want 403", name, resp.StatusCode)
		}
	}
	// Same-origin without a fresh step-up: sent to the confirmation (step-up) first.
	resp, _ = a.post(d.url+"/account/security", remove, nil)
	confirm := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(confirm, "/account/security/confirm?") {
		t.Fatalf("POST without a step-up: %d to %q, want 303 to the confirmation", resp.StatusCode, confirm)
	}
	if u, _ := d.tenant.User(auth0test.AliceEmail); u.TOTPSecret == "" {
		t.Fatal("the factor was removed without a step-up")
	}
	resp, _ = a.get(d.url + confirm)
	if back := a.stepUpVia(d, b, resp, alice); back != confirm {
		t.Fatalf("after the step-up: back to %q, want %q", back, confirm)
	}
	if want := []string{"otp"}; strings.Join(b.Pages, ",") != strings.Join(want, ",") {
		t.Errorf("step-up pages %v, want %v", b.Pages, want)
	}
	resp, body = a.get(d.url + confirm)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="pending"`) || !strings.Contains(body, "Changes allowed until ") {
		t.Fatalf("confirmation page: %d %.1500s", resp.StatusCode, body)
	}
	resp, _ = a.post(d.url+"/account/security", remove, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account/security?done=removed" {
		t.Fatalf("confirmed removal: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if u, _ := d.tenant.User(auth0test.AliceEmail); u.TOTPSecret != "" {
		t.Fatal("the factor is still enrolled")
	}
	// Another user's id (carol's) is not found, and hers stays.
	carol, _ := d.tenant.User(auth0test.CarolEmail)
	resp, body = a.post(d.url+"/account/security", url.Values{"action": {"remove"}, "id": {"totp|" + carol.ID}}, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "not one of yours") {
		t.Errorf("removing another id: %d %.500s", resp.StatusCode, body)
	}
	if u, _ := d.tenant.User(auth0test.CarolEmail); u.TOTPSecret == "" {
		t.Error("carol's factor was removed")
	}

	// The recovery code, shown once (never in the logs).
	resp, body = a.post(d.url+"/account/security", url.Values{"action": {"recovery"}}, nil)
	rc := regexp.MustCompile(`id="recovery-code"[^>]*>([A-Z0-9]+)<`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || rc == nil {
		t.Fatalf("recovery code: %d %.800s", resp.StatusCode, body)
	}
	if u, _ := d.tenant.User(auth0test.AliceEmail); u.RecoveryCode != rc[1] {
		t.Fatal("the page shows another recovery code than the tenant's")
	}
	if _, body = a.get(d.url + "/account/security"); strings.Contains(body, rc[1]) {
		t.Error("the recovery code is shown again")
	}
	if strings.Contains(d.stderr.String(), rc[1]) {
		t.Error("the recovery code is in the logs")
	}

	// The "always ask" switch.
	if resp, _ = a.post(d.url+"/account/security", url.Values{"action": {"always"}, "on": {"1"}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("always on: %d", resp.StatusCode)
	}
	if u, _ := d.tenant.User(auth0test.AliceEmail); u.UserMetadata["always_mfa"] != true {
		t.Errorf("user_metadata %v", u.UserMetadata)
	}
	if _, body = a.get(d.url + "/account/security"); !strings.Contains(body, `id="always-state">on`) {
		t.Error("the switch does not show on")
	}

	// Stale: 6 minutes later a change needs a step-up again.
	clk.Advance(6 * time.Minute)
	resp, _ = a.post(d.url+"/account/security", url.Values{"action": {"forget"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/account/security/confirm?") {
		t.Fatalf("stale step-up: %d to %q, want the confirmation again", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body = a.get(d.url + "/account/security"); !strings.Contains(body, "Changes need a fresh") {
		t.Error("the page does not say a fresh MFA is needed")
	}
}

// TestSecurityEnrollAuthenticatorApp: with no factor left, alice adds an
// authenticator app (a step-up for the MFA API's audience), confirms it
// with a code of its secret, and signs in with it.
func TestSecurityEnrollAuthenticatorApp(t *testing.T) {
	clk := newClock()
	d := startDemoAt(t, map[string]string{}, clk.Now)
	a, b := newAgent(t), d.tenant.NewBrowser()
	if resp, _, _ := a.signIn(b, d.url, "/employees", d.url, alice); resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	_, body := a.get(d.url + "/account/security")
	m := factorRow.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, "Changes allowed until ") {
		t.Fatalf("security page after MFA: %.1500s", body)
	}
	if resp, _ := a.post(d.url+"/account/security", url.Values{"action": {"remove"}, "id": {m[1]}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", resp.StatusCode)
	}
	// No MFA API token yet: a step-up for its audience, back to the confirmation.
	resp, _ := a.post(d.url+"/account/security", url.Values{"action": {"totp"}}, nil)
	if q := mustLocation(t, resp).Query(); q.Get("audience") != d.issuer+"mfa/" || !strings.Contains(q.Get("scope"), "enroll") {
		t.Fatalf("add an app: redirect %v, want the MFA API audience and scope enroll", resp.Header.Get("Location"))
	}
	back := a.stepUpVia(d, b, resp, alice)
	resp, body = a.get(d.url + back)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `value="totp"`) {
		t.Fatalf("confirmation: %d %.800s", resp.StatusCode, body)
	}
	resp, body = a.post(d.url+"/account/security", url.Values{"action": {"totp"}}, nil)
	sec := regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || sec == nil || !strings.Contains(body, `href="otpauth://totp/`) ||
		!strings.Contains(body, `id="totp-qr" alt="QR code of the key" src="data:image/png;base64,`) {
		i := max(0, strings.Index(body, `id="totp"`))
		t.Fatalf("enrollment page: %d %.600s", resp.StatusCode, body[i:])
	}
	// The QR code says the otpauth URI (decoded by zbarimg when installed).
	if zbar, err := exec.LookPath("zbarimg"); err == nil {
		img := regexp.MustCompile(`src="data:image/png;base64,([^"]+)"`).FindStringSubmatch(body)
		uri := regexp.MustCompile(`id="otpauth"[^>]*href="([^"]+)"`).FindStringSubmatch(body)
		if img == nil || uri == nil {
			t.Fatal("no QR image or otpauth link")
		}
		png, _ := base64.StdEncoding.DecodeString(html.UnescapeString(img[1]))
		f := filepath.Join(t.TempDir(), "qr.png")
		if err := os.WriteFile(f, png, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(zbar, "--raw", "-q", f).Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != html.UnescapeString(uri[1]) {
			t.Errorf("the QR code reads %q (%v), want %q", got, err, html.UnescapeString(uri[1]))
		}
	}
	if resp, _ = a.post(d.url+"/account/security", url.Values{"action": {"totp-confirm"}, "code": {auth0test.TOTP(sec[1], clk.Now())}}, nil); resp.StatusCode != http.StatusSeeOther ||
		resp.Header.Get("Location") != "/account/security?done=enrolled" {
		t.Fatalf("confirm: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if u, _ := d.tenant.User(auth0test.AliceEmail); u.TOTPSecret != sec[1] {
		t.Fatal("the new app is not alice's factor")
	}
	// "Always ask for MFA", honoured by the tenant's Action: a new sign-in
	// asks for a code of the new app.
	if resp, _ = a.post(d.url+"/account/security", url.Values{"action": {"always"}, "on": {"1"}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("always on: %d", resp.StatusCode)
	}
	// The flag is honoured by the tenant's Action: a new sign-in asks for MFA.
	a2, b2 := newAgent(t), d.tenant.NewBrowser()
	if resp, _, _ := a2.signIn(b2, d.url, "/customers", d.url, alice); resp.StatusCode != http.StatusFound ||
		strings.Join(b2.Pages, ",") != "login,otp" {
		t.Errorf("sign-in with always_mfa: %d, pages %v, want login,otp", resp.StatusCode, b2.Pages)
	}

}

func mustLocation(t *testing.T, resp *http.Response) *url.URL {
	t.Helper()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("%d without a Location", resp.StatusCode)
	}
	return loc
}
