package stepup

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stepupauth/stepup/internal/redistest"
)

// In a real Chromium: a navigation to a protected page is redirected to the
// tenant, and a fetch of the same page from a script gets 401. No shim
// rewrites any header: the library reads what Chromium sends.
func TestChromiumNavigationAndFetch(t *testing.T) {
	chromium := os.Getenv("STEPUP_TEST_CHROMIUM")
	if chromium == "" {
		if redistest.Required() {
			t.Fatal("STEPUP_TEST_CHROMIUM is not set and STEPUP_TEST_REQUIRE=1")
		}
		t.Skip("STEPUP_TEST_CHROMIUM is not set (scripts/test.sh sets it)")
	}
	// A stand-in for the tenant's /authorize: a page Chromium can show.
	tenant := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<!doctype html><title>tenant login</title>login page"))
	}))
	defer tenant.Close()
	app := httptest.NewUnstartedServer(nil)
	c, err := New(context.Background(), Config{
		Domain: strings.TrimPrefix(tenant.URL, "https://"), ClientID: "c", ClientSecret: "s",
		RedirectURL: "http://" + app.Listener.Addr().String() + "/callback",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /public", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<!doctype html><title>public</title>public"))
	})
	mux.Handle("GET /private", c.RequireLogin(http.NotFoundHandler()))
	app.Config.Handler = mux
	app.Start()
	defer app.Close()

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors", true), // the stand-in tenant's test certificate
		chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	ctx, cancel := context.WithTimeout(browserCtx, 30*time.Second)
	defer cancel()

	if err := chromedp.Do(ctx, chromedp.Navigate(app.URL+"/private")); err != nil {
		t.Fatalf("navigating: %v", err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc, tenant.URL+"/authorize?") {
		t.Fatalf("a navigation to /private ended at %q, want the tenant's /authorize", loc)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(app.URL+"/public")); err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/private").then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusUnauthorized {
		t.Fatalf("fetch of /private: %d, want 401", status)
	}
}
