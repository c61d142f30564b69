package stepup

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/auth0/go-auth0/v3/authentication/mfa"
	"github.com/auth0/go-auth0/v3/management"
	"github.com/auth0/go-auth0/v3/management/option"
)

// ErrFactorNotFound: the authentication method is not one of the user's
// (an id from the browser that the user's listing does not return, or one
// the tenant no longer has). Nothing was changed.
var ErrFactorNotFound = errors.New("stepup: authentication method not found")

// ErrNoMFAToken: the session holds no usable access token for the MFA API
// (audience MFAAudience, scopes MFAScopes): send the user through a step-up
// for that audience first (see Factors.MFAAuthorizeOptions).
var ErrNoMFAToken = errors.New("stepup: the session holds no access token for the MFA API")

// EventSecurityChanged is the kind of the Event a Factors change emits; its
// Reason names the change: "factor_removed", "enrollment_ticket",
// "totp_enrolled", "recovery_code_regenerated", "browsers_forgotten",
// "always_mfa_on" or "always_mfa_off".
const EventSecurityChanged EventKind = "security_changed"

// MFAScopes are the MFA API scopes a self-service enrollment needs.
var MFAScopes = []string{"enroll", "read:authenticators", "remove:authenticators"}

// DefaultAlwaysMFAKey is the user_metadata key of the "always ask for MFA
// at sign-in" flag (FactorsConfig.AlwaysMFAKey).
const DefaultAlwaysMFAKey = "always_mfa"

// FactorsConfig configures Client.Factors. Zero values mean the defaults
// stated beside each field.
type FactorsConfig struct {
	// ClientID and ClientSecret are a separate machine-to-machine
	// application's, authorized for the Auth0 Management API. Default: the
	// Client's own application (with its authentication method), which must
	// then be authorized for the Management API itself. The scopes to grant:
	// read:users, update:users, read:authentication_methods,
	// delete:authentication_methods, create:guardian_enrollment_tickets.
	ClientID, ClientSecret string
	// TokenEndpointAuthMethod is the separate application's:
	// AuthClientSecretPost (default) or AuthClientSecretBasic.
	TokenEndpointAuthMethod string
	// ManagementAudience is the Management API's identifier. Default:
	// "https://{Domain}/api/v2/" (the tenant's canonical domain: set it when
	// Config.Domain is a custom domain).
	ManagementAudience string
	// RenewBefore renews the shared Management API token this long before
	// it expires. Default: 5 minutes.
	RenewBefore time.Duration
	// LeaseTTL bounds how long one replica may take to fetch the token
	// while the others wait for it. Default: 10 s.
	LeaseTTL time.Duration
	// AlwaysMFAKey is the user_metadata key of the "always ask for MFA"
	// flag, which the tenant's post-login Action reads. Default:
	// DefaultAlwaysMFAKey.
	AlwaysMFAKey string
}

// Factors is a user's own MFA settings, for a self-service security page:
// list and remove authentication methods, enroll a new one (Guardian
// enrollment ticket, or an authenticator app through the MFA API), make a
// new recovery code, forget remembered browsers, and the "always ask for
// MFA" flag. It goes through the Auth0 Management API with a
// client-credentials token shared by every replica (see Client.Factors).
//
// Every change takes the session and a policy and refuses with a
// *StepUpError unless the session satisfies it (Client.CheckSession): a
// defence behind the middleware that protects the page. Reads need a
// signed-in session only. A Factors is safe for concurrent use.
type Factors struct {
	c        *Client
	m        *mgmtAPI
	mfaAud   string
	alwaysMF string
}

// Factors returns the MFA self-service API of the Client's users. It does
// no I/O: the Management API token is fetched on first use.
func (c *Client) Factors(cfg FactorsConfig) (*Factors, error) {
	if (cfg.ClientID == "") != (cfg.ClientSecret == "") {
		return nil, fmt.Errorf("%w: FactorsConfig.ClientID and ClientSecret go together (a separate M2M application), or both stay empty (the Client's own application)", ErrInvalidConfig)
	}
	switch cfg.TokenEndpointAuthMethod {
	case "", AuthClientSecretPost, AuthClientSecretBasic:
	default:
		return nil, fmt.Errorf("%w: FactorsConfig.TokenEndpointAuthMethod %q: use client_secret_post or client_secret_basic", ErrInvalidConfig, cfg.TokenEndpointAuthMethod)
	}
	if cfg.ManagementAudience == "" {
		cfg.ManagementAudience = c.issuer + "api/v2/"
	}
	if u, err := url.Parse(cfg.ManagementAudience); err != nil || u.Scheme != "https" || u.Host == "" || !strings.HasSuffix(u.Path, "/api/v2/") {
		return nil, fmt.Errorf("%w: FactorsConfig.ManagementAudience %q must be https://{domain}/api/v2/", ErrInvalidConfig, cfg.ManagementAudience)
	}
	if cfg.RenewBefore <= 0 {
		cfg.RenewBefore = 5 * time.Minute
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if cfg.AlwaysMFAKey == "" {
		cfg.AlwaysMFAKey = DefaultAlwaysMFAKey
	}
	m, err := newMgmtAPI(c, &cfg)
	if err != nil {
		return nil, err
	}
	return &Factors{c: c, m: m, mfaAud: c.issuer + "mfa/", alwaysMF: cfg.AlwaysMFAKey}, nil
}

// Factor is one of a user's authentication methods, as the Management API
// lists them.
type Factor struct {
	ID string
	// Type is Auth0's: totp, push, phone, email, webauthn-roaming,
	// webauthn-platform, passkey, recovery-code, password...
	Type       string
	Name       string // e.g. "Authenticator app"; "" when the tenant gives none
	Confirmed  bool
	CreatedAt  time.Time
	LastAuthAt time.Time // zero when never used
}

// maxFactors bounds the listing: Auth0 users have a handful of methods.
const maxFactors = 100

func (f *Factors) signedIn(s *Session) error {
	if s == nil || s.Subject == "" || !isRandomToken(s.Handle) {
		return ErrNoSession
	}
	return nil
}

// change checks that s may make a change under p.
func (f *Factors) change(s *Session, p Policy) error {
	if err := f.signedIn(s); err != nil {
		return err
	}
	return f.c.CheckSession(s, p)
}

func (f *Factors) emit(ctx context.Context, s *Session, p Policy, what string) {
	f.c.emit(ctx, Event{Kind: EventSecurityChanged, Session: handlePrefix(s.Handle), Subject: s.Subject,
		SessionID: s.SessionID, Connection: s.Connection, Organization: s.OrgID, Policy: p.Name, Reason: what})
}

// List returns the signed-in user's authentication methods (at most 100).
func (f *Factors) List(ctx context.Context, s *Session) ([]Factor, error) {
	if err := f.signedIn(s); err != nil {
		return nil, err
	}
	return f.list(ctx, s.Subject)
}

func (f *Factors) list(ctx context.Context, sub string) ([]Factor, error) {
	var out []Factor
	err := f.m.do(ctx, "GET /api/v2/users/{id}/authentication-methods", func(opt option.RequestOption) error {
		req := &management.ListUserAuthenticationMethodsRequestParameters{}
		page, per := 0, maxFactors
		req.SetPage(&page)
		req.SetPerPage(&per)
		res, err := f.m.api.Users.AuthenticationMethods.List(ctx, sub, req, opt)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, am := range res.Results {
			if am == nil || len(out) == maxFactors {
				continue
			}
			fa := Factor{ID: am.ID, Type: string(am.Type), CreatedAt: am.CreatedAt}
			if am.Name != nil {
				fa.Name = *am.Name
			}
			if am.Confirmed != nil {
				fa.Confirmed = *am.Confirmed
			}
			if am.LastAuthAt != nil {
				fa.LastAuthAt = *am.LastAuthAt
			}
			out = append(out, fa)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// validFactorID bounds an id from the browser before it is compared.
var validFactorID = regexp.MustCompile(`^[A-Za-z0-9|_:.\-]{1,128}$`)

// Remove deletes the user's authentication method id, after checking that
// the user's own listing has it: any other id (another user's, unknown,
// malformed) is ErrFactorNotFound and nothing is sent to delete it.
func (f *Factors) Remove(ctx context.Context, s *Session, p Policy, id string) error {
	if err := f.change(s, p); err != nil {
		return err
	}
	if !validFactorID.MatchString(id) {
		return ErrFactorNotFound
	}
	list, err := f.list(ctx, s.Subject)
	if err != nil {
		return err
	}
	found := false
	for _, fa := range list {
		if fa.ID == id {
			found = true
			break
		}
	}
	if !found {
		return ErrFactorNotFound
	}
	err = f.m.do(ctx, "DELETE /api/v2/users/{id}/authentication-methods/{method}", func(opt option.RequestOption) error {
		return f.m.api.Users.AuthenticationMethods.Delete(ctx, s.Subject, id, opt)
	})
	var me *ManagementError
	if errors.As(err, &me) && me.StatusCode == 404 {
		return fmt.Errorf("%w: %w", ErrFactorNotFound, err)
	}
	if err != nil {
		return err
	}
	f.emit(ctx, s, p, "factor_removed")
	return nil
}

// EnrollmentTicket creates a Guardian enrollment ticket for the user and
// returns its URL, where the browser enrolls a new factor on the tenant's
// hosted page. factor is Auth0's (e.g. "otp", "push-notification",
// "phone", "email", "webauthn-roaming"); "" lets the tenant offer its
// enabled factors.
func (f *Factors) EnrollmentTicket(ctx context.Context, s *Session, p Policy, factor string) (string, error) {
	if err := f.change(s, p); err != nil {
		return "", err
	}
	if len(factor) > 64 {
		return "", fmt.Errorf("stepup: enrollment factor %q is not one of Auth0's", boundUTF8(factor, 64))
	}
	var ticket string
	err := f.m.do(ctx, "POST /api/v2/guardian/enrollments/ticket", func(opt option.RequestOption) error {
		req := &management.CreateGuardianEnrollmentTicketRequestContent{UserID: s.Subject}
		if factor != "" {
			fe := management.GuardianEnrollmentFactorEnum(factor)
			req.SetFactor(&fe)
		}
		res, err := f.m.api.Guardian.Enrollments.CreateTicket(ctx, req, opt)
		if err != nil {
			return err
		}
		if res.TicketURL != nil {
			ticket = *res.TicketURL
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if u, perr := url.Parse(ticket); perr != nil || u.Scheme != "https" || u.Host == "" || len(ticket) > 2048 {
		return "", &ManagementError{Op: "POST /api/v2/guardian/enrollments/ticket", Err: errors.New("the answer has no https ticket_url")}
	}
	f.emit(ctx, s, p, "enrollment_ticket")
	return ticket, nil
}

// MFAAudience is the MFA API's audience, https://{domain}/mfa/.
func (f *Factors) MFAAudience() string { return f.mfaAud }

// MFAAuthorizeOptions are the options of the step-up that gives the session
// an access token for the MFA API (kept in its token record for
// MFAAudience), as StartTOTP and ConfirmTOTP need: audience MFAAudience,
// scopes MFAScopes, policy p.
func (f *Factors) MFAAuthorizeOptions(p Policy, returnTo string) AuthorizeOptions {
	return AuthorizeOptions{Audience: f.mfaAud, Scopes: append([]string(nil), MFAScopes...), Policy: p, ReturnTo: returnTo}
}

// TOTPEnrollment is an authenticator-app enrollment started with StartTOTP:
// show URI as a QR code (and Secret for manual entry), then confirm it with
// a code of the app (ConfirmTOTP). Neither is kept by stepup.
type TOTPEnrollment struct {
	Secret string
	URI    string // otpauth://totp/...
	// RecoveryCodes are set on the user's first enrollment: show them once.
	RecoveryCodes []string
}

func (f *Factors) mfaToken(ctx context.Context, s *Session) (string, error) {
	tok, err := f.c.Token(ctx, s, f.mfaAud)
	if errors.Is(err, ErrNoSession) {
		return "", ErrNoMFAToken
	}
	if err != nil {
		return "", err
	}
	if tok.AccessToken == "" || (!tok.Expiry.IsZero() && !f.c.now().Before(tok.Expiry)) {
		return "", fmt.Errorf("%w (it has expired)", ErrNoMFAToken)
	}
	return tok.AccessToken, nil
}

// StartTOTP associates a new authenticator app with the user through the
// MFA API (POST /mfa/associate), with the session's access token for
// MFAAudience (ErrNoMFAToken when it has none: step up with
// MFAAuthorizeOptions first).
func (f *Factors) StartTOTP(ctx context.Context, s *Session, p Policy) (*TOTPEnrollment, error) {
	if err := f.change(s, p); err != nil {
		return nil, err
	}
	tok, err := f.mfaToken(ctx, s)
	if err != nil {
		return nil, err
	}
	a, err := f.c.goAuth0(ctx)
	if err != nil {
		return nil, err
	}
	form := url.Values{}
	opts, err := f.c.goAuth0Form(form)
	if err != nil {
		return nil, err
	}
	req := mfa.AddAuthenticatorRequest{AuthenticatorTypes: []string{"otp"}}
	req.ClientID = f.c.cfg.ClientID
	if f.c.authMethod == AuthClientSecretPost {
		req.ClientSecret = f.c.cfg.ClientSecret
	}
	res, err := a.MFA.AddAuthenticator(ctx, tok, req, opts...)
	if err != nil {
		return nil, goAuth0Error("/mfa/associate", err)
	}
	if res.Secret == "" || len(res.Secret) > 256 || !strings.HasPrefix(res.BarcodeURI, "otpauth://") || len(res.BarcodeURI) > 2048 {
		return nil, &TenantError{Endpoint: "/mfa/associate", Err: errors.New("the answer has no otp secret and otpauth barcode_uri")}
	}
	e := &TOTPEnrollment{Secret: res.Secret, URI: res.BarcodeURI}
	for i, rc := range res.RecoveryCodes {
		if i < 4 && len(rc) <= 64 {
			e.RecoveryCodes = append(e.RecoveryCodes, rc)
		}
	}
	return e, nil
}

// validOTP bounds a one-time code from the browser.
var validOTP = regexp.MustCompile(`^[0-9]{6,8}$`)

// ConfirmTOTP confirms the enrollment StartTOTP began with a code of the
// new app (the mfa-otp grant with the session's MFA API token). A wrong
// code is a *TenantError with Code "invalid_grant".
func (f *Factors) ConfirmTOTP(ctx context.Context, s *Session, p Policy, code string) error {
	if err := f.change(s, p); err != nil {
		return err
	}
	code = strings.TrimSpace(code)
	if !validOTP.MatchString(code) {
		return &TenantError{Endpoint: "/oauth/token", StatusCode: 400, Code: "invalid_grant", Description: "a one-time code is 6 to 8 digits"}
	}
	tok, err := f.mfaToken(ctx, s)
	if err != nil {
		return err
	}
	form := url.Values{"grant_type": {"http://auth0.com/oauth/grant-type/mfa-otp"}, "mfa_token": {tok}, "otp": {code}}
	if _, _, err := f.c.postForm(ctx, "/oauth/token", f.c.tokenURL, form); err != nil {
		return err
	}
	f.emit(ctx, s, p, "totp_enrolled")
	return nil
}

// RegenerateRecoveryCode replaces the user's recovery code and returns the
// new one: show it to the user once. stepup neither logs nor stores it.
func (f *Factors) RegenerateRecoveryCode(ctx context.Context, s *Session, p Policy) (string, error) {
	if err := f.change(s, p); err != nil {
		return "", err
	}
	var code string
	err := f.m.do(ctx, "POST /api/v2/users/{id}/recovery-code-regeneration", func(opt option.RequestOption) error {
		res, err := f.m.api.Users.RegenerateRecoveryCode(ctx, s.Subject, opt)
		if err != nil {
			return err
		}
		if res.RecoveryCode != nil {
			code = *res.RecoveryCode
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if code == "" || len(code) > 64 {
		return "", &ManagementError{Op: "POST /api/v2/users/{id}/recovery-code-regeneration", Err: errors.New("the answer has no recovery_code")}
	}
	f.emit(ctx, s, p, "recovery_code_regenerated")
	return code, nil
}

// ForgetBrowsers invalidates the user's remembered browsers: the next
// login that needs MFA asks for it on every device.
func (f *Factors) ForgetBrowsers(ctx context.Context, s *Session, p Policy) error {
	if err := f.change(s, p); err != nil {
		return err
	}
	err := f.m.do(ctx, "POST /api/v2/users/{id}/multifactor/actions/invalidate-remember-browser", func(opt option.RequestOption) error {
		return f.m.api.Users.Multifactor.InvalidateRememberBrowser(ctx, s.Subject, opt)
	})
	if err != nil {
		return err
	}
	f.emit(ctx, s, p, "browsers_forgotten")
	return nil
}

// AlwaysMFA reports the user's "always ask for MFA at sign-in" flag
// (user_metadata[AlwaysMFAKey] == true).
func (f *Factors) AlwaysMFA(ctx context.Context, s *Session) (bool, error) {
	if err := f.signedIn(s); err != nil {
		return false, err
	}
	on := false
	err := f.m.do(ctx, "GET /api/v2/users/{id}", func(opt option.RequestOption) error {
		req := &management.GetUserRequestParameters{}
		fields, incl := "user_metadata", true
		req.SetFields(&fields)
		req.SetIncludeFields(&incl)
		u, err := f.m.api.Users.Get(ctx, s.Subject, req, opt)
		if err != nil {
			return err
		}
		if u.UserMetadata != nil {
			on, _ = (*u.UserMetadata)[f.alwaysMF].(bool)
		}
		return nil
	})
	return on, err
}

// SetAlwaysMFA sets (true) or removes (false) the user's "always ask for
// MFA" flag; the other user_metadata keys are left as they are.
func (f *Factors) SetAlwaysMFA(ctx context.Context, s *Session, p Policy, on bool) error {
	if err := f.change(s, p); err != nil {
		return err
	}
	err := f.m.do(ctx, "PATCH /api/v2/users/{id}", func(opt option.RequestOption) error {
		md := management.UserMetadata{f.alwaysMF: nil}
		if on {
			md[f.alwaysMF] = true
		}
		upd := &management.UpdateUserRequestContent{}
		upd.SetUserMetadata(&md)
		_, err := f.m.api.Users.Update(ctx, s.Subject, upd, opt)
		return err
	})
	if err != nil {
		return err
	}
	what := "always_mfa_off"
	if on {
		what = "always_mfa_on"
	}
	f.emit(ctx, s, p, what)
	return nil
}

// LogoutOtherSessions ends every session of s's user except s itself, as
// LogoutUser does ("sign out my other sessions"): records, token records,
// leases and out-of-band records, then the refresh tokens are revoked (best
// effort, also after a store failure part way). It returns how many it
// ended.
func (c *Client) LogoutOtherSessions(ctx context.Context, s *Session) (int, error) {
	if s == nil || s.Subject == "" || !isRandomToken(s.Handle) {
		return 0, ErrNoSession
	}
	sub := s.Subject
	n, err := c.logoutIndexedExcept(ctx, c.subIndexKey(sub), s.Handle, func(r *sessionRecord) bool { return r.Subject == sub })
	if n > 0 {
		c.emit(ctx, Event{Kind: EventLogout, Session: handlePrefix(s.Handle), Subject: sub, Reason: LogoutLocal, Sessions: n})
	}
	return n, err
}
