package stepup_test

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

// A security page: a fresh MFA (at most 5 minutes old) lets the user see
// and change their factors. The Management API token is fetched once and
// shared through the store.
func ExampleFactors() {
	ctx := context.Background()
	app := httptest.NewServer(nil)
	defer app.Close()
	appCfg := application(app.URL)
	appCfg.ManagementScopes = auth0test.ManagementScopes // the application's Management API grant
	tenant, err := auth0test.Start(auth0test.Config{Applications: []auth0test.Application{appCfg}})
	if err != nil {
		log.Fatal(err)
	}
	defer tenant.Close()
	client, err := stepup.New(ctx, stepup.Config{
		Domain: tenant.Domain(), ClientID: appCfg.ClientID, ClientSecret: appCfg.ClientSecret,
		RedirectURL: app.URL + "/callback", HTTPClient: tenant.Client(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	factors, err := client.Factors(stepup.FactorsConfig{})
	if err != nil {
		log.Fatal(err)
	}
	settings := stepup.MFA.WithMaxAge(5 * time.Minute).Named("settings")

	mux := http.NewServeMux()
	mux.Handle("GET /callback", client.CallbackHandler())
	mux.Handle("GET /security", client.RequireStepUp(settings)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := stepup.SessionFromContext(r.Context())
		list, err := factors.List(r.Context(), s)
		if err != nil {
			http.Error(w, "cannot read the factors", http.StatusServiceUnavailable)
			return
		}
		for _, f := range list {
			fmt.Fprintf(w, "%s (%s) confirmed=%v\n", f.Type, f.Name, f.Confirmed)
		}
		if _, err := factors.RegenerateRecoveryCode(r.Context(), s, settings); err == nil {
			fmt.Fprintln(w, "a new recovery code was shown once")
		}
	})))
	app.Config.Handler = mux

	resp, err := tenant.NewBrowser().Get(ctx, app.URL+"/security", auth0test.UserWithMFA())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(resp.Body)
	fmt.Println("Management API tokens:", tenant.ManagementTokens())
	// Output:
	// totp (Authenticator app) confirmed=true
	// recovery-code () confirmed=true
	// a new recovery code was shown once
	// Management API tokens: 1
}
