package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/internal/redistest"
)

// TestBrowserSignOutOnlyFromOurPages: in a real Chromium, pages of another
// origin — a sibling on the same site (127.0.0.1, another port: the
// SameSite=Lax cookie is sent) and another site (localhost) — with a link to
// /logout and an auto-submitting POST form leave bob signed in; the app's
// own sign-out buttons (the header's, and the one GET /logout shows) sign
// him out.
func TestBrowserSignOutOnlyFromOurPages(t *testing.T) {
	chromium := os.Getenv(envChromium)
	if chromium == "" {
		msg := envChromium + " is not set: this test drives a real browser (see TestBrowserEndToEnd)"
		if redistest.Required() {
			t.Fatalf("%s; STEPUP_TEST_REQUIRE=1, so this is a failure", msg)
		}
		t.Skip(msg)
	}
	artifacts := os.Getenv(envArtifacts)
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	d := startDemo(t, map[string]string{})

	// The attacker's pages, on another origin.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/link":
			fmt.Fprintf(w, `<!doctype html><title>prize</title><a id="evil" href="%s/logout">Claim your prize</a>`, d.url)
		case "/form":
			fmt.Fprintf(w, `<!doctype html><title>prize</title><form id="f" method="post" action="%s/logout">`+
				`<input type="hidden" name="return_to" value="/"></form><script>document.getElementById("f").submit()</script>`, d.url)
		default:
			http.NotFound(w, r)
		}
	}))
	defer evil.Close()
	sameSite := evil.URL                                                // http://127.0.0.1:PORT
	crossSite := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1) // another site

	var certs []*x509.Certificate
	if b, _ := pem.Decode(d.tenant.CACertPEM()); b != nil {
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			certs = append(certs, c)
		}
	}
	var spki []string
	for _, c := range certs {
		sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		spki = append(spki, base64.StdEncoding.EncodeToString(sum[:]))
	}
	if len(spki) == 0 {
		t.Fatal("no tenant CA")
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		// Trust the embedded tenant's CA in this browser only (needs user-data-dir).
		chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(spki, ",")),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1000, 800))
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	ctx, cancel := context.WithTimeout(browserCtx, 60*time.Second)
	defer cancel()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("%s (at %s): %v", what, loc, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			os.WriteFile(filepath.Join(artifacts, "logout-"+name+".png"), png, 0o644)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			shot("failure")
			t.Fatalf("reading %s at %s: %v", sel, loc, err)
		}
		return strings.TrimSpace(s)
	}
	click := func(sel string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))); err != nil {
			t.Fatalf("clicking %s: %v", sel, err)
		}
	}
	// waitAt waits until the browser's location starts with prefix.
	waitAt := func(prefix string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			loc, err := chromedp.Run(ctx, chromedp.Location())
			if err == nil && strings.HasPrefix(loc, prefix) {
				return
			}
			if time.Now().After(deadline) {
				shot("failure")
				t.Fatalf("the browser is at %s, want %s", loc, prefix)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	signIn := func() {
		t.Helper()
		do("open /customers", chromedp.Navigate(d.url+"/customers"), chromedp.WaitVisible(chromedp.CSS("input#password")))
		do("type bob's password",
			chromedp.SetValue(chromedp.CSS("input#username"), auth0test.BobEmail),
			chromedp.SendKeys(chromedp.CSS("input#password"), auth0test.BobPassword))
		click("button[type=submit]")
		if got := text("#title"); got != "Customers" {
			t.Fatalf("after sign-in the page is %q", got)
		}
	}
	stillSignedIn := func(after string) {
		t.Helper()
		do("open /customers", chromedp.Navigate(d.url+"/customers"))
		if got := text("#who"); got != "Bob Fabrikam" {
			shot("signed-out-by-" + after)
			t.Fatalf("after %s the demo says %q, want bob still signed in", after, got)
		}
	}
	refusedPOSTs := func() int { return strings.Count(d.stderr.String(), "method=POST path=/logout status=403") }

	signIn()
	for _, origin := range []struct{ name, url string }{{"same-site", sameSite}, {"cross-site", crossSite}} {
		do(origin.name+" link page", chromedp.Navigate(origin.url+"/link"), chromedp.WaitVisible(chromedp.CSS("#evil")))
		click("#evil")
		waitAt(d.url + "/logout")
		if got := text("#stepup-signout"); got != "Sign out" {
			t.Errorf("GET /logout shows %q, want the sign-out button", got)
		}
		shot(origin.name + "-link")
		stillSignedIn("a " + origin.name + " link")

		before := refusedPOSTs()
		do(origin.name+" auto-submitting form", chromedp.Navigate(origin.url+"/form"))
		waitAt(d.url + "/logout")
		deadline := time.Now().Add(10 * time.Second)
		for origin.name == "same-site" && refusedPOSTs() == before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // the refusal is logged as the page loads
		}
		if origin.name == "same-site" && refusedPOSTs() != before+1 {
			// Same-site: the browser sent the Lax cookie, so only the Origin
			// check stood between the form and a sign-out.
			t.Errorf("the %s form's POST was not refused with 403 (log:\n%s)", origin.name, d.stderr)
		}
		shot(origin.name + "-form")
		stillSignedIn("a " + origin.name + " auto-submitting form")
	}

	// The header's sign-out button.
	click("#signout")
	waitAt(d.url + "/")
	if got := text("#who"); got != "not signed in" {
		t.Errorf("after the header's sign-out the demo says %q", got)
	}
	shot("signed-out-header")

	// The button GET /logout shows.
	signIn()
	do("open /logout", chromedp.Navigate(d.url+"/logout"), chromedp.WaitVisible(chromedp.CSS("#stepup-signout")))
	click("#stepup-signout")
	waitAt(d.url + "/")
	if got := text("#who"); got != "not signed in" {
		t.Errorf("after the sign-out page's button the demo says %q", got)
	}
	do("open /customers", chromedp.Navigate(d.url+"/customers"), chromedp.WaitVisible(chromedp.CSS("input#password")))
	shot("signed-out-page")
}
