package routers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
)

// Each router: an anonymous page load is sent to the tenant, a fetch gets
// 401, and after an MFA login through the router's own callback the page is
// served with the session in its context.
func TestRouters(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	for name, mount := range map[string]func(*stepup.Client) http.Handler{"chi": Chi, "gin": Gin, "echo": Echo} {
		t.Run(name, func(t *testing.T) {
			tenant := auth0test.NewTenant(t, auth0test.Config{})
			app := auth0test.DefaultApplication()
			client, err := stepup.New(context.Background(), stepup.Config{
				Domain: tenant.Domain(), ClientID: app.ClientID, ClientSecret: app.ClientSecret,
				RedirectURL: app.CallbackURLs[0], HTTPClient: tenant.Client(),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			h := mount(client)
			jar := map[string]*http.Cookie{}
			do := func(target string, hdr map[string]string) *httptest.ResponseRecorder {
				r := httptest.NewRequest(http.MethodGet, target, nil)
				for k, v := range hdr {
					r.Header.Set(k, v)
				}
				for _, ck := range jar {
					r.AddCookie(ck)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				for _, ck := range w.Result().Cookies() {
					jar[ck.Name] = ck
				}
				return w
			}
			if w := do("/salaries", map[string]string{"Sec-Fetch-Mode": "cors", "Accept": "*/*"}); w.Code != http.StatusUnauthorized {
				t.Fatalf("fetch: %d, want 401", w.Code)
			}
			w := do("/salaries", map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html"})
			loc := w.Header().Get("Location")
			if w.Code != http.StatusFound || !strings.HasPrefix(loc, tenant.URL()+"/authorize") {
				t.Fatalf("navigation: %d to %q, want the tenant", w.Code, loc)
			}
			cb, err := tenant.NewBrowser().Login(context.Background(), loc,
				auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword})
			if err != nil {
				t.Fatal(err)
			}
			if w := do((&url.URL{Path: "/callback", RawQuery: cb.RawQuery}).String(), nil); w.Code != http.StatusFound {
				t.Fatalf("callback: %d %s", w.Code, w.Body.String())
			}
			if w := do("/salaries", nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "auth0|alice") {
				t.Fatalf("after MFA: %d %q", w.Code, w.Body.String())
			}
		})
	}
}
