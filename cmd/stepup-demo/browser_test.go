package main

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	envScreenshot = "STEPUP_DEMO_UPDATE_SCREENSHOT" // =1: copy the README's screenshots to docs/
	docsDir       = "../../docs"                    // the README's screenshots, from this package's directory
)

// docsShots maps the steps' screenshots to the README's copies in docs/.
var docsShots = map[string]string{
	"01-tenant-login": "demo-login.png",
	"02-tenant-otp":   "demo-otp.png",
	"04-employees":    "demo-employees.png",
	"07-bob-refused":  "demo-refused.png",
}

// TestBrowserEndToEnd drives the demo with a real Chromium: /employees, the
// tenant's login and one-time-code pages, the salary page and its API call;
// /customers with a password-only session in a fresh browser context; sign
// out. Screenshots of each step are saved as test artifacts.
func TestBrowserEndToEnd(t *testing.T) {
	chromium := chromiumPath(t)
	artifacts := os.Getenv(envArtifacts)
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	d := startDemo(t, map[string]string{})

	// Trust the demo CA as the README tells a person to: the banner's
	// one-step command, run in a shell, for a browser whose HOME is a fresh
	// temporary directory (so its NSS database holds nothing else). The
	// browser gets no certificate flag at all.
	home := trustDemoCA(t, d.stdout.String())
	opts := browserOptions(t, chromium, home)
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
	shot(phone, "03-demo-otp-phone")
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
	shot(ctx, "04-employees")

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
	shot(fresh, "06-customers-bob")

	// 6. bob opens the salary page: the tenant cannot ask him for a second
	// factor he does not have; the page he lands on says so, keeps him
	// signed in, and its URL is not the callback.
	do(fresh, "open /employees as bob", chromedp.Navigate(d.url+"/employees"),
		chromedp.WaitVisible(chromedp.CSS("input#password, #problem")))
	if loc, _ := chromedp.Run(fresh, chromedp.Location()); strings.HasPrefix(loc, d.tenant.URL()) {
		do(fresh, "type bob's password again",
			chromedp.SetValue(chromedp.CSS("input#username"), auth0test.BobEmail),
			chromedp.SendKeys(chromedp.CSS("input#password"), auth0test.BobPassword))
		submit(fresh, "button[type=submit]")
	}
	loc, _ = chromedp.Run(fresh, chromedp.Location())
	if loc != d.url+"/error?reason=no_second_factor" {
		t.Errorf("bob's refused step-up ends at %s, want %s/error?reason=no_second_factor", loc, d.url)
	}
	if got := text(fresh, "#message"); !strings.Contains(got, "Your account has no second factor") {
		t.Errorf("bob's refusal says %q", got)
	}
	if got := text(fresh, "#next"); !strings.Contains(got, "Enroll one on the security page, or ask an admin.") {
		t.Errorf("bob's refusal suggests %q", got)
	}
	if got := text(fresh, "#who"); got != "Bob Fabrikam" {
		t.Errorf("bob's refusal page header says %q, want Bob Fabrikam", got)
	}
	// The technical detail is folded away: not visible until opened.
	folded, err := chromedp.Run(fresh, chromedp.Evaluate[bool](
		`!document.querySelector("#detail").open && !document.querySelector("#detail-text").checkVisibility()`))
	if err != nil || !folded {
		t.Errorf("technical detail folded away: %v %v, want true", folded, err)
	}
	shot(fresh, "07-bob-refused")
	do(fresh, "open the technical detail", chromedp.Click(chromedp.CSS("#detail summary")), chromedp.WaitVisible(chromedp.CSS("#detail-text")))
	if got := text(fresh, "#detail-text"); !strings.Contains(got, "access_denied") {
		t.Errorf("technical detail %q, want the tenant's access_denied", got)
	}
	submit(fresh, "#signout")
	if got := text(fresh, "#who"); got != "not signed in" {
		t.Errorf("after bob's sign-out the header says %q", got)
	}

	t.Logf("%s: screenshots in %s", time.Since(t0).Round(time.Millisecond), artifacts)
	if os.Getenv(envScreenshot) == "1" {
		for step, doc := range docsShots {
			png, err := os.ReadFile(filepath.Join(artifacts, step+".png"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(docsDir, doc), png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("updated %s", filepath.Join(docsDir, doc))
		}
	}
}

// trustDemoCA runs the banner's trust command for this system with HOME a
// new temporary directory, and returns that directory.
func trustDemoCA(t *testing.T, banner string) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("the browser test trusts the demo CA in NSS (Linux); %s not covered", runtime.GOOS)
	}
	var cmd string
	for _, line := range strings.Split(banner, "\n") {
		if c, ok := strings.CutPrefix(strings.TrimSpace(line), "trust:"); ok {
			cmd = strings.TrimSpace(c)
		}
	}
	if cmd == "" {
		t.Fatalf("the banner gives no trust command:\n%s", banner)
	}
	if _, err := exec.LookPath("certutil"); err != nil {
		msg := "certutil (Debian: libnss3-tools) is needed to trust the demo CA as the README says: " + err.Error()
		if redistest.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	home := t.TempDir()
	c := exec.Command("sh", "-c", cmd)
	c.Env = append(os.Environ(), "HOME="+home)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	t.Logf("trusted the demo CA: %s", cmd)
	return home
}

// chromiumPath is the browser of STEPUP_TEST_CHROMIUM; the test skips
// without it (fails with STEPUP_TEST_REQUIRE=1).
func chromiumPath(t *testing.T) string {
	t.Helper()
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
	return chromium
}

// browserOptions start a headless Chromium whose HOME (and so its NSS
// database) is home: no certificate flag of any kind.
func browserOptions(t *testing.T, chromium, home string, extra ...chromedp.ExecAllocatorOption) []chromedp.ExecAllocatorOption {
	return append([]chromedp.ExecAllocatorOption{
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
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Env("HOME=" + home),
		chromedp.WindowSize(1100, 900),
	}, extra...)
}

// TestBrowserDemoCAOnlyForLoopback: trusting the demo CA weakens nothing.
// Chromium, with the CA trusted as the README says, accepts a certificate
// from it for localhost and refuses one for any other site (the CA's
// critical name constraint), even when that site resolves to this machine.
func TestBrowserDemoCAOnlyForLoopback(t *testing.T) {
	chromium := chromiumPath(t)
	ca, err := loadOrCreateCA(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	home := trustDemoCA(t, "  trust:    "+trustCommand("linux", ca.certPath)+"\n")
	serve := func(name string) string {
		t.Helper()
		_, cert := issueLeaf(t, ca.ca, []string{name}, nil)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<!doctype html><title>ok</title><p id=ok>served to "+name+"</p>")
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
		srv.StartTLS()
		t.Cleanup(srv.Close)
		_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		return "https://" + name + ":" + port + "/"
	}
	good, other := serve("localhost"), serve("bank.example")
	// A resolver rule, not a certificate flag: bank.example is this machine.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		browserOptions(t, chromium, home, chromedp.Flag("host-resolver-rules", "MAP bank.example 127.0.0.1"))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 30*time.Second)
	defer cancelT()
	if err := chromedp.Do(ctx, chromedp.Navigate(good), chromedp.WaitVisible(chromedp.CSS("#ok"))); err != nil {
		t.Fatalf("localhost with a certificate from the trusted demo CA: %v", err)
	}
	err = chromedp.Do(ctx, chromedp.Navigate(other))
	if err == nil || !strings.Contains(err.Error(), "ERR_CERT") {
		t.Fatalf("bank.example with a certificate from the demo CA: %v, want a certificate error", err)
	}
	t.Logf("Chromium refused the demo CA for another site: %v", err)
}
