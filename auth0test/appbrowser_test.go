package auth0test_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
)

// startApp runs a stepup app on srv (http or https) against tn.
func startApp(t *testing.T, tn *auth0test.Tenant, srv *httptest.Server, tls bool) string {
	t.Helper()
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	appURL := scheme + srv.Listener.Addr().String()
	app := auth0test.DefaultApplication()
	if err := tn.AddCallbackURL(app.ClientID, appURL+"/callback"); err != nil {
		t.Fatal(err)
	}
	client, err := stepup.New(context.Background(), stepup.Config{
		Domain: tn.Domain(), ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		RedirectURL: appURL + "/callback", HTTPClient: tn.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	mux := http.NewServeMux()
	mux.Handle("GET /callback", client.CallbackHandler())
	mux.Handle("/", client.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := stepup.SessionFromContext(r.Context())
		r.ParseForm()
		fmt.Fprintf(w, "%s %s as %s", r.Method, r.Form.Get("note"), s.Email)
	})))
	mux.Handle("GET /salaries", client.RequireStepUp(stepup.MFA.WithMaxAge(5*time.Minute))(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "salaries") })))
	srv.Config.Handler = mux
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return appURL
}

func TestBrowserDrivesTheApp(t *testing.T) {
	ctx := context.Background()
	tn := auth0test.NewTenant(t, auth0test.Config{})

	t.Run("user without MFA is refused the MFA page", func(t *testing.T) {
		appURL := startApp(t, tn, httptest.NewUnstartedServer(nil), false)
		b := tn.NewBrowser()
		resp, err := b.Get(ctx, appURL+"/salaries", auth0test.UserWithoutMFA())
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK && strings.Contains(resp.Body, "salaries") {
			t.Fatalf("bob saw the salaries: %d %q", resp.StatusCode, resp.Body)
		}
		if !cmp.Equal(b.Pages, []string{"login"}) {
			t.Errorf("pages %v, want [login] (no factor: no OTP page)", b.Pages)
		}
	})

	t.Run("https app, form POST, skip OTP", func(t *testing.T) {
		srv := httptest.NewUnstartedServer(nil)
		appURL := startApp(t, tn, srv, true)
		b := tn.NewBrowser()
		b.Trust(srv.Certificate())
		resp, err := b.PostForm(ctx, appURL+"/notes", url.Values{"note": {"hello"}}, auth0test.UserWithMFA())
		if err != nil {
			t.Fatal(err)
		}
		// A POST that needs a login is sent to the tenant and comes back as a GET.
		if resp.StatusCode != http.StatusOK || !strings.HasSuffix(resp.Body, "as "+auth0test.AliceEmail) {
			t.Errorf("after login: %d %q", resp.StatusCode, resp.Body)
		}
		if len(b.Cookies(appURL)) == 0 {
			t.Error("no app cookie kept")
		}
		c := auth0test.UserWithMFA()
		c.SkipOTP = true
		if _, err := b.Get(ctx, appURL+"/salaries", c); !errors.Is(err, auth0test.ErrMFARequired) {
			t.Errorf("SkipOTP: %v, want ErrMFARequired", err)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		appURL := startApp(t, tn, httptest.NewUnstartedServer(nil), false)
		c := auth0test.UserWithMFA()
		c.Password = "nope"
		if _, err := tn.NewBrowser().Get(ctx, appURL+"/", c); !errors.Is(err, auth0test.ErrLoginFailed) {
			t.Errorf("got %v, want ErrLoginFailed", err)
		}
	})
}

// A third-party application shows the consent page once; declining ends at
// the callback with access_denied.
func TestBrowserConsent(t *testing.T) {
	ctx := context.Background()
	app := auth0test.DefaultApplication()
	app.ThirdParty = true
	tn := auth0test.NewTenant(t, auth0test.Config{Applications: []auth0test.Application{app}})
	authz := tn.URL() + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {app.ClientID},
		"redirect_uri": {app.CallbackURLs[0]}, "scope": {"openid email"}, "state": {"s"}}.Encode()
	b := tn.NewBrowser()
	deny := auth0test.UserWithMFA()
	deny.DenyConsent = true
	cb, err := b.Login(ctx, authz, deny)
	if err != nil || cb.Query().Get("error") != "access_denied" || !cmp.Equal(b.Pages, []string{"login", "consent"}) {
		t.Fatalf("declined: %v %v pages %v", cb, err, b.Pages)
	}
	if cb, err = b.Login(ctx, authz, auth0test.UserWithMFA()); err != nil || cb.Query().Get("code") == "" {
		t.Fatalf("accepted: %v %v", cb, err)
	}
	if cb, err = b.Login(ctx, authz, auth0test.UserWithMFA()); err != nil || cb.Query().Get("code") == "" || len(b.Pages) != 0 {
		t.Errorf("granted already: %v %v pages %v", cb, err, b.Pages)
	}
}

// NewUser makes users with and without a factor that the Browser can drive.
func TestNewUserFixture(t *testing.T) {
	dana, eve := auth0test.NewUser("dana", true), auth0test.NewUser("eve", false)
	if dana.TOTPSecret == "" || eve.TOTPSecret != "" || dana.Email != "dana@example.test" {
		t.Fatalf("fixtures: %+v %+v", dana, eve)
	}
	tn := auth0test.NewTenant(t, auth0test.Config{Users: []auth0test.User{dana, eve}})
	app := auth0test.DefaultApplication()
	authz := tn.URL() + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {app.ClientID},
		"redirect_uri": {app.CallbackURLs[0]}, "scope": {"openid"}, "acr_values": {auth0test.MFAACR}}.Encode()
	b := tn.NewBrowser()
	if cb, err := b.Login(context.Background(), authz, dana.Credentials()); err != nil || cb.Query().Get("code") == "" ||
		!cmp.Equal(b.Pages, []string{"login", "otp"}) {
		t.Errorf("dana: %v %v %v", cb, err, b.Pages)
	}
	if cb, err := tn.Login(context.Background(), authz, eve.Credentials()); err != nil || cb.Query().Get("error") != "access_denied" {
		t.Errorf("eve: %v %v", cb, err)
	}
}
