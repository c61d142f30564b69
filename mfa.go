package stepup

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/auth0/go-auth0/v3/authentication/mfa"
	"github.com/auth0/go-auth0/v3/authentication/oauth"
	"github.com/stepupauth/stepup/store"
	"golang.org/x/oauth2"
)

// Authenticator is a factor the user has enrolled, as the MFA API lists it.
type Authenticator struct {
	ID string
	// Type is "otp", "oob" (push, SMS...) or "recovery-code".
	Type string
	// OOBChannel is the channel of an oob authenticator ("auth0" for a
	// Guardian push, "sms"...).
	OOBChannel string
	Name       string
	Active     bool
}

// MFAAuthenticators lists the user's authenticators with the mfa_token of
// an mfa_required answer (MFARequiredError.MFAToken), through go-auth0.
func (c *Client) MFAAuthenticators(ctx context.Context, mfaToken string) ([]Authenticator, error) {
	a0, err := c.goAuth0(ctx)
	if err != nil {
		return nil, err
	}
	list, err := a0.MFA.ListAuthenticators(ctx, mfaToken)
	if err != nil {
		return nil, goAuth0Error("/mfa/authenticators", err)
	}
	out := make([]Authenticator, 0, len(list))
	for _, a := range list {
		out = append(out, Authenticator{ID: a.ID, Type: a.AuthenticatorType, OOBChannel: a.OOBChannel, Name: a.Name, Active: a.Active})
	}
	return out, nil
}

// MFAChallenge is the tenant's answer to a challenge request.
type MFAChallenge struct {
	// Type is "otp" (ask the user for the code of their app) or "oob" (a
	// push or message was sent: poll with OOBCode).
	Type string
	// OOBCode identifies an oob challenge; give it back in MFAProof.
	OOBCode string
	// BindingMethod is "prompt" when the user must type a code they
	// received (MFAProof.BindingCode), "" otherwise.
	BindingMethod string
}

// ChallengeMFA asks the tenant to challenge the authenticator (an ID from
// MFAAuthenticators; "" lets the tenant choose) with challengeType "otp" or
// "oob", through go-auth0.
func (c *Client) ChallengeMFA(ctx context.Context, mfaToken, authenticatorID, challengeType string) (*MFAChallenge, error) {
	a0, err := c.goAuth0(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := a0.MFA.Challenge(ctx, mfa.ChallengeRequest{
		MFAToken: mfaToken, ChallengeType: challengeType, AuthenticatorID: authenticatorID,
	})
	if err != nil {
		return nil, goAuth0Error("/mfa/challenge", err)
	}
	return &MFAChallenge{Type: ch.ChallengeType, OOBCode: ch.OOBCode, BindingMethod: ch.BindingMethod}, nil
}

// MFAProof is the user's answer to an MFA challenge: exactly one of OTP,
// OOBCode (with BindingCode when the challenge asked for one) or
// RecoveryCode.
type MFAProof struct {
	OTP          string
	OOBCode      string
	BindingCode  string
	RecoveryCode string
	// PollInterval is the pause between polls of an oob challenge while the
	// user has not answered. Default: 5 s.
	PollInterval time.Duration
	// Wait pauses between polls. Default: a timer that honours ctx.
	Wait func(ctx context.Context, d time.Duration) error
}

// MFAResult is a completed MFA step-up.
type MFAResult struct {
	// Session is the session, with the new tokens stored for the
	// audience. The step-up is recorded as its out-of-band evidence
	// (Client.OutOfBandStepUp).
	Session *Session
	// Token is the new access token for the audience (its refresh token is
	// kept in the session only).
	Token *oauth2.Token
	// RecoveryCode is the user's new recovery code when RecoveryCode was
	// used (Auth0 replaces it): show it to the user.
	RecoveryCode string
}

// ErrMFATokenUnbound: CompleteMFA was given an mfa_token that no refresh of
// the session (and audience) named in the *MFARequiredError received, or
// whose binding has expired (after MFATokenLifetime).
var ErrMFATokenUnbound = errors.New("stepup: the mfa_token was not issued to this session")

// MFATokenLifetime is how long CompleteMFA accepts an mfa_token after the
// refresh that received it (Auth0's mfa_token lives 10 minutes).
const MFATokenLifetime = 10 * time.Minute

// mfaBindingName names the record that binds an mfa_token (by hash) to the
// session handle it was issued to, without Config.KeyPrefix (the member the
// session's index lists, so that a logout deletes it).
func mfaBindingName(handle, mfaToken string) string {
	return "mfa:" + handle + ":" + shortHash("mfa token", mfaToken)
}

func (c *Client) mfaBindingKey(handle, mfaToken string) string {
	return c.cfg.KeyPrefix + mfaBindingName(handle, mfaToken)
}

// bindMFAToken records that mfaToken was issued to the refresh of handle's
// tokens for audience. The record, sealed and bound to its key, holds the
// audience's key only.
func (c *Client) bindMFAToken(ctx context.Context, handle, audience, mfaToken string) error {
	if err := c.store.IndexAdd(ctx, c.handleIndexKey(handle), mfaBindingName(handle, mfaToken), MFATokenLifetime); err != nil {
		return fmt.Errorf("stepup: recording the mfa_token of a refresh: %w", err)
	}
	key := c.mfaBindingKey(handle, mfaToken)
	if err := c.store.Set(ctx, key, c.ring.sealRecord(key, []byte(audienceKey(audience))), MFATokenLifetime); err != nil {
		return fmt.Errorf("stepup: recording the mfa_token of a refresh: %w", err)
	}
	return nil
}

// checkMFABinding returns nil when e.MFAToken was issued to a refresh of
// e.Handle's tokens for e.Audience. A binding that does not open (written
// without the Client's keys, or moved) is absent.
func (c *Client) checkMFABinding(ctx context.Context, e *MFARequiredError) error {
	data, err := c.getRecord(ctx, kindMFA, c.mfaBindingKey(e.Handle, e.MFAToken), 0)
	if errors.Is(err, store.ErrNotFound) {
		return ErrMFATokenUnbound
	}
	if err != nil {
		return fmt.Errorf("stepup: reading the mfa_token's binding: %w", err)
	}
	if subtle.ConstantTimeCompare(data, []byte(audienceKey(e.Audience))) != 1 {
		return fmt.Errorf("%w: it was issued for another audience", ErrMFATokenUnbound)
	}
	return nil
}

// CompleteMFA verifies the user's proof for the mfa_required of e through
// go-auth0 (the mfa-otp, mfa-oob or mfa-recovery-code grant; an oob
// challenge is polled while authorization_pending, until ctx ends), verifies
// the ID token (it must be the session's user), stores the new tokens in
// the session for e.Audience, and records the step-up as the session's
// out-of-band evidence: it counts for jobs (SessionFor), never for the
// browser's RequireStepUp, whose cookie an out-of-band step-up does not
// rotate (see Client.SessionFor).
//
// The tenant answers only after it has verified the second factor, so the
// evidence recorded is multi-factor: acr ACRMultiFactor, amr ["mfa"], and
// the ID token's auth_time (or the Client's clock when it has none). Auth0
// itself puts no amr in tokens from the MFA API.
//
// It fails closed: e.MFAToken must be one that a refresh of e.Handle's
// tokens for e.Audience received (the TokenSource records a hash of it,
// for MFATokenLifetime), else ErrMFATokenUnbound, before the tenant is
// called; and the tenant's answer must carry an ID token of the session's
// user, else ErrMissingIDToken or a *TokenError, and nothing is recorded.
//
// Errors: ErrStepUpDenied (push refused), *TenantError (e.g. invalid_grant
// for a wrong code, expired_token), ErrMFATokenUnbound, ErrMissingIDToken,
// ErrInvalidToken, ErrNoSession, ctx's.
func (c *Client) CompleteMFA(ctx context.Context, e *MFARequiredError, proof MFAProof) (*MFAResult, error) {
	if e == nil || e.MFAToken == "" {
		return nil, errors.New("stepup: CompleteMFA needs the *MFARequiredError of a refresh")
	}
	s, err := c.Session(ctx, e.Handle)
	if err != nil {
		return nil, err
	}
	if err := c.checkMFABinding(ctx, e); err != nil {
		return nil, err
	}
	a0, err := c.goAuth0(ctx)
	if err != nil {
		return nil, err
	}
	var ts *oauth.TokenSet
	var recovery string
	switch {
	case proof.OTP != "":
		ts, err = a0.MFA.VerifyWithOTP(ctx, mfa.VerifyWithOTPRequest{MFAToken: e.MFAToken, OTP: proof.OTP})
	case proof.RecoveryCode != "":
		var r *mfa.VerifyWithRecoveryCodeResponse
		if r, err = a0.MFA.VerifyWithRecoveryCode(ctx, mfa.VerifyWithRecoveryCodeRequest{MFAToken: e.MFAToken, RecoveryCode: proof.RecoveryCode}); err == nil {
			ts, recovery = &r.TokenSet, r.RecoveryCode
		}
	case proof.OOBCode != "":
		ts, err = c.pollOOB(ctx, e.MFAToken, proof)
	default:
		return nil, errors.New("stepup: MFAProof needs an OTP, an OOBCode or a RecoveryCode")
	}
	if err != nil {
		var de *denied
		if errors.As(err, &de) {
			return nil, fmt.Errorf("%w: %w", ErrStepUpDenied, de.te)
		}
		return nil, goAuth0Error("/oauth/token", err)
	}
	now := c.now()
	ev := Authentication{ACR: ACRMultiFactor, AMR: []string{AMRMultiFactor}, AuthTime: now}
	// Only an ID token ties the answer to the session's user: without one
	// the tokens could be anyone's.
	if ts.IDToken == "" {
		return nil, fmt.Errorf("stepup: MFA answer: %w", ErrMissingIDToken)
	}
	idt, err := c.idv.verify(ctx, ts.IDToken, idTokenCheck{})
	if err != nil {
		return nil, fmt.Errorf("stepup: MFA ID token: %w", err)
	}
	if idt.Subject != s.Subject {
		return nil, &TokenError{Kind: ErrTokenSubject, Claim: "sub", Detail: "MFA ID token is for another user than the session"}
	}
	if !idt.AuthTime.IsZero() {
		ev.AuthTime = idt.AuthTime
	}
	tok := &oauth2.Token{AccessToken: ts.AccessToken, TokenType: ts.TokenType, RefreshToken: ts.RefreshToken}
	if ts.ExpiresIn > 0 {
		tok.Expiry = now.Add(time.Duration(ts.ExpiresIn) * time.Second)
	}
	if ts.Scope != "" {
		tok = tok.WithExtra(map[string]any{"scope": ts.Scope})
	}
	s, err = c.recordStepUp(ctx, e.Handle, ev, e.Audience, tok)
	if err != nil {
		return nil, err
	}
	// The mfa_token has served (best effort: it expires anyway).
	if err := c.store.Delete(ctx, c.mfaBindingKey(e.Handle, e.MFAToken)); err != nil {
		c.log.WarnContext(ctx, "stepup: deleting a used mfa_token's binding", "error", err)
	}
	out := &oauth2.Token{AccessToken: tok.AccessToken, TokenType: tok.TokenType, Expiry: tok.Expiry}
	return &MFAResult{Session: s, Token: out, RecoveryCode: recovery}, nil
}

// denied marks an oob challenge the user refused.
type denied struct{ te *TenantError }

func (d *denied) Error() string { return d.te.Error() }

// pollOOB polls the mfa-oob grant while the user has not answered.
func (c *Client) pollOOB(ctx context.Context, mfaToken string, proof MFAProof) (*oauth.TokenSet, error) {
	a0, err := c.goAuth0(ctx)
	if err != nil {
		return nil, err
	}
	wait := proof.Wait
	if wait == nil {
		wait = sleepCtx
	}
	interval := proof.PollInterval
	if interval <= 0 {
		interval = cibaDefaultInterval
	}
	for {
		ts, err := a0.MFA.VerifyWithOOB(ctx, mfa.VerifyWithOOBRequest{MFAToken: mfaToken, OOBCode: proof.OOBCode, BindingCode: proof.BindingCode})
		if err == nil {
			return ts, nil
		}
		var te *TenantError
		if !errors.As(goAuth0Error("/oauth/token", err), &te) || te.Err != nil {
			return nil, err
		}
		switch te.Code {
		case "authorization_pending":
		case "slow_down":
			interval += cibaSlowDownStep
		case "access_denied":
			return nil, &denied{te: te}
		default:
			return nil, err
		}
		if err := wait(ctx, interval); err != nil {
			return nil, err
		}
	}
}
