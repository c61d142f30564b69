package stepup

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stepupauth/stepup/auth0test"
)

// A google-oauth2 user who asks for the database connection (the browser
// controls /login's connection and the /authorize URL) and logs in with
// Google anyway still answers to ConnectionPolicies["google-oauth2"].
func TestRequestedConnectionDoesNotChooseThePolicy(t *testing.T) {
	h := newHarness(t, harnessOpts{client: func(c *Config) {
		c.ConnectionPolicies = map[string]Policy{auth0test.GoogleConnection: MFA.WithMaxAge(5 * time.Minute)}
	}})
	carol := h.newUser(auth0test.Credentials{Email: auth0test.CarolEmail})
	w := carol.get("/login?connection=" + auth0test.DatabaseConnection + "&return_to=" + url.QueryEscape(pathReports))
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil || loc.Query().Get("connection") != auth0test.DatabaseConnection {
		t.Fatalf("login: %d to %q, want the database connection requested", w.Code, w.Header().Get("Location"))
	}
	// The browser edits the authorization URL and signs in with Google.
	q := loc.Query()
	q.Set("connection", auth0test.GoogleConnection)
	loc.RawQuery = q.Encode()
	w.Header().Set("Location", loc.String())
	if w := carol.callback(carol.authorize(w)); w.Code != http.StatusFound || w.Header().Get("Location") != pathReports {
		t.Fatalf("carol's login: %d to %q", w.Code, w.Header().Get("Location"))
	}
	if got := carol.session().Connection; got != auth0test.GoogleConnection {
		t.Errorf("session connection %q, want %q (from the sub, not the request)", got, auth0test.GoogleConnection)
	}
	w = carol.get(pathReports)
	loc, _ = url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusFound || loc.Query().Get("max_age") != "300" || loc.Query().Has("connection") {
		t.Fatalf("step-up: %d to %s, want max_age=300 (google-oauth2's policy) and no connection hint", w.Code, loc)
	}
	if w := carol.callback(carol.authorize(w)); w.Code != http.StatusFound {
		t.Fatalf("step-up callback: %d %s", w.Code, w.Body.String())
	}
	if w := carol.get(pathReports); w.Code != http.StatusOK {
		t.Fatalf("after the step-up: %d", w.Code)
	}
	h.clock.Advance(6 * time.Minute)
	w = carol.get(pathReports)
	loc, _ = url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusFound || loc.Query().Get("max_age") != "300" {
		t.Errorf("6 minutes after MFA: %d to %s, want a step-up with max_age=300 (google-oauth2 within 5 minutes)", w.Code, loc)
	}
}

// A database user's requested connection is kept as the hint, but the
// session answers to "auth0", not to the requested name.
func TestRequestedDatabaseConnectionIsOnlyAHint(t *testing.T) {
	h := newHarness(t, harnessOpts{client: func(c *Config) {
		c.ConnectionPolicies = map[string]Policy{
			"auth0":                      MFA.WithMaxAge(5 * time.Minute),
			auth0test.DatabaseConnection: Login, // never chosen by the request
		}
	}})
	alice := h.alice()
	w := alice.get("/login?connection=" + auth0test.DatabaseConnection + "&return_to=" + url.QueryEscape(pathReports))
	if w := alice.callback(alice.authorize(w)); w.Code != http.StatusFound {
		t.Fatalf("login: %d", w.Code)
	}
	s := alice.session()
	if s.Connection != "auth0" || s.connectionHint != auth0test.DatabaseConnection {
		t.Errorf("session connection %q, hint %q; want auth0 and %q", s.Connection, s.connectionHint, auth0test.DatabaseConnection)
	}
	w = alice.get(pathReports)
	loc, _ := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusFound || loc.Query().Get("max_age") != "300" ||
		loc.Query().Get("connection") != auth0test.DatabaseConnection || loc.Query().Get("acr_values") != ACRMultiFactor {
		t.Errorf("step-up: %d to %s, want auth0's policy (MFA, max_age=300) sent to the hinted connection", w.Code, loc)
	}
}

func TestConnectionKey(t *testing.T) {
	policies := map[string]Policy{"samlp": MFA, "contoso": MFA}
	tests := []struct {
		sub, key, conn, provider string
	}{
		{"auth0|6543abc", "auth0", "", "auth0"},
		{"auth0|a|google-oauth2", "auth0", "", "auth0"},
		{"google-oauth2|1080001", "google-oauth2", "", "google-oauth2"},
		{"github|42", "github", "", "github"},
		{"email|64f0", "email", "", "email"},
		{"google-oauth2|a|b|c", "google-oauth2", "", "google-oauth2"},
		{"samlp|fabrikam-saml|jane", "samlp", "fabrikam-saml", "samlp"}, // no entry for fabrikam-saml: its strategy's
		{"waad|contoso|d1c0", "contoso", "contoso", "waad"},
		{"oidc|okta|00u1", "okta", "okta", "oidc"},
		{"samlp|fabrikam|jane|doe", "samlp", "fabrikam", "samlp"},
		{"oauth2|my-idp|7", "my-idp", "my-idp", "oauth2"},
		{"google-apps|jane@corp.example", "google-apps", "", "google-apps"},
		{"samlp||jane", "", "", ""},
		{"samlp|fabrikam|", "", "", ""},
		{"samlp|contoso|", "", "", ""},
		{"|google-oauth2|1", "", "", ""},
		{"|", "", "", ""},
		{"||||", "", "", ""},
		{"auth0|", "", "", ""},
		{"google-oauth2", "", "", ""},
		{"", "", "", ""},
	}
	for _, tc := range tests {
		conn, provider := subjectConnection(tc.sub)
		if conn != tc.conn || provider != tc.provider {
			t.Errorf("subjectConnection(%q) = %q, %q; want %q, %q", tc.sub, conn, provider, tc.conn, tc.provider)
		}
		if got := connectionKey(policies, tc.sub); got != tc.key {
			t.Errorf("connectionKey(%q) = %q, want %q", tc.sub, got, tc.key)
		}
	}
}

func TestConnectionConsistent(t *testing.T) {
	tests := []struct {
		requested, sub string
		want           bool
	}{
		{auth0test.DatabaseConnection, "auth0|1", true},
		{"Corp-DB", "auth0|1", true},
		{auth0test.GoogleConnection, "auth0|1", false},
		{"samlp", "auth0|1", false},
		{"auth0", "auth0|1", false},
		{"", "auth0|1", false},
		{auth0test.GoogleConnection, "google-oauth2|1", true},
		{auth0test.DatabaseConnection, "google-oauth2|1", false},
		{"github", "google-oauth2|1", false},
		{"fabrikam-saml", "samlp|fabrikam-saml|jane", true},
		{"samlp", "samlp|fabrikam-saml|jane", false},
		{"other-saml", "samlp|fabrikam-saml|jane", false},
		{auth0test.DatabaseConnection, "samlp|fabrikam-saml|jane", false},
		{"", "samlp||jane", false},
		{"x", "samlp||jane", false},
		{"google-oauth2", "google-oauth2", false},
		{"x", "", false},
	}
	for _, tc := range tests {
		if got := connectionConsistent(tc.requested, tc.sub); got != tc.want {
			t.Errorf("connectionConsistent(%q, %q) = %v, want %v", tc.requested, tc.sub, got, tc.want)
		}
	}
}

func FuzzSubjectConnection(f *testing.F) {
	for _, s := range []string{"auth0|1", "samlp|fabrikam|jane", "samlp||x", "||", "", "google-oauth2|1|2"} {
		f.Add(s, "fabrikam")
	}
	f.Fuzz(func(t *testing.T, sub, requested string) {
		conn, provider := subjectConnection(sub)
		if conn != "" && provider == "" {
			t.Fatalf("%q: connection %q without a provider", sub, conn)
		}
		key := connectionKey(map[string]Policy{provider: MFA}, sub)
		if key != "" && key != conn && key != provider {
			t.Fatalf("%q: key %q is neither %q nor %q", sub, key, conn, provider)
		}
		if connectionConsistent(requested, sub) && requested == "" {
			t.Fatalf("empty request consistent with %q", sub)
		}
	})
}
