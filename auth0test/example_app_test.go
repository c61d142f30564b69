package auth0test_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
)

// A test of "this page needs MFA" for an app built with stepup: the tenant,
// the app on an httptest server, and a Browser that goes through the app's
// redirects, the tenant's login and one-time-code pages, and the callback.
// The README's "Testing your app" is this Example.
func ExampleBrowser_Get() {
	ctx := context.Background()
	tenant, err := auth0test.Start(auth0test.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer tenant.Close()

	// The app under test, on a loopback port known before it starts.
	srv := httptest.NewUnstartedServer(nil)
	defer srv.Close()
	appURL := "http://" + srv.Listener.Addr().String()
	app := auth0test.DefaultApplication()
	if err := tenant.AddCallbackURL(app.ClientID, appURL+"/callback"); err != nil {
		log.Fatal(err)
	}
	client, err := stepup.New(ctx, stepup.Config{
		Domain: tenant.Domain(), ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		RedirectURL: appURL + "/callback", HTTPClient: tenant.Client(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	mux := http.NewServeMux()
	mux.Handle("GET /callback", client.CallbackHandler())
	mux.Handle("GET /", client.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "welcome")
	})))
	mux.Handle("GET /salaries", client.RequireStepUp(stepup.MFA.WithMaxAge(5*time.Minute))(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			s, _ := stepup.SessionFromContext(r.Context())
			fmt.Fprintf(w, "salaries, as shown to %s", s.Email)
		})))
	srv.Config.Handler = mux
	srv.Start()

	// The test: a user with MFA signs in, then opens the page that needs MFA.
	b := tenant.NewBrowser()
	resp, err := b.Get(ctx, appURL+"/", auth0test.UserWithMFA())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, resp.Body, b.Pages)
	resp, err = b.Get(ctx, appURL+"/salaries", auth0test.UserWithMFA())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, resp.Body, b.Pages)
	// Output:
	// 200 welcome [login]
	// 200 salaries, as shown to alice@fabrikam.example [otp]
}
