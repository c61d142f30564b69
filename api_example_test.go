package stepup_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
)

// An API that serves salaries only to tokens issued after MFA within the
// last 10 minutes. Auth0 does not put acr, amr or auth_time in access
// tokens: a post-login Action copies them under a namespace, which
// ClaimNamespace names. A token without the step-up gets an RFC 9470
// challenge, which the client turns into a new authorization request.
func ExampleVerifier_Require() {
	tenant, err := auth0test.Start(auth0test.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer tenant.Close()

	const api = "https://api.fabrikam.example/"
	v, err := stepup.NewVerifier(context.Background(), stepup.VerifierConfig{
		Issuer:         tenant.Issuer(), // usually just Domain: "fabrikam.eu.auth0.com"
		Audience:       api,
		HTTPClient:     tenant.Client(),
		ClaimNamespace: "https://stepup.example/",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	salaries := stepup.MFA.WithMaxAge(10 * time.Minute)
	srv := httptest.NewServer(v.Require(salaries)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := stepup.AccessTokenFromContext(r.Context())
		fmt.Fprintf(w, "salaries for %s", tok.Subject)
	})))
	defer srv.Close()

	call := func(claims map[string]any) *http.Response {
		now := time.Now().Unix()
		claims["iss"], claims["sub"], claims["aud"], claims["iat"], claims["exp"] = tenant.Issuer(), "auth0|alice", api, now, now+3600
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+tenant.Sign(nil, claims))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		return resp
	}

	// A token from a password-only login.
	resp := call(map[string]any{})
	resp.Body.Close()
	c, err := stepup.ParseChallenge(resp)
	if err != nil {
		log.Fatal(err)
	}
	opts := c.AuthorizeOptions()
	fmt.Println(resp.StatusCode, c.Error)
	fmt.Println("step up with acr_values:", opts.Policy.ACRValues(), "max_age:", *opts.MaxAge)

	// A token issued after the step-up.
	resp = call(map[string]any{
		"https://stepup.example/acr":       stepup.ACRMultiFactor,
		"https://stepup.example/amr":       []string{"mfa"},
		"https://stepup.example/auth_time": time.Now().Unix() - 30,
	})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 401 insufficient_user_authentication
	// step up with acr_values: http://schemas.openid.net/pape/policies/2007/06/multi-factor max_age: 10m0s
	// 200 salaries for auth0|alice
}
