package auth0test

import (
	"slices"
	"time"
)

// ActionFunc is a post-login Action (Config.Action).
type ActionFunc func(ev *ActionEvent, api *ActionAPI)

// StepUpAction is Auth0's documented step-up Action
// (configure-step-up-authentication-for-web-apps): when acr_values asks for
// MFAACR it calls api.multifactor.enable('any', {allowRememberBrowser: false}),
// so the user is prompted for MFA each time.
func StepUpAction(ev *ActionEvent, api *ActionAPI) {
	if slices.Contains(ev.ACRValues, MFAACR) {
		api.RequireMFA()
	}
}

// Claim names ClaimsAction sets under its namespace.
const (
	ClaimACR      = "acr"
	ClaimAMR      = "amr"
	ClaimAuthTime = "auth_time"
)

// ClaimsAction returns the post-login Action that makes access tokens carry a
// session's step-up evidence. Auth0 puts no acr, amr or auth_time in access
// tokens and refuses them as custom claims, so the Action copies them under
// namespace (an https URL ending in "/", e.g. "https://stepup.example/"):
// namespace+"acr" (MFAACR when the login asked for it), namespace+"amr"
// (["mfa"]) and namespace+"auth_time" (UNIX seconds of the MFA), where an
// API's verifier (stepup's Config.ClaimNamespace) reads them.
//
// It includes StepUpAction: a login whose acr_values ask for MFAACR is
// prompted for MFA (each time: allowRememberBrowser false), and since an
// Action runs before the MFA it requests and the tokens are issued only once
// that MFA succeeded, the time copied is the time the Action ran (never
// later than the MFA). A login that does not ask for MFA in a session that
// already performed it copies that MFA's time from event.authentication.methods
// (ActionEvent.Authentication). Refresh-token, CIBA and MFA-API grants get no
// claims (Auth0 sends no amr there either). now is the clock (nil: time.Now);
// give it the tenant's Config.Now when the test moves a clock.
//
// This is the Go twin of the JavaScript Action of the README's "Use your own
// tenant".
func ClaimsAction(namespace string, now func() time.Time) ActionFunc {
	if now == nil {
		now = time.Now
	}
	return func(ev *ActionEvent, api *ActionAPI) {
		StepUpAction(ev, api)
		wantMFA := slices.Contains(ev.ACRValues, MFAACR)
		if ev.Protocol != ProtocolOIDC {
			return
		}
		var authTime time.Time
		if wantMFA {
			authTime = now() // the MFA this Action requests follows
		} else {
			for _, m := range ev.Authentication {
				if m.Name == "mfa" && m.Timestamp.After(authTime) {
					authTime = m.Timestamp
				}
			}
			if authTime.IsZero() {
				return // no MFA: nothing to copy; an API demanding MFA refuses the token
			}
		}
		if wantMFA {
			api.SetAccessTokenClaim(namespace+ClaimACR, MFAACR)
		}
		api.SetAccessTokenClaim(namespace+ClaimAMR, []string{"mfa"})
		api.SetAccessTokenClaim(namespace+ClaimAuthTime, authTime.Unix())
	}
}
