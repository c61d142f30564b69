package stepup

import (
	"net/http"
	"testing"

	"github.com/stepupauth/stepup/auth0test"
)

// Security review: Config.Organization is "the Auth0 organization every
// login is for", yet LoginHandler lets the browser name another one, and the
// callback then checks the ID token against the browser's choice. An app
// pinned to one customer's organization (one deployment per customer on a
// shared Auth0 application, a common B2B layout) lets a member of any other
// organization the application is enabled for sign in with
// /login?organization=<their org>: RequireLogin serves them.
func TestConfigOrganizationCannotBeReplacedByTheBrowser(t *testing.T) {
	app := auth0test.DefaultApplication()
	app.OrganizationUsage = auth0test.OrganizationAllow
	h := newHarness(t, harnessOpts{
		tenant: auth0test.Config{
			Applications: []auth0test.Application{app},
			Organizations: []auth0test.Organization{
				{ID: "org_customera1", Name: "customer-a", Members: []string{"auth0|bob"}},
				{ID: "org_attacker01", Name: "attacker", Members: []string{"auth0|alice"}},
			},
		},
		client: func(cfg *Config) { cfg.Organization = "org_customera1" },
	})
	u := h.alice() // a member of org_attacker01 only
	w := u.get("/login?organization=org_attacker01&return_to=" + pathPrivate)
	if w.Code != http.StatusFound {
		return // refused at the login route: the fix
	}
	if q := query(t, w.Header().Get("Location")); q.Get("organization") != "org_customera1" {
		w = u.callback(u.authorize(w))
		if w.Code == http.StatusFound {
			if w := u.get(pathPrivate); w.Code == http.StatusOK {
				t.Fatalf("an app with Config.Organization org_customera1 served %s to a session of org %q (the browser chose it with /login?organization=)",
					pathPrivate, u.session().OrgID)
			}
		}
	}
}
