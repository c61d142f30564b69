package stepup

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// ErrInvalidCallback: the callback's query is not an authorization response
// (no state, or neither code nor error).
var ErrInvalidCallback = errors.New("stepup: invalid callback")

// LoginResult is the result of a successful Exchange: a verified ID token whose
// authentication satisfies the requested policy, and the tokens.
type LoginResult struct {
	// IDToken is the verified ID token.
	IDToken *IDToken
	// Token holds the access token (for Audience) and the refresh token, if
	// any. Its Expiry is computed with the Client's clock.
	Token *oauth2.Token
	// Policy is the policy the login satisfied: the one sent to the tenant
	// (AuthorizeRequest.Policy), or, when the user picked the connection at
	// Auth0's chooser (or the one requested is inconsistent with the ID
	// token's sub) and the login fell short of that, the sub's connection's
	// (Client.PolicyFor) that it satisfied instead.
	Policy Policy
	// Connection is the connection requested, "" when the user chose. The
	// browser controls it: it is not evidence of the connection used (a
	// session's policy follows IDToken.Subject; see Session.Connection).
	Connection string
	// Audience is the access token's audience ("" when none was requested).
	Audience string
	// Organization is the organization the login was sent for (an id
	// "org_..." or a name; "" for none), which the ID token matched (see
	// Config.Organization). The token's own org_id is IDToken.OrgID.
	Organization string
	// ReturnTo is the local path to send the browser to.
	ReturnTo string
	// Silent reports a prompt=none login: its tokens are not evidence of an
	// interactive authentication and never change a session's step-up.
	Silent bool
	// At is when the exchange completed.
	At time.Time
}

// Bounds of what a callback carries before it is used: Auth0's codes are
// ~40 characters; an error's code and description are shown on the error
// page and logged, so both are cut where the AuthorizeError is built and
// the page and the log say the same.
const (
	maxCallbackCode        = 512
	maxAuthorizeErrorCode  = 64
	maxAuthorizeErrorDescr = 400
)

// truncateUTF8 cuts s to at most n bytes without splitting a character, and
// marks the cut.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Exchange completes an authorization from the callback's query parameters
// and transaction, the value of the browser's transaction cookie for the
// callback's state (the cookie named Client.TransactionCookieName(state);
// "" when the browser sent none). CallbackHandler does all of this; a
// hand-written callback reads that cookie, calls Exchange, and expires the
// cookie with Client.ClearTransactionCookie.
//
// First, before anything is written or consumed, it opens the transaction
// for the state: no cookie (the callback reached another browser, or the
// transaction expired) is ErrTransactionNotFound, a cookie that is not this
// state's is ErrStateMismatch; a foreign browser that learnt the state thus
// cancels nothing. It then checks the transaction's expiry and issuer and iss
// (RFC 9207; ErrIssuerMismatch), turns error=... into *AuthorizeError (code
// and description cut to 64 and 400 bytes), and makes the callback single
// use with one Store SetNX of a small marker (kept for the transaction's
// remaining life): a replay, on any replica, is ErrTransactionNotFound, and
// of callbacks racing with one state and code exactly one goes on. It then
// redeems the code with the PKCE verifier (tenant errors are *TenantError;
// when the redemption failed before the tenant answered, or with a 429 or
// 5xx, the code may still be valid and the marker is deleted, so a reload
// of the callback can try again),
// demands an id_token (ErrMissingIDToken), verifies it (signature, iss, aud,
// azp, exp, iat, sub, nonce, auth_time against max_age: errors match
// ErrInvalidToken), and checks the login against the policy sent to the
// tenant (AuthorizeRequest.Policy; see LoginResult.Policy for the one
// exception): a step-up the tenant did not perform is a *StepUpError with
// Reason ReasonNotPerformed. A login sent for an organization must come
// back for it (ErrOrganizationMismatch, see Config.Organization). A refused
// or unperformed step-up is reported as EventStepUpRefused. A Client without
// Config.RedirectURL answers ErrInvalidConfig.
func (c *Client) Exchange(ctx context.Context, callback url.Values, transaction string) (*LoginResult, error) {
	login, _, err := c.exchange(ctx, callback, transaction)
	return login, err
}

// exchange is Exchange; spent reports that the transaction can no longer
// complete (the tenant redeemed its code, or it expired), so its cookie can
// go. A failure anyone could cause by sending the user's browser to the
// callback with the state (an error, a forged or replayed code) does not
// spend it: the user's own callback must still succeed.
func (c *Client) exchange(ctx context.Context, callback url.Values, transaction string) (_ *LoginResult, spent bool, _ error) {
	login, _, spent, err := c.exchangeTx(ctx, callback, transaction)
	return login, spent, err
}

// exchangeTx is exchange that also returns the opened transaction (nil when
// it did not open), for the callback's interactive retry of a silent login.
// It emits EventStepUpRefused when the tenant refused, or did not perform,
// a step-up the transaction asked for.
func (c *Client) exchangeTx(ctx context.Context, callback url.Values, transaction string) (_ *LoginResult, _ *txRecord, spent bool, _ error) {
	if err := c.canLogin(); err != nil {
		return nil, nil, false, err
	}
	var tx *txRecord
	login, spent, err := c.exchangeOpen(ctx, callback, transaction, &tx)
	if tx != nil && tx.Policy.RequiresStepUp() && !tx.Silent {
		var (
			ae *AuthorizeError
			se *StepUpError
		)
		reason := ""
		switch {
		case errors.As(err, &se):
			reason = string(se.Reason)
			if se.Cause != "" {
				reason += ": " + string(se.Cause)
			}
		case errors.As(err, &ae):
			reason = ae.Code
		}
		if reason != "" {
			c.emit(ctx, Event{Kind: EventStepUpRefused, Policy: tx.Policy.Name, Connection: tx.Connection,
				Organization: tx.Org, Audience: tx.Audience, Reason: reason})
		}
	}
	return login, tx, spent, err
}

// exchangeOpen is exchange; *txOut receives the transaction once it opened.
func (c *Client) exchangeOpen(ctx context.Context, callback url.Values, transaction string, txOut **txRecord) (_ *LoginResult, spent bool, _ error) {
	state := callback.Get("state")
	if state == "" {
		return nil, false, fmt.Errorf("%w: no state parameter", ErrInvalidCallback)
	}
	if !isRandomToken(state) {
		// Not a state this Client made: nothing to look up.
		return nil, false, fmt.Errorf("%w: malformed state", ErrTransactionNotFound)
	}
	if transaction == "" {
		return nil, false, fmt.Errorf("%w: the browser sent no transaction cookie for this state (the callback reached another browser, or the transaction expired)", ErrTransactionNotFound)
	}
	tx, err := c.openTx(state, transaction)
	if err != nil {
		return nil, false, err
	}
	*txOut = tx
	now := c.now()
	if now.Unix() >= tx.Expires {
		return nil, true, fmt.Errorf("%w: expired", ErrTransactionNotFound)
	}
	if tx.Issuer != c.issuer {
		return nil, true, fmt.Errorf("%w: the transaction was started for issuer %s", ErrIssuerMismatch, clip(tx.Issuer))
	}
	if iss, ok := callback["iss"]; ok {
		if len(iss) != 1 || iss[0] != c.issuer {
			return nil, false, fmt.Errorf("%w: got %s", ErrIssuerMismatch, clip(strings.Join(iss, ",")))
		}
	} else if c.cfg.RequireIssuerParameter {
		return nil, false, fmt.Errorf("%w: the callback has no iss parameter", ErrIssuerMismatch)
	}
	if code := callback.Get("error"); code != "" {
		// Not spent: anyone who learnt the state can send the browser here
		// with an error, and the user's own callback must still work.
		return nil, false, &AuthorizeError{Code: truncateUTF8(code, maxAuthorizeErrorCode),
			Description: truncateUTF8(callback.Get("error_description"), maxAuthorizeErrorDescr)}
	}
	code := callback.Get("code")
	if code == "" {
		return nil, false, fmt.Errorf("%w: neither code nor error", ErrInvalidCallback)
	}
	if len(code) > maxCallbackCode {
		return nil, false, fmt.Errorf("%w: a code of %d bytes (at most %d)", ErrInvalidCallback, len(code), maxCallbackCode)
	}

	// Single use: the marker names the state and the code, so a replay of
	// this callback fails everywhere, while a forged code sent to the
	// user's browser (by someone who learnt the state) spends only itself:
	// the tenant bound the real code to this transaction's PKCE challenge.
	key := c.usedKey(state, code)
	ttl := time.Unix(tx.Expires, 0).Sub(now)
	sctx, done := c.storeContext(ctx)
	fresh, err := c.store.SetNX(sctx, key, c.ring.sealRecord(key, []byte(strconv.FormatInt(tx.Expires, 10))), max(ttl, time.Second))
	if err = done(err); err != nil {
		return nil, false, fmt.Errorf("stepup: marking the authorization transaction used: %w", err)
	}
	if !fresh {
		// Not spent either: the replay may be a forged one sent to the
		// user's browser; a used real code already cleared the cookie.
		return nil, false, fmt.Errorf("%w: this callback was already used", ErrTransactionNotFound)
	}

	tok, err := c.redeemCode(ctx, code, tx.verifier(), now)
	if err != nil {
		if redemptionRetryable(err) {
			c.releaseUsedMarker(ctx, key)
		}
		return nil, false, err
	}
	// The tenant redeemed the code it issued for this transaction: nothing
	// more can complete it.
	spent = true
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, spent, ErrMissingIDToken
	}
	check := idTokenCheck{Nonce: tx.nonce()}
	if tx.MaxAge >= 0 {
		check.MaxAge, check.CheckMaxAge = time.Duration(tx.MaxAge)*time.Second, true
	}
	// The code is spent: a fetch of the tenant's keys for the ID token must
	// not be cut off by the caller's cancellation (the login would be lost);
	// the HTTP client's timeout bounds it, and DefaultHTTPTimeout in any case.
	vctx, cancel := detachedTimeout(ctx, DefaultHTTPTimeout)
	defer cancel()
	idt, err := c.idv.verify(vctx, raw, check)
	if err != nil {
		return nil, spent, err
	}

	// The organization sent, checked as Auth0's SDKs do, before the policy:
	// a login for another organization is refused whatever its strength.
	if tx.Org != "" {
		if err := checkOrganization(tx.Org, idt, orgNameOf(idt)); err != nil {
			return nil, spent, err
		}
	}

	login := &LoginResult{
		IDToken:      idt,
		Token:        tok,
		Policy:       tx.Policy,
		Connection:   tx.Connection,
		Audience:     tx.Audience,
		Organization: tx.Org,
		ReturnTo:     tx.ReturnTo,
		Silent:       tx.Silent,
		At:           now,
	}
	// The login must satisfy the policy that was sent: its acr_values and
	// max_age went to the tenant (AuthorizeURL already adapted it to a
	// requested connection), so an API's RFC 9470 challenge, sent with its
	// exact acr_values, is checked against those, whatever
	// Config.ConnectionPolicies says. When no connection was requested, the
	// user picked one at Auth0's chooser and the policy could not be adapted
	// to it beforehand (likewise when the one requested is inconsistent with
	// the sub: the browser controls the request and logged in elsewhere): a
	// login that satisfies the policy of the connection sub names
	// (PolicyFor: the app's own statement of what a step-up is there, e.g.
	// an enterprise IdP's acr) is accepted too. The pages check their own
	// policy, adapted to the session's connection, at every request.
	auth := idt.Authentication()
	policy := tx.Policy
	if err := policy.Check(auth, now); err != nil {
		var se *StepUpError
		if !errors.As(err, &se) {
			return nil, spent, err
		}
		alt := c.PolicyFor(tx.Policy, connectionKey(c.cfg.ConnectionPolicies, idt.Subject))
		if connectionConsistent(tx.Connection, idt.Subject) || alt.Check(auth, now) != nil {
			// Asking again would loop: the tenant was asked and did not do it.
			return nil, spent, &StepUpError{Policy: policy, Reason: ReasonNotPerformed, Cause: se.Reason, ACR: idt.ACR}
		}
		policy = alt
	}
	login.Policy = policy
	return login, spent, nil
}

// redemptionRetryable reports whether a failed redemption may have left the
// code valid: the request failed before the tenant answered (transport
// error, timeout, cancellation), or the tenant answered 429 or 5xx. Any other
// answer (invalid_grant and other 4xx, or a 200 whose body did not parse:
// the code was redeemed) spends the code, and the marker must stay.
func redemptionRetryable(err error) bool {
	var te *TenantError
	if !errors.As(err, &te) {
		return true // failed before any request (client authentication)
	}
	switch {
	case te.StatusCode == 0:
		return true
	case te.StatusCode == http.StatusTooManyRequests, te.StatusCode >= 500:
		return true
	}
	return false
}

// releaseUsedMarker deletes a callback's single-use marker after a
// redemption that may have left the code valid, so that a reload of the
// same callback can redeem it (the tenant still redeems a code only once,
// so a race of reloads gives at most one login). Best effort: bounded by
// StoreTimeout and detached from ctx (the caller may have given up, as in a
// timeout), a failure leaves the marker and the reload says "already used",
// as before.
func (c *Client) releaseUsedMarker(ctx context.Context, key string) {
	budget := c.cfg.StoreTimeout
	if budget <= 0 {
		budget = detachedStoreTimeout
	}
	dctx, cancel := detachedTimeout(ctx, storeAttemptTimeout(budget))
	defer cancel()
	sctx, done := c.storeContext(dctx)
	if err := done(c.store.Delete(sctx, key)); err != nil {
		c.log.Warn("stepup: could not release a callback's single-use marker after a failed redemption", "err", err)
	}
}

// usedKey names the single-use marker of a callback: a hash of its state and
// code (neither is stored).
func (c *Client) usedKey(state, code string) string {
	return c.cfg.KeyPrefix + "used:" + shortHash("used callback", state+"\x00"+code)
}

// enterpriseStrategies are the providers whose user ids name their
// connection: "<strategy>|<connection>|<id>". "oauth2" (a custom social
// connection) has the same shape.
var enterpriseStrategies = map[string]bool{
	"ad": true, "adfs": true, "auth0-oidc": true, "google-apps": true, "ip": true, "oauth2": true,
	"office365": true, "oidc": true, "okta": true, "pingfederate": true, "samlp": true,
	"sharepoint": true, "waad": true,
}

// socialConnections are connection names that are not database connections:
// Auth0's social and passwordless strategies, whose connections are named
// after them by default. A requested connection among them (or among
// enterpriseStrategies) is inconsistent with a database user id.
var socialConnections = map[string]bool{
	"amazon": true, "apple": true, "baidu": true, "bitbucket": true, "box": true, "dropbox": true,
	"dwolla": true, "email": true, "evernote": true, "exact": true, "facebook": true, "fitbit": true,
	"github": true, "google-oauth2": true, "instagram": true, "line": true, "linkedin": true,
	"miicard": true, "paypal": true, "planningcenter": true, "renren": true, "salesforce": true,
	"shopify": true, "sms": true, "soundcloud": true, "thirtysevensignals": true, "twitter": true,
	"vkontakte": true, "weibo": true, "windowslive": true, "wordpress": true, "yahoo": true,
	"yandex": true,
}

// subjectConnection splits an Auth0 user id (the ID token's sub, which the
// tenant signed) into the connection it names, if any, and its provider:
//
//   - "<strategy>|<connection>|<id>" with strategy in enterpriseStrategies
//     (e.g. "samlp|fabrikam-saml|jane"): connection and strategy; the id may
//     hold more "|". With only two segments ("google-apps|jane@corp"), the
//     strategy alone, like a social provider.
//   - "<provider>|<id>" (database "auth0|...", social "google-oauth2|...",
//     passwordless "email|..."): provider only; an id holding "|" changes
//     nothing.
//
// An id with no "|", or an empty provider, connection or id segment, names
// nothing: ("", "").
func subjectConnection(sub string) (connection, provider string) {
	provider, rest, ok := strings.Cut(sub, "|")
	if !ok || provider == "" || rest == "" {
		return "", ""
	}
	if !enterpriseStrategies[provider] {
		return "", provider
	}
	conn, id, ok := strings.Cut(rest, "|")
	if !ok {
		return "", provider
	}
	if conn == "" || id == "" {
		return "", ""
	}
	return conn, provider
}

// connectionKey is the key of Config.ConnectionPolicies a session with user
// id sub answers to, derived from sub alone (never from the connection the
// browser asked for): an enterprise user's connection name, or, when
// policies has no entry for it, its strategy; any other user's provider
// ("auth0" for every database connection, "google-oauth2", "github", ...);
// "" for an id that names neither (no policy of its own).
func connectionKey(policies map[string]Policy, sub string) string {
	conn, provider := subjectConnection(sub)
	if conn == "" {
		return provider
	}
	if _, ok := policies[conn]; !ok {
		if _, ok := policies[provider]; ok {
			return provider
		}
	}
	return conn
}

// connectionConsistent reports whether a requested connection agrees with
// the user id sub the tenant signed: an enterprise id's connection name; a
// social or passwordless id's provider name; for a database id ("auth0|",
// which does not say which database), any name that is not a social,
// passwordless or enterprise strategy name. Only a consistent request is
// sent again as a hint; none ever chooses the policy.
func connectionConsistent(requested, sub string) bool {
	if requested == "" {
		return false
	}
	conn, provider := subjectConnection(sub)
	switch {
	case conn != "":
		return requested == conn
	case provider == "auth0":
		return requested != "auth0" && !socialConnections[requested] && !enterpriseStrategies[requested]
	default:
		return provider != "" && requested == provider
	}
}
