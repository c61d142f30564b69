package auth0test_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stepupauth/stepup/auth0test"
)

// authorizeURL is what the code under test would build.
func authorizeURL(tn *auth0test.Tenant, acrValues string) (authURL, verifier string) {
	app := auth0test.DefaultApplication()
	verifier = "example-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {app.ClientID}, "redirect_uri": {app.CallbackURLs[0]},
		"scope": {"openid email offline_access"}, "state": {"st"}, "nonce": {"nc"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	if acrValues != "" {
		q.Set("acr_values", acrValues)
	}
	return tn.URL() + "/authorize?" + q.Encode(), verifier
}

// redeem exchanges a code as a confidential client would and returns the
// response's members.
func redeem(tn *auth0test.Tenant, code, verifier string) map[string]any {
	app := auth0test.DefaultApplication()
	resp, err := tn.Client().PostForm(tn.URL()+"/oauth/token", url.Values{
		"grant_type": {"authorization_code"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret},
		"code": {code}, "code_verifier": {verifier}, "redirect_uri": {app.CallbackURLs[0]},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		log.Fatal(err)
	}
	return m
}

// claims decodes a JWT's payload (an example: a real client verifies it first).
func claims(jwt string) map[string]any {
	parts := strings.Split(jwt, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	return c
}

// A login, then a step-up in the same browser session: the tenant asks only for
// the second factor, and the new ID token says MFA was performed.
func Example() {
	tn, err := auth0test.Start(auth0test.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer tn.Close()
	ctx := context.Background()
	creds := auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword}

	b := tn.NewBrowser()
	u, verifier := authorizeURL(tn, "")
	cb, err := b.Login(ctx, u, creds)
	if err != nil {
		log.Fatal(err)
	}
	id := claims(redeem(tn, cb.Query().Get("code"), verifier)["id_token"].(string))
	fmt.Println("login pages:", b.Pages, "amr:", id["amr"])

	u, verifier = authorizeURL(tn, auth0test.MFAACR)
	cb, err = b.Login(ctx, u, creds)
	if err != nil {
		log.Fatal(err)
	}
	id = claims(redeem(tn, cb.Query().Get("code"), verifier)["id_token"].(string))
	fmt.Println("step-up pages:", b.Pages, "amr:", id["amr"], "acr is MFA:", id["acr"] == auth0test.MFAACR)
	// Output:
	// login pages: [login] amr: <nil>
	// step-up pages: [otp] amr: [mfa] acr is MFA: true
}

// A tenant whose clock the test controls: a max_age step-up after the session has
// aged forces a fresh login.
func ExampleConfig_clock() {
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	tn, err := auth0test.Start(auth0test.Config{Now: func() time.Time { return now }})
	if err != nil {
		log.Fatal(err)
	}
	defer tn.Close()
	ctx := context.Background()
	creds := auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword}
	b := tn.NewBrowser()
	u, _ := authorizeURL(tn, "")
	if _, err := b.Login(ctx, u, creds); err != nil {
		log.Fatal(err)
	}
	now = now.Add(10 * time.Minute)
	if _, err := b.Login(ctx, u+"&max_age=300", creds); err != nil {
		log.Fatal(err)
	}
	fmt.Println("pages after 10 minutes with max_age=300:", b.Pages)
	// Output: pages after 10 minutes with max_age=300: [login]
}

// Refresh-token rotation with reuse detection, and the family log.
func ExampleTenant_RefreshLog() {
	tn, err := auth0test.Start(auth0test.Config{RefreshTokenRotation: true})
	if err != nil {
		log.Fatal(err)
	}
	defer tn.Close()
	u, verifier := authorizeURL(tn, "")
	cb, err := tn.Login(context.Background(), u, auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword})
	if err != nil {
		log.Fatal(err)
	}
	rt := redeem(tn, cb.Query().Get("code"), verifier)["refresh_token"].(string)
	app := auth0test.DefaultApplication()
	refresh := func(token string) int {
		resp, err := tn.Client().PostForm(tn.URL()+"/oauth/token", url.Values{"grant_type": {"refresh_token"},
			"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "refresh_token": {token}})
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fmt.Println(refresh(rt), refresh(rt)) // the second use is a reuse: the family is revoked
	var kinds []string
	for _, e := range tn.RefreshLog() {
		kinds = append(kinds, e.Kind)
	}
	fmt.Println(strings.Join(kinds, " "))
	fmt.Println("refresh grants that reached the tenant:", tn.GrantCalls("refresh_token"))
	// Output:
	// 200 403
	// issued rotated reused revoked
	// refresh grants that reached the tenant: 2
}

// CIBA: a worker starts a backchannel request; the user approves it (here from Go;
// people use the page at /auth0test/ciba); the worker's poll gets tokens.
func ExampleTenant_ApproveCIBA() {
	tn, err := auth0test.Start(auth0test.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer tn.Close()
	app := auth0test.DefaultApplication()
	hint, _ := json.Marshal(map[string]string{"format": "iss_sub", "iss": tn.Issuer(), "sub": "auth0|alice"})
	resp, err := tn.Client().PostForm(tn.URL()+"/bc-authorize", url.Values{"client_id": {app.ClientID},
		"client_secret": {app.ClientSecret}, "scope": {"openid"}, "binding_message": {"Export payroll"},
		"login_hint": {string(hint)}})
	if err != nil {
		log.Fatal(err)
	}
	var start struct {
		AuthReqID string `json:"auth_req_id"`
	}
	json.NewDecoder(resp.Body).Decode(&start)
	resp.Body.Close()

	for _, p := range tn.PendingCIBA() {
		fmt.Println("pending:", p.UserID, p.BindingMessage)
	}
	if err := tn.ApproveCIBA(start.AuthReqID); err != nil {
		log.Fatal(err)
	}
	resp, err = tn.Client().PostForm(tn.URL()+"/oauth/token", url.Values{"grant_type": {auth0test.GrantCIBA},
		"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "auth_req_id": {start.AuthReqID}})
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("poll:", resp.StatusCode)
	// Output:
	// pending: auth0|alice Export payroll
	// poll: 200
}

// Fault injection: the next token request fails with 503, the one after works.
func ExampleTenant_InjectFault() {
	tn, err := auth0test.Start(auth0test.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer tn.Close()
	tn.InjectFault("/.well-known/jwks.json", auth0test.Fault{Status: http.StatusServiceUnavailable, Times: 1})
	for i := 0; i < 2; i++ {
		resp, err := tn.Client().Get(tn.URL() + "/.well-known/jwks.json")
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	fmt.Println("calls:", tn.Calls("/.well-known/jwks.json"))
	// Output:
	// 503
	// 200
	// calls: 2
}

// Minting tokens for negative tests: a valid baseline, mutated, signed with the
// tenant's current key (or any key with SignWith).
func ExampleTenant_Sign() {
	tn, err := auth0test.Start(auth0test.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer tn.Close()
	alice, _ := tn.User(auth0test.AliceEmail)
	c := tn.IDTokenClaims(auth0test.DefaultApplication().ClientID, alice)
	c["amr"] = []string{"pwd"} // no MFA
	c["aud"] = "someone-else"  // wrong audience
	token := tn.Sign(nil, c)
	fmt.Println(strings.Count(token, "."), claims(token)["aud"])
	// Output: 2 someone-else
}
