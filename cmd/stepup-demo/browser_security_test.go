package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/stepupauth/stepup/auth0test"
)

// chrome is one browser tab of a test, with the helpers its steps use.
type chrome struct {
	t         *testing.T
	ctx       context.Context
	artifacts string
}

func (c *chrome) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, steps...); err != nil {
		loc, _ := chromedp.Run(c.ctx, chromedp.Location())
		c.shot("failure")
		c.t.Fatalf("%s (at %s): %v", what, loc, err)
	}
}

func (c *chrome) text(sel string) string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		loc, _ := chromedp.Run(c.ctx, chromedp.Location())
		c.shot("failure")
		c.t.Fatalf("reading %s on %s: %v", sel, loc, err)
	}
	return strings.TrimSpace(s)
}

// click clicks sel and waits for the page load at the end of the
// redirects it starts.
func (c *chrome) click(sel string) {
	c.t.Helper()
	if _, err := chromedp.Run(c.ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))); err != nil {
		c.shot("failure")
		c.t.Fatalf("clicking %s: %v", sel, err)
	}
}

func (c *chrome) location() string {
	loc, _ := chromedp.Run(c.ctx, chromedp.Location())
	return loc
}

func (c *chrome) shot(name string) string {
	png, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	p := filepath.Join(c.artifacts, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// fill types value into the (empty) field sel.
func (c *chrome) fill(sel, value string) {
	c.t.Helper()
	c.do("type into "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), value))
}

// TestBrowserSecurityPage drives /account/security in a real Chromium:
// sign in with a password (the page is read-only), remove the factor (a
// step-up with the one-time code, then the confirmation), add an
// authenticator app through its QR code, sign out and in with the new
// app's code, make a new recovery code and sign in with it once, and a
// stale step-up (the clock moved past 5 minutes) is asked for again.
func TestBrowserSecurityPage(t *testing.T) {
	chromium := chromiumPath(t)
	artifacts := os.Getenv(envArtifacts)
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	d := startDemoAt(t, map[string]string{}, clk.Now)
	home := trustDemoCA(t, d.stdout.String())
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), browserOptions(t, chromium, home)...)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	ctx, cancel := context.WithTimeout(browserCtx, 90*time.Second)
	defer cancel()
	c := &chrome{t: t, ctx: ctx, artifacts: artifacts}
	otp := func(secret string) {
		t.Helper()
		c.do("one-time-code page", chromedp.WaitVisible(chromedp.CSS("input#code")))
		if !strings.HasPrefix(c.location(), d.tenant.URL()+"/u/mfa-otp-challenge") {
			t.Fatalf("at %s, want the tenant's one-time-code page", c.location())
		}
		c.fill("input#code", auth0test.TOTP(secret, clk.Now()))
		c.click("button[type=submit]")
	}
	password := func() {
		t.Helper()
		c.do("login page", chromedp.WaitVisible(chromedp.CSS("input#password")))
		c.do("type the password", chromedp.SetValue(chromedp.CSS("input#username"), auth0test.AliceEmail),
			chromedp.SendKeys(chromedp.CSS("input#password"), auth0test.AlicePassword))
		c.click("button[type=submit]")
	}
	alice, _ := d.tenant.User(auth0test.AliceEmail)

	// 1. A password login: the page lists the factors, read-only.
	c.do("open /account/security", chromedp.Navigate(d.url+"/account/security"))
	password()
	if got := c.text("#title"); got != "Security" {
		t.Fatalf("title %q at %s", got, c.location())
	}
	if got := c.text("#until"); !strings.Contains(got, "Changes need a fresh multi-factor authentication") {
		t.Errorf("until %q", got)
	}
	if got := c.text(`tr[data-type="totp"]`); !strings.Contains(got, "Authenticator app") {
		t.Errorf("totp row %q", got)
	}

	// 2. Remove it: step-up with the code, confirm, removed.
	c.click(`tr[data-type="totp"] button.remove`)
	otp(alice.TOTPSecret)
	c.do("confirmation", chromedp.WaitVisible(chromedp.CSS("#pending")))
	if got := c.text("#until"); !strings.Contains(got, "Changes allowed until ") {
		t.Errorf("after the step-up: %q", got)
	}
	c.click("#confirm")
	if got := c.text("#done"); got != "The authentication method was removed." {
		t.Fatalf("after removing: %q", got)
	}
	if u, _ := d.tenant.User(auth0test.AliceEmail); u.TOTPSecret != "" {
		t.Fatal("the factor is still enrolled at the tenant")
	}

	// 3. Add an authenticator app: a login for the MFA API (silent: SSO),
	// the confirmation, the QR code, a code of the new app.
	c.click("#add-totp")
	c.do("confirmation", chromedp.WaitVisible(chromedp.CSS("#pending")))
	c.click("#confirm")
	c.do("the QR code", chromedp.WaitVisible(chromedp.CSS("#totp-qr")))
	secret := c.text("#totp-secret")
	c.shot("10-security-qr")
	clk.Advance(31 * time.Second) // a new code window
	c.fill("#totp-code", auth0test.TOTP(secret, clk.Now()))
	c.click("#totp-submit")
	if got := c.text("#done"); got != "The authenticator app was added." {
		t.Fatalf("after enrolling: %q", got)
	}
	c.shot("11-security")

	// 4. Sign out, sign in with the new app's code.
	c.click("#signout")
	clk.Advance(31 * time.Second)
	c.do("open /employees", chromedp.Navigate(d.url+"/employees"))
	password()
	otp(secret)
	if got := c.text("#title"); got != "Salaries" {
		t.Fatalf("after signing in with the new app: %q at %s", got, c.location())
	}

	// 5. A new recovery code (fresh step-up: no question), then a sign-in with it.
	c.do("open /account/security", chromedp.Navigate(d.url+"/account/security"))
	c.click("#regen-recovery")
	recovery := c.text("#recovery-code")
	if u, _ := d.tenant.User(auth0test.AliceEmail); len(recovery) < 8 || u.RecoveryCode != recovery {
		t.Fatalf("shown recovery code %q", recovery)
	}
	c.click("#signout")
	c.do("open /employees", chromedp.Navigate(d.url+"/employees"))
	password()
	c.do("one-time-code page", chromedp.WaitVisible(chromedp.CSS("#use-recovery-code")))
	c.click("#use-recovery-code")
	c.fill("input#recovery_code", recovery)
	c.click("button[type=submit]")
	c.do("the next recovery code", chromedp.WaitVisible(chromedp.CSS("#recovery-code")))
	c.click("button[type=submit]")
	if got := c.text("#title"); got != "Salaries" {
		t.Fatalf("after the recovery code: %q at %s", got, c.location())
	}
	if u, _ := d.tenant.User(auth0test.AliceEmail); u.RecoveryCode == recovery {
		t.Error("the recovery code still works")
	}

	// 6. Six minutes later a change asks for the code again.
	clk.Advance(6 * time.Minute)
	c.do("open /account/security", chromedp.Navigate(d.url+"/account/security"))
	if got := c.text("#until"); !strings.Contains(got, "Changes need a fresh") {
		t.Errorf("stale: %q", got)
	}
	c.click("#forget")
	password() // the tenant's session is older than max_age too: password and code again
	otp(secret)
	c.do("confirmation", chromedp.WaitVisible(chromedp.CSS("#pending")))
	c.click("#confirm")
	if got := c.text("#done"); got != "Remembered browsers were forgotten." {
		t.Fatalf("after the stale step-up: %q", got)
	}
	if strings.Contains(d.stderr.String(), recovery) {
		t.Error("the recovery code is in the demo's logs")
	}

	if os.Getenv(envScreenshot) == "1" {
		png, err := os.ReadFile(filepath.Join(artifacts, "11-security.png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(docsDir, "demo-security.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
