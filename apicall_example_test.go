package stepup_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"time"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
)

// A web backend whose page calls a salaries API with the user's access
// token. The API wants a token issued after MFA: its RFC 9470 challenge
// becomes a step-up (exactly its acr_values and max_age), after which the
// page, loaded again, calls the API with the new token.
func ExampleAPIClient_Do() {
	const (
		api = "https://api.fabrikam.example/"
		ns  = "https://stepup.example/" // where the tenant's Action copies the MFA into access tokens
	)
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()

	appConfig := auth0test.DefaultApplication()
	appConfig.CallbackURLs = []string{app.URL + "/callback"}
	tenant, err := auth0test.Start(auth0test.Config{
		Applications: []auth0test.Application{appConfig},
		APIs:         []auth0test.API{{Identifier: api}},
		// The step-up Action, and one that copies the MFA into access tokens.
		Action: func(ev *auth0test.ActionEvent, a *auth0test.ActionAPI) {
			if slices.Contains(ev.ACRValues, stepup.ACRMultiFactor) {
				a.RequireMFA()
				a.SetAccessTokenClaim(ns+"acr", stepup.ACRMultiFactor)
				a.SetAccessTokenClaim(ns+"amr", []string{stepup.AMRMultiFactor})
				a.SetAccessTokenClaim(ns+"auth_time", time.Now().Unix())
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tenant.Close()

	client, err := stepup.New(context.Background(), stepup.Config{
		Domain:       tenant.Domain(),
		ClientID:     appConfig.ClientID,
		ClientSecret: appConfig.ClientSecret,
		RedirectURL:  app.URL + "/callback",
		Audience:     api, // the login's access token is for the API
		HTTPClient:   tenant.Client(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// The API, in this process: its Verifier shares the Client's keys.
	verifier, err := client.Verifier(api, stepup.WithClaimNamespace(ns))
	if err != nil {
		log.Fatal(err)
	}
	salariesAPI := httptest.NewServer(verifier.Require(stepup.MFA.WithMaxAge(10 * time.Minute))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, _ := stepup.AccessTokenFromContext(r.Context())
			fmt.Fprintf(w, "salaries for %s", tok.Subject)
		})))
	defer salariesAPI.Close()

	// The page.
	apiClient, err := client.APIClient(stepup.APIConfig{Audience: api})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("GET /report", client.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := stepup.SessionFromContext(r.Context())
		req, _ := http.NewRequestWithContext(r.Context(), "GET", salariesAPI.URL+"/salaries", nil)
		resp, err := apiClient.Do(s, req)
		var need *stepup.StepUpNeededError
		if errors.As(err, &need) {
			fmt.Println("the API asks for acr_values", need.Challenge.ACRValues, "max_age", need.Challenge.MaxAge)
			if err := client.StepUp(w, r, need.AuthorizeOptions); err != nil {
				http.Error(w, err.Error(), stepup.ErrorStatus(err)) // ErrStepUpLoop: 403
			}
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
	})))
	mux.Handle("GET /callback", client.CallbackHandler())

	// alice, in a browser: the page, the tenant's pages, the callback...
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	atTenant := tenant.NewBrowser()
	alice := auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword}
	var visit func(url string) *http.Response
	visit = func(url string) *http.Response {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := browser.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		if resp.StatusCode == http.StatusFound {
			resp.Body.Close()
			loc, _ := resp.Location()
			if loc.Host != app.Listener.Addr().String() { // the tenant
				if loc, err = atTenant.Login(context.Background(), loc.String(), alice); err != nil {
					log.Fatal(err)
				}
				fmt.Println("tenant pages:", atTenant.Pages)
			}
			return visit(loc.String())
		}
		return resp
	}
	resp := visit(app.URL + "/report")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// tenant pages: [login]
	// the API asks for acr_values [http://schemas.openid.net/pape/policies/2007/06/multi-factor] max_age 10m0s
	// tenant pages: [otp]
	// 200 salaries for auth0|alice
}
