package auth0test

import (
	"slices"
	"strconv"
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

// Refresh-token metadata keys ClaimsAction keeps the step-up in (the
// README's Action uses the same).
const (
	MetadataMFAAt = "stepup_mfa_at" // UNIX seconds of the step-up, decimal
	MetadataACR   = "stepup_acr"    // "1" when it was the multi-factor class
)

// ClaimsAction returns the post-login Action that makes access tokens carry a
// session's step-up evidence: the Go twin of the JavaScript Action of the
// README's "The post-login Action", branch for branch. Auth0 puts no acr, amr
// or auth_time in access tokens and refuses them as custom claims, so the
// Action copies them under namespace (an https URL ending in "/", e.g.
// "https://stepup.example/"): namespace+"acr" (MFAACR when the step-up was
// the multi-factor class), namespace+"amr" (["mfa"]) and
// namespace+"auth_time" (UNIX seconds of the MFA), where an API's verifier
// (stepup's Config.ClaimNamespace) reads them. By flow:
//
//   - refresh-token exchange: what the refresh token's metadata keeps
//     (MetadataMFAAt, MetadataACR; ActionRefreshToken.Metadata), nothing
//     without it (Config.RefreshTokenMetadata off: the refreshed token
//     carries no step-up);
//   - CIBA: the approval, now, with the class (the push is approved on the
//     user's enrolled device);
//   - a login whose acr_values ask for MFAACR: StepUpAction (MFA each time:
//     allowRememberBrowser false), and since an Action runs before the MFA it
//     requests and the tokens are issued only once that MFA succeeded, the
//     time copied is the time the Action ran (never later than the MFA);
//   - any other login: the latest "mfa" of event.authentication.methods
//     (ActionEvent.Authentication), without the class;
//   - MFA-API grants: nothing (the README: "The MFA API's grants get no
//     claims from it").
//
// Whenever it copied a step-up it also keeps it in the refresh token's
// metadata (when api.refreshToken exists: ActionAPI.HasRefreshToken), so the
// refreshes of this login carry it. now is the clock (nil: time.Now); give
// it the tenant's Config.Now when the test moves a clock.
func ClaimsAction(namespace string, now func() time.Time) ActionFunc {
	if now == nil {
		now = time.Now
	}
	return func(ev *ActionEvent, api *ActionAPI) {
		var mfaAt int64 // UNIX seconds of the step-up this token carries (0: none)
		acr := false
		switch {
		case ev.Protocol == ProtocolMFA:
			return
		case ev.Protocol == ProtocolRefreshToken:
			var md map[string]string
			if ev.RefreshToken != nil {
				md = ev.RefreshToken.Metadata
			}
			if n, err := strconv.ParseInt(md[MetadataMFAAt], 10, 64); err == nil && n > 0 {
				mfaAt = n
			}
			acr = md[MetadataACR] == "1"
		case ev.Protocol == ProtocolCIBA:
			mfaAt, acr = now().Unix(), true
		case slices.Contains(ev.ACRValues, MFAACR):
			StepUpAction(ev, api)
			mfaAt, acr = now().Unix(), true
		default:
			for _, m := range ev.Authentication {
				if m.Name == "mfa" && m.Timestamp.Unix() > mfaAt {
					mfaAt = m.Timestamp.Unix()
				}
			}
		}
		if mfaAt <= 0 {
			return // no MFA: nothing to copy; an API demanding MFA refuses the token
		}
		if acr {
			api.SetAccessTokenClaim(namespace+ClaimACR, MFAACR)
		}
		api.SetAccessTokenClaim(namespace+ClaimAMR, []string{"mfa"})
		api.SetAccessTokenClaim(namespace+ClaimAuthTime, mfaAt)
		if api.HasRefreshToken() { // keep it for this login's refreshes
			api.SetRefreshTokenMetadata(MetadataMFAAt, strconv.FormatInt(mfaAt, 10))
			flag := "0"
			if acr {
				flag = "1"
			}
			api.SetRefreshTokenMetadata(MetadataACR, flag)
		}
	}
}
