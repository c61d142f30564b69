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
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
)

// A web app with a page that needs a login and a page that needs MFA, in
// front of the auth0test dev tenant. Alice logs in with her password, then
// steps up with her one-time code when she opens the salaries.
func Example() {
	ctx := context.Background()
	app := httptest.NewServer(nil) // the app's handler is set below, once its URL is known
	defer app.Close()
	tenant, err := auth0test.Start(auth0test.Config{Applications: []auth0test.Application{application(app.URL)}})
	if err != nil {
		log.Fatal(err)
	}
	defer tenant.Close()

	client, err := stepup.New(ctx, stepup.Config{
		Domain:       tenant.Domain(),
		ClientID:     "stepup-demo-client",
		ClientSecret: auth0test.DefaultApplication().ClientSecret,
		RedirectURL:  app.URL + "/callback",
		HTTPClient:   tenant.Client(), // trusts the dev tenant's certificate
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /callback", client.CallbackHandler())
	mux.Handle("/logout", client.LogoutHandler()) // GET: a sign-out button; POST: sign out
	mux.Handle("GET /home", client.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := stepup.SessionFromContext(r.Context())
		fmt.Fprintf(w, "home of %s", s.Email)
	})))
	mux.Handle("GET /salaries", client.RequireStepUp(stepup.MFA)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := stepup.SessionFromContext(r.Context())
		fmt.Fprintf(w, "salaries for %s (mfa: %v)", s.Subject, slices.Contains(s.Authentication.AMR, "mfa"))
	})))
	app.Config.Handler = mux

	alice := newPerson(tenant, auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword})
	fmt.Println(alice.open(app.URL + "/home"))
	fmt.Println(alice.open(app.URL + "/salaries"))
	// Output:
	// home of alice@fabrikam.example (pages [login])
	// salaries for auth0|alice (mfa: true) (pages [otp])
}

// AuthorizeURL with a policy sends its acr_values and max_age; the
// transaction goes with the browser in its cookie (nothing is stored), to be
// completed once by Exchange.
func ExampleClient_AuthorizeURL() {
	client, err := stepup.New(context.Background(), stepup.Config{
		Domain:       "fabrikam.eu.auth0.com",
		ClientID:     "my-client-id",
		ClientSecret: "my-client-secret",
		RedirectURL:  "https://app.fabrikam.example/callback",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ar, err := client.AuthorizeURL(context.Background(), stepup.AuthorizeOptions{
		Policy:     stepup.MFA.WithMaxAge(5 * time.Minute),
		Connection: "google-oauth2",
		ReturnTo:   "/salaries",
	})
	if err != nil {
		log.Fatal(err)
	}
	u, _ := url.Parse(ar.URL)
	q := u.Query()
	fmt.Println(u.Host + u.Path)
	fmt.Println("acr_values:", q.Get("acr_values"))
	fmt.Println("max_age:", q.Get("max_age"))
	fmt.Println("connection:", q.Get("connection"))
	fmt.Println("code_challenge_method:", q.Get("code_challenge_method"))
	ck := ar.Cookie()
	fmt.Println("cookie:", ck.Name == client.TransactionCookieName(ar.State), ck.HttpOnly, ck.Secure, ck.SameSite == http.SameSiteLaxMode, ck.MaxAge)
	// Output:
	// fabrikam.eu.auth0.com/authorize
	// acr_values: http://schemas.openid.net/pape/policies/2007/06/multi-factor
	// max_age: 300
	// connection: google-oauth2
	// code_challenge_method: S256
	// cookie: true true true true 600
}

// Exchange completes the authorization the browser brought back, and
// StartSession records it; a background job later finds the session by its
// handle and checks its own policy.
func ExampleClient_Exchange() {
	ctx := context.Background()
	tenant, err := auth0test.Start(auth0test.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer tenant.Close()
	app := auth0test.DefaultApplication()
	client, err := stepup.New(ctx, stepup.Config{
		Domain: tenant.Domain(), ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		RedirectURL: app.CallbackURLs[0], HTTPClient: tenant.Client(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// MaxAge sends max_age: only then does Auth0 put auth_time in the ID token.
	ar, err := client.AuthorizeURL(ctx, stepup.AuthorizeOptions{Policy: stepup.MFA.WithMaxAge(5 * time.Minute)})
	if err != nil {
		log.Fatal(err)
	}
	// The browser goes to ar.URL with its transaction cookie (ar.Cookie()); the tenant
	// sends it back to the callback with a code and the state.
	callback, err := tenant.Login(ctx, ar.URL, auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword})
	if err != nil {
		log.Fatal(err)
	}
	login, err := client.Exchange(ctx, callback.Query(), ar.Transaction)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("acr:", login.IDToken.ACR)
	fmt.Println("amr:", login.IDToken.AMR)

	s, err := client.StartSession(ctx, login, nil)
	if err != nil {
		log.Fatal(err)
	}
	// In a background job, with the handle only:
	job, err := client.Session(ctx, s.Handle)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("export allowed:", client.CheckSession(job, stepup.MFA.WithMaxAge(5*time.Minute)) == nil)

	// A replay of the same callback finds nothing.
	_, err = client.Exchange(ctx, callback.Query(), ar.Transaction)
	fmt.Println("replay:", errors.Is(err, stepup.ErrTransactionNotFound))
	// Output:
	// acr: http://schemas.openid.net/pape/policies/2007/06/multi-factor
	// amr: [mfa]
	// export allowed: true
	// replay: true
}

// A tenant that ignores acr_values (no step-up Action) lets the user in
// without MFA: Exchange refuses the login instead of passing it silently.
func ExampleStepUpError() {
	ctx := context.Background()
	tenant, err := auth0test.Start(auth0test.Config{IgnoreACRValues: true})
	if err != nil {
		log.Fatal(err)
	}
	defer tenant.Close()
	app := auth0test.DefaultApplication()
	client, err := stepup.New(ctx, stepup.Config{
		Domain: tenant.Domain(), ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		RedirectURL: app.CallbackURLs[0], HTTPClient: tenant.Client(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ar, _ := client.AuthorizeURL(ctx, stepup.AuthorizeOptions{Policy: stepup.MFA})
	callback, _ := tenant.Login(ctx, ar.URL, auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword})
	_, err = client.Exchange(ctx, callback.Query(), ar.Transaction)

	var se *stepup.StepUpError
	if errors.As(err, &se) {
		fmt.Println(se.Reason)
		fmt.Println("because:", se.Cause)
		fmt.Println("HTTP status:", stepup.ErrorStatus(err))
	}
	// Output:
	// tenant did not perform the requested step-up
	// because: acr missing
	// HTTP status: 403
}

// application is the dev tenant's default application, with the example
// app's callback and logout URLs.
func application(appURL string) auth0test.Application {
	a := auth0test.DefaultApplication()
	a.CallbackURLs = []string{appURL + "/callback"}
	a.LogoutURLs = []string{appURL + "/"}
	return a
}

// person is a browser for the examples: cookies for the app, and a browser
// of the tenant that fills in its login and OTP pages.
type person struct {
	tenant *auth0test.Tenant
	app    *http.Client
	pages  *auth0test.Browser
	creds  auth0test.Credentials
}

func newPerson(t *auth0test.Tenant, c auth0test.Credentials) *person {
	jar, _ := cookiejar.New(nil)
	return &person{
		tenant: t, pages: t.NewBrowser(), creds: c,
		app: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// open loads a page of the app, following redirects through the tenant's
// pages, and returns the final body and the tenant pages visited.
func (p *person) open(target string) string {
	var pages []string
	for range 10 {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := p.app.Do(req)
		if err != nil {
			return err.Error()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		switch {
		case resp.StatusCode != http.StatusFound:
			return fmt.Sprintf("%s (pages %v)", body, pages)
		case strings.HasPrefix(loc, p.tenant.URL()):
			cb, err := p.pages.Login(context.Background(), loc, p.creds)
			if err != nil {
				return err.Error()
			}
			pages = append(pages, p.pages.Pages...)
			target = cb.String()
		default:
			next, _ := resp.Request.URL.Parse(loc)
			target = next.String()
		}
	}
	return "too many redirects"
}
