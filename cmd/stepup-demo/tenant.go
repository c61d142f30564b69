package main

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"slices"
	"time"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
)

// defaultAudience is the API identifier the embedded tenant registers for
// /api/employees when AUTH0_AUDIENCE is unset.
const defaultAudience = "https://stepup-demo.example/api"

// demoClientID names the demo's application on the embedded tenant.
const demoClientID = "stepup-demo-client"

// startEmbeddedTenant starts the auth0test dev tenant on loopback TLS, with
// one application whose callback is baseURL + "/callback", the API audience,
// the default users, and the two post-login Actions the README documents.
// It returns the tenant and the application's (random) client secret.
func startEmbeddedTenant(baseURL, audience, namespace string, log *slog.Logger, now func() time.Time) (*auth0test.Tenant, string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", err
	}
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	app := auth0test.DefaultApplication()
	app.Name = "Fabrikam intranet (stepup demo)"
	app.ClientID = demoClientID
	app.ClientSecret = secret
	app.CallbackURLs = []string{baseURL + "/callback"}
	app.LogoutURLs = []string{baseURL + "/"}
	tn, err := auth0test.Start(auth0test.Config{
		Applications: []auth0test.Application{app},
		APIs:         []auth0test.API{{Identifier: audience, Scopes: []string{"read:employees"}}},
		Action:       newDemoActions(namespace, now),
		Logger:       log.With("component", "auth0test"),
		Now:          now,
	})
	if err != nil {
		return nil, "", err
	}
	return tn, secret, nil
}

// newDemoActions returns the embedded tenant's post-login Action: the two
// Actions of the README's "Use your own tenant" run one after the other.
//
// 1. The documented step-up Action: MFA when acr_values asks for the
// multi-factor class.
//
// 2. The claims Action: Auth0 puts no acr, amr or auth_time in access tokens
// and refuses them as custom claims, so the Action copies them under the
// namespace, where the API's Verifier reads them. An Action runs before the
// MFA it requests, and the tokens are only issued once that MFA succeeded: a
// login that requests MFA is therefore issued amr ["mfa"] and, as auth_time,
// the time the Action ran (just before the one-time code was entered: never
// later than the MFA). A login whose session already performed MFA copies
// that MFA's time from event.authentication.methods (ActionEvent.Authentication),
// as the README's JavaScript Action does on Auth0.
func newDemoActions(namespace string, now func() time.Time) func(ev *auth0test.ActionEvent, api *auth0test.ActionAPI) {
	return func(ev *auth0test.ActionEvent, api *auth0test.ActionAPI) {
		// Action 1: step-up.
		wantMFA := slices.Contains(ev.ACRValues, stepup.ACRMultiFactor)
		if wantMFA {
			api.RequireMFA() // api.multifactor.enable('any', {allowRememberBrowser: false})
		}

		// Action 2: copy the authentication level into the access token.
		if ev.Protocol != auth0test.ProtocolOIDC {
			return // refresh, CIBA and MFA-API tokens carry no amr: no claims
		}
		var mfaAt time.Time // when the session performed MFA, if it did
		for _, m := range ev.Authentication {
			if m.Name == "mfa" && m.Timestamp.After(mfaAt) {
				mfaAt = m.Timestamp
			}
		}
		authTime := mfaAt
		if authTime.IsZero() {
			if !wantMFA {
				return // no MFA: nothing to copy; the API refuses such tokens
			}
			authTime = now() // the MFA this Action requests follows it
		}
		if wantMFA {
			api.SetAccessTokenClaim(namespace+"acr", stepup.ACRMultiFactor)
		}
		api.SetAccessTokenClaim(namespace+"amr", []string{"mfa"})
		api.SetAccessTokenClaim(namespace+"auth_time", authTime.Unix())
	}
}
