package main

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
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
// Its serving certificate is issued by ca, the demo CA a person trusts once.
// The tenant delivers back-channel logout tokens to bcl (every initiator:
// sign-out, password change, block, deletion...). It returns the tenant and
// the application's (random) client secret.
func startEmbeddedTenant(baseURL, audience, namespace string, ca *auth0test.CA, bcl *backChannelListener, log *slog.Logger, now func() time.Time) (*auth0test.Tenant, string, error) {
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
	app.BackChannelLogoutURLs = []string{bcl.url}
	app.BackChannelLogoutInitiators = auth0test.LogoutInitiators{Mode: "all"}
	app.ManagementScopes = auth0test.ManagementScopes // the security page's Management API calls
	tn, err := auth0test.Start(auth0test.Config{
		CA:           ca,
		Applications: []auth0test.Application{app},
		APIs:         []auth0test.API{{Identifier: audience, Scopes: []string{"read:employees"}}},
		Action:       newDemoActions(namespace, now),
		Logger:       log.With("component", "auth0test"),
		Now:          now,

		BackChannelLogoutCAs: bcl.pool, // the demo's own back-channel certificate
	})
	if err != nil {
		return nil, "", err
	}
	return tn, secret, nil
}

// newDemoActions returns the embedded tenant's post-login Action: the two
// Actions of the README's "Use your own tenant" (the documented step-up Action
// and the claims Action), as auth0test.ClaimsAction ships them.
// The user_metadata flag "always_mfa" (the security page's "always ask for
// MFA at sign-in") makes every interactive sign-in ask for MFA, as the
// README's Action does.
func newDemoActions(namespace string, now func() time.Time) auth0test.ActionFunc {
	claims := auth0test.ClaimsAction(namespace, now)
	return func(ev *auth0test.ActionEvent, api *auth0test.ActionAPI) {
		claims(ev, api)
		if ev.Protocol == auth0test.ProtocolOIDC && ev.User.UserMetadata[stepup.DefaultAlwaysMFAKey] == true {
			api.RequireMFA()
		}
	}
}
