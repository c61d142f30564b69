package stepup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/auth0/go-auth0/v3/authentication/ciba"
	"golang.org/x/oauth2"
)

// ErrInvalidBindingMessage: a CIBA binding message Auth0 would refuse.
var ErrInvalidBindingMessage = errors.New("stepup: invalid CIBA binding message")

// Limits of a CIBA request, as Auth0 sets them.
const (
	MaxBindingMessageLen = 64
	MaxCIBAExpiry        = 259200 * time.Second
	cibaDefaultInterval  = 5 * time.Second
	cibaSlowDownStep     = 5 * time.Second
)

// grantCIBA is the grant type of CIBA's token requests.
const grantCIBA = "urn:openid:params:grant-type:ciba"

// CheckBindingMessage reports whether Auth0 accepts msg as a CIBA binding
// message: 1 to 64 characters among A-Z a-z 0-9, space and + - _ . , : #.
// It is the text the user sees on their device, which they compare with the
// one the application shows, so keep it short and recognisable
// ("Export salaries 4711").
func CheckBindingMessage(msg string) error {
	if msg == "" {
		return fmt.Errorf("%w: it is required (the text the user compares on their device)", ErrInvalidBindingMessage)
	}
	if len(msg) > MaxBindingMessageLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidBindingMessage, len(msg), MaxBindingMessageLen)
	}
	for i := 0; i < len(msg); i++ {
		ch := msg[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case strings.IndexByte(" +-_.,:#", ch) >= 0:
		default:
			return fmt.Errorf("%w: character %q at %d is not allowed (use A-Z a-z 0-9, space and + - _ . , : #)", ErrInvalidBindingMessage, rune(ch), i)
		}
	}
	return nil
}

// CIBARequest describes a backchannel step-up (Client Initiated Backchannel
// Authentication): the tenant asks the user on their device (a Guardian
// push) and the Client polls for the answer.
type CIBARequest struct {
	// Policy is what the approval must satisfy. It is checked against the
	// ID token the tenant returns (acr, amr, auth_time), as adapted to the
	// session's connection; the step-up is recorded only if it is
	// satisfied. Auth0 documents no acr or amr for CIBA ID tokens, so a
	// policy that demands them is satisfied only by a tenant that sends them;
	// a freshness-only policy (MaxAge) is satisfied by any approval, whose
	// auth_time is the approval's time.
	Policy Policy
	// BindingMessage is shown on the user's device; required, see
	// CheckBindingMessage.
	BindingMessage string
	// Scopes are requested besides openid, which is always sent.
	Scopes []string
	// Audience is the API the access token is for. Default: none.
	Audience string
	// RequestedExpiry bounds the time the user has to answer, 1 s to 72 h,
	// in whole seconds. Default: the tenant's (Auth0: 300 s).
	RequestedExpiry time.Duration
	// Wait pauses between two polls. Default: a timer that honours ctx.
	// Tests give a function that moves their clock.
	Wait func(ctx context.Context, d time.Duration) error
}

// CIBAAuthorization is a started backchannel request; Client.WaitCIBA
// completes it.
type CIBAAuthorization struct {
	// AuthReqID is the tenant's id of the request.
	AuthReqID string
	// ExpiresAt is when the request expires (Client clock).
	ExpiresAt time.Time
	// Interval is the current polling interval; it grows with each
	// slow_down the tenant answers.
	Interval time.Duration

	handle  string
	subject string
	conn    string
	req     CIBARequest
}

// CIBAResult is an approved backchannel step-up.
type CIBAResult struct {
	// Session is the session. The step-up is recorded as its out-of-band
	// evidence (Client.OutOfBandStepUp), which SessionFor accepts and the
	// browser's RequireStepUp does not.
	Session *Session
	// IDToken is the verified ID token of the approval.
	IDToken *IDToken
	// Token is the access token issued with the approval (for
	// CIBARequest.Audience). It is not stored in the session.
	Token *oauth2.Token
}

// StepUpCIBA asks the user of session s to approve req on their device and
// waits for the answer: StartCIBA then WaitCIBA.
func (c *Client) StepUpCIBA(ctx context.Context, s *Session, req CIBARequest) (*CIBAResult, error) {
	a, err := c.StartCIBA(ctx, s, req)
	if err != nil {
		return nil, err
	}
	return c.WaitCIBA(ctx, a)
}

// StartCIBA starts a backchannel step-up for the user of session s: it
// posts to the tenant's /bc-authorize, through go-auth0, with the user's
// login_hint in Auth0's iss_sub format, the binding message (checked first)
// and the requested expiry.
func (c *Client) StartCIBA(ctx context.Context, s *Session, req CIBARequest) (*CIBAAuthorization, error) {
	if s == nil || s.Subject == "" || !isRandomToken(s.Handle) {
		return nil, ErrNoSession
	}
	if err := CheckBindingMessage(req.BindingMessage); err != nil {
		return nil, err
	}
	form := url.Values{
		"scope":           {strings.Join(scopeList(req.Scopes, nil), " ")},
		"binding_message": {req.BindingMessage},
	}
	hint, err := json.Marshal(map[string]string{"format": "iss_sub", "iss": c.issuer, "sub": s.Subject})
	if err != nil {
		return nil, err
	}
	form.Set("login_hint", string(hint))
	if req.Audience != "" {
		form.Set("audience", req.Audience)
	}
	if req.RequestedExpiry != 0 {
		if req.RequestedExpiry < time.Second || req.RequestedExpiry > MaxCIBAExpiry {
			return nil, fmt.Errorf("%w: CIBA RequestedExpiry %s must be between 1s and %s", ErrInvalidConfig, req.RequestedExpiry, MaxCIBAExpiry)
		}
		form.Set("requested_expiry", strconv.FormatInt(int64(req.RequestedExpiry/time.Second), 10))
	}
	a0, err := c.goAuth0(ctx)
	if err != nil {
		return nil, err
	}
	opts, err := c.goAuth0Form(form)
	if err != nil {
		return nil, err
	}
	var resp ciba.Response
	started := c.now()
	if err := a0.Request(ctx, "POST", a0.URI("bc-authorize"), form, &resp, opts...); err != nil {
		return nil, goAuth0Error("/bc-authorize", err)
	}
	if resp.AuthReqID == "" || resp.ExpiresIn <= 0 {
		return nil, &TenantError{Endpoint: "/bc-authorize", StatusCode: 200, Err: errors.New("answer without auth_req_id or expires_in")}
	}
	a := &CIBAAuthorization{
		AuthReqID: resp.AuthReqID,
		ExpiresAt: started.Add(time.Duration(resp.ExpiresIn) * time.Second),
		Interval:  time.Duration(resp.Interval) * time.Second,
		handle:    s.Handle,
		subject:   s.Subject,
		conn:      s.Connection,
		req:       req,
	}
	a.req.Policy = clonePolicy(req.Policy)
	if a.Interval <= 0 {
		a.Interval = cibaDefaultInterval
	}
	c.emit(ctx, Event{Kind: EventCIBAStarted, Session: handlePrefix(s.Handle), Subject: s.Subject, SessionID: s.SessionID,
		Connection: s.Connection, Organization: s.OrgID, Policy: req.Policy.Name, Audience: req.Audience})
	return a, nil
}

// WaitCIBA polls the tenant for the answer to a: every Interval, growing
// by 5 s at each slow_down, until the user approves or denies, the request
// expires, or ctx ends. An approval's ID token is verified (it must be the
// session's user) and checked against the request's policy; only then is
// the step-up recorded, as the session's out-of-band evidence: it counts for
// jobs (SessionFor), never for the browser, whose cookie an out-of-band
// step-up does not rotate (see Client.SessionFor). Errors: ErrStepUpDenied,
// ErrStepUpExpired, *StepUpError with ReasonNotPerformed (approved, but the
// ID token does not satisfy the policy: nothing recorded), ErrNoSession
// (the session ended meanwhile), *TenantError, ctx's error.
func (c *Client) WaitCIBA(ctx context.Context, a *CIBAAuthorization) (*CIBAResult, error) {
	wait := a.req.Wait
	if wait == nil {
		wait = sleepCtx
	}
	a0, err := c.goAuth0(ctx)
	if err != nil {
		return nil, err
	}
	for {
		if err := wait(ctx, a.Interval); err != nil {
			return nil, err
		}
		form := url.Values{"grant_type": {grantCIBA}, "auth_req_id": {a.AuthReqID}}
		opts, err := c.goAuth0Form(form)
		if err != nil {
			return nil, err
		}
		var body json.RawMessage
		err = a0.Request(ctx, "POST", a0.URI("oauth", "token"), form, &body, opts...)
		if err == nil {
			return c.finishCIBA(ctx, a, body)
		}
		err = goAuth0Error("/oauth/token", err)
		var te *TenantError
		if !errors.As(err, &te) || te.Err != nil {
			return nil, err
		}
		if err = c.cibaOutcome(ctx, a, te, err, !c.now().Before(a.ExpiresAt)); err != nil {
			return nil, err
		}
	}
}

// cibaOutcome is WaitCIBA's answer to the tenant's error te: nil to poll
// again, or the error to return (emitting EventCIBADenied or
// EventCIBAExpired).
func (c *Client) cibaOutcome(ctx context.Context, a *CIBAAuthorization, te *TenantError, err error, expired bool) error {
	err = cibaError(a, te, err, expired)
	if err == nil {
		return nil
	}
	ev := Event{Session: handlePrefix(a.handle), Subject: a.subject, Connection: a.conn, Policy: a.req.Policy.Name,
		Audience: a.req.Audience, Reason: te.Code}
	switch {
	case errors.Is(err, ErrStepUpDenied):
		ev.Kind = EventCIBADenied
	case errors.Is(err, ErrStepUpExpired):
		ev.Kind = EventCIBAExpired
	default:
		return err
	}
	c.emit(ctx, ev)
	return err
}

// cibaError maps the tenant's answer te (err as returned) to a poll: nil
// while pending (slow_down lengthens the interval).
func cibaError(a *CIBAAuthorization, te *TenantError, err error, expired bool) error {
	{
		switch te.Code {
		case "authorization_pending":
			if expired {
				return fmt.Errorf("%w: %w", ErrStepUpExpired, te)
			}
		case "slow_down":
			a.Interval += cibaSlowDownStep
		case "access_denied":
			if expired {
				return fmt.Errorf("%w: %w", ErrStepUpExpired, te)
			}
			return fmt.Errorf("%w: %w", ErrStepUpDenied, te)
		case "expired_token":
			return fmt.Errorf("%w: %w", ErrStepUpExpired, te)
		case "invalid_grant":
			if expired {
				return fmt.Errorf("%w: %w", ErrStepUpExpired, te)
			}
			return err
		default:
			return err
		}
	}
	return nil
}

func (c *Client) finishCIBA(ctx context.Context, a *CIBAAuthorization, body []byte) (*CIBAResult, error) {
	resp, err := parseTokenResponse(body)
	if err != nil {
		return nil, &TenantError{Endpoint: "/oauth/token", StatusCode: 200, Err: err}
	}
	if resp.IDToken == "" {
		return nil, ErrMissingIDToken
	}
	idt, err := c.idv.verify(ctx, resp.IDToken, idTokenCheck{})
	if err != nil {
		return nil, fmt.Errorf("stepup: CIBA ID token: %w", err)
	}
	if idt.Subject != a.subject {
		return nil, &TokenError{Kind: ErrTokenSubject, Claim: "sub", Detail: "CIBA ID token is for another user than the session"}
	}
	now := c.now()
	policy := c.PolicyFor(a.req.Policy, a.conn)
	if err := policy.Check(idt.Authentication(), now); err != nil {
		var se *StepUpError
		if !errors.As(err, &se) {
			return nil, err
		}
		return nil, &StepUpError{Policy: policy, Reason: ReasonNotPerformed, Cause: se.Reason, ACR: idt.ACR}
	}
	s, err := c.recordStepUp(ctx, a.handle, idt.Authentication(), "", nil)
	if err != nil {
		return nil, err
	}
	c.emit(ctx, Event{Kind: EventCIBAApproved, Session: handlePrefix(a.handle), Subject: a.subject, Connection: a.conn,
		SessionID: s.SessionID, Organization: s.OrgID, Policy: policy.Name, Audience: a.req.Audience,
		ACR: idt.ACR, AMR: idt.AMR, AuthTime: idt.AuthTime})
	res := &CIBAResult{Session: s, IDToken: idt}
	if resp.AccessToken != "" {
		res.Token = &oauth2.Token{AccessToken: resp.AccessToken, TokenType: resp.TokenType}
		if resp.ExpiresIn > 0 {
			res.Token.Expiry = now.Add(time.Duration(resp.ExpiresIn) * time.Second)
		}
	}
	return res, nil
}
