package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/internal/redistest"
)

// Environment of the browser test.
const (
	envChromium   = "STEPUP_TEST_CHROMIUM"          // the browser binary, e.g. /usr/bin/chromium
	envArtifacts  = "STEPUP_TEST_ARTIFACTS"         // where screenshots go; default a temp dir
	envScreenshot = "STEPUP_DEMO_UPDATE_SCREENSHOT" // =1: copy the salary page's screenshot to docs/
	docsShot      = "../../docs/demo-employees.png" // the README's screenshot, from this package's directory
)

// TestBrowserEndToEnd drives the demo with a real Chromium: /employees, the
// tenant's login and one-time-code pages, the salary page and its API call;
// /customers with a password-only session in a fresh browser context; sign
// out. Screenshots of each step are saved as test artifacts.
func TestBrowserEndToEnd(t *testing.T) {
	chromium := os.Getenv(envChromium)
	if chromium == "" {
		msg := envChromium + " is not set: this test drives a real browser; run scripts/test.sh, or: " +
			"apt-get install -y chromium && " + envChromium + "=/usr/bin/chromium go test ./cmd/stepup-demo/"
		if redistest.Required() {
			t.Fatalf("%s; STEPUP_TEST_REQUIRE=1, so this is a failure", msg)
		}
		t.Skip(msg)
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s=%s: %v", envChromium, chromium, err)
	}
	artifacts := os.Getenv(envArtifacts)
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	d := startDemo(t, map[string]string{})

	// Trust the embedded tenant's certificate in this browser only: Chromium
	// accepts a chain holding one of these public keys (the flag needs
	// user-data-dir, which is set).
	spki := tenantSPKIHashes(t, d.tenant)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // root in containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(spki, ",")),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil { // start the browser without a deadline
		t.Fatalf("starting %s: %v", chromium, err)
	}
	t.Logf("%s: browser started", time.Since(t0).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(browserCtx, 45*time.Second)
	defer cancel()

	shot := func(ctx context.Context, name string) string {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		t.Logf("%s: %s", time.Since(t0).Round(time.Millisecond), name)
		p := filepath.Join(artifacts, name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	text := func(ctx context.Context, sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			shot(ctx, "failure")
			t.Fatalf("reading %s on %s: %v", sel, loc, err)
		}
		return strings.TrimSpace(s)
	}
	// submit clicks a button and waits for the page load at the end of the
	// redirects it starts.
	submit := func(ctx context.Context, sel string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))); err != nil {
			t.Fatalf("clicking %s: %v", sel, err)
		}
	}
	do := func(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("%s (at %s): %v", what, loc, err)
		}
	}

	// 1. /employees sends alice to the tenant's login page.
	do(ctx, "open /employees", chromedp.Navigate(d.url+"/employees"), chromedp.WaitVisible(chromedp.CSS("input#password")))
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.HasPrefix(loc, d.tenant.URL()+"/u/login") {
		t.Fatalf("after /employees the browser is at %s, want the tenant's login page", loc)
	}
	shot(ctx, "01-tenant-login")
	do(ctx, "type the password",
		chromedp.SetValue(chromedp.CSS("input#username"), auth0test.AliceEmail),
		chromedp.SendKeys(chromedp.CSS("input#password"), auth0test.AlicePassword))
	submit(ctx, "button[type=submit]")

	// 2. The one-time code: read it on the demo-aid page in a second tab,
	// as a person would read their phone, and type it.
	do(ctx, "one-time-code page", chromedp.WaitVisible(chromedp.CSS("input#code")))
	shot(ctx, "02-tenant-otp")
	phone, cancelPhone := chromedp.NewContext(ctx)
	do(phone, "open /demo/otp", chromedp.Navigate(d.url+"/demo/otp"))
	code := text(phone, "#otp")
	shot(phone, "03-demo-otp")
	cancelPhone()
	if len(code) != 6 {
		t.Fatalf("demo aid shows code %q, want 6 digits", code)
	}
	do(ctx, "type the code", chromedp.SendKeys(chromedp.CSS("input#code"), code))
	submit(ctx, "button[type=submit]")

	// 3. The salary page, with the API's 200.
	if got := text(ctx, "#title"); got != "Salaries" {
		t.Fatalf("page title %q, want Salaries", got)
	}
	if got := text(ctx, "#acr"); got != stepup.ACRMultiFactor {
		t.Errorf("acr shown %q", got)
	}
	if got := text(ctx, "#amr"); got != "mfa" {
		t.Errorf("amr shown %q", got)
	}
	if got := text(ctx, "#stepup_until"); !strings.Contains(got, "UTC") || strings.Contains(got, "expired") {
		t.Errorf("step-up validity shown %q", got)
	}
	status, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#api-status"), "data-status"))
	if err != nil || status.Value != "200" {
		t.Errorf("API status on the page: %+v %v, want 200 (%s)", status, err, text(ctx, "#api-status"))
	}
	employeesShot := shot(ctx, "04-employees")

	// 4. Sign out: back on the home page, signed out, also at the tenant.
	submit(ctx, "#signout")
	if got := text(ctx, "#who"); got != "not signed in" {
		t.Errorf("after sign-out the header says %q", got)
	}
	shot(ctx, "05-signed-out")
	do(ctx, "open /customers after sign-out", chromedp.Navigate(d.url+"/customers"), chromedp.WaitVisible(chromedp.CSS("input#password")))

	t.Logf("%s: after sign-out check", time.Since(t0).Round(time.Millisecond))
	// 5. A fresh browser context: /customers with a password-only session.
	fresh, cancelFresh := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	defer cancelFresh()
	fresh, cancelFreshT := context.WithTimeout(fresh, 30*time.Second)
	defer cancelFreshT()
	do(fresh, "open /customers", chromedp.Navigate(d.url+"/customers"), chromedp.WaitVisible(chromedp.CSS("input#password")))
	t.Logf("%s: fresh context at login", time.Since(t0).Round(time.Millisecond))
	do(fresh, "type bob's password",
		chromedp.SetValue(chromedp.CSS("input#username"), auth0test.BobEmail),
		chromedp.SendKeys(chromedp.CSS("input#password"), auth0test.BobPassword))
	submit(fresh, "button[type=submit]")
	if got := text(fresh, "#title"); got != "Customers" {
		t.Fatalf("page title %q, want Customers", got)
	}
	if got := text(fresh, "#who"); got != "Bob Fabrikam" {
		t.Errorf("signed in as %q", got)
	}
	if got := text(fresh, "#stepup_until"); got != "no MFA in this session" {
		t.Errorf("step-up validity shown %q for a password-only session", got)
	}
	shot(fresh, "06-customers-password-only")
	submit(fresh, "#signout")
	if got := text(fresh, "#who"); got != "not signed in" {
		t.Errorf("after bob's sign-out the header says %q", got)
	}

	t.Logf("%s: screenshots in %s", time.Since(t0).Round(time.Millisecond), artifacts)
	if os.Getenv(envScreenshot) == "1" {
		png, err := os.ReadFile(employeesShot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(docsShot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", docsShot)
	}
}

// tenantSPKIHashes returns the base64 SHA-256 of the public keys of the
// tenant's CA and of the certificate it serves.
func tenantSPKIHashes(t *testing.T, tn *auth0test.Tenant) []string {
	t.Helper()
	var certs []*x509.Certificate
	if b, _ := pem.Decode(tn.CACertPEM()); b != nil {
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			certs = append(certs, c)
		}
	}
	conn, err := tls.Dial("tcp", tn.Domain(), &tls.Config{RootCAs: tn.CertPool()})
	if err != nil {
		t.Fatalf("TLS to the tenant: %v", err)
	}
	certs = append(certs, conn.ConnectionState().PeerCertificates...)
	conn.Close()
	var out []string
	for _, c := range certs {
		sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		out = append(out, base64.StdEncoding.EncodeToString(sum[:]))
	}
	return out
}
