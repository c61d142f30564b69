package auth0test

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const mfaTokenLifetime = 10 * time.Minute

// mfaGrant is the pending login an mfa_token stands for.
type mfaGrant struct {
	clientID string
	userID   string
	scopes   []string
	audience string
	expires  time.Time
}

type oobChallenge struct {
	mfaToken string
	userID   string
	created  time.Time
	status   string // pending, approved, denied
}

// OOBChallenge is a pending push (oob) challenge of the MFA API.
type OOBChallenge struct {
	OOBCode string
	UserID  string
}

// PendingOOB lists the push challenges waiting for the user's decision, oldest first.
func (t *Tenant) PendingOOB() []OOBChallenge {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	type item struct {
		c  OOBChallenge
		at time.Time
	}
	var items []item
	for code, ch := range t.oobChallenges {
		g, ok := t.mfaTokens[ch.mfaToken]
		if ch.status == "pending" && ok && !now.After(g.expires) {
			items = append(items, item{OOBChallenge{OOBCode: code, UserID: ch.userID}, ch.created})
		}
	}
	slices.SortFunc(items, func(a, b item) int { return a.at.Compare(b.at) })
	out := make([]OOBChallenge, len(items))
	for i, it := range items {
		out[i] = it.c
	}
	return out
}

// mfaRequired registers an mfa_token and returns Auth0's mfa_required error
// (without the token under Config.MFARequiredWithoutToken).
func (t *Tenant) mfaRequired(app *Application, user *User, scopes []string, audience string) *oauthError {
	e := newErr(http.StatusForbidden, "mfa_required", "Multifactor authentication required")
	if t.cfg.MFARequiredWithoutToken {
		return e
	}
	tok := t.newMFAToken(app.ClientID, user.ID, scopes, audience)
	reqs := map[string]any{"challenge": []any{map[string]any{"type": "otp"}}}
	if user.TOTPSecret == "" {
		reqs = map[string]any{"enroll": []any{map[string]any{"type": "otp"}}}
	}
	e.extra = map[string]any{"mfa_token": tok, "mfa_requirements": reqs}
	return e
}

func (t *Tenant) newMFAToken(clientID, userID string, scopes []string, audience string) string {
	tok := "mfa." + randomToken(32)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mfaTokens[tok] = &mfaGrant{clientID: clientID, userID: userID, scopes: slices.Clone(scopes),
		audience: audience, expires: t.cfg.Now().Add(mfaTokenLifetime)}
	return tok
}

// NewMFAToken returns an mfa_token for the user with that email, as if a grant of
// clientID had answered mfa_required, so that a test can drive the MFA API
// (/mfa/authenticators, /mfa/challenge and the mfa-* grants) directly.
func (t *Tenant) NewMFAToken(clientID, email, scope, audience string) (string, error) {
	t.mu.Lock()
	u := t.userByEmailLocked(email, "")
	_, appOK := t.apps[clientID]
	var id string
	if u != nil {
		id = u.ID
	}
	t.mu.Unlock()
	if u == nil {
		return "", errors.New("auth0test: no user " + email)
	}
	if !appOK {
		return "", errors.New("auth0test: no application " + clientID)
	}
	return t.newMFAToken(clientID, id, strings.Fields(scope), audience), nil
}

// lookupMFAToken returns a copy of the grant, or Auth0's error.
func (t *Tenant) lookupMFAToken(tok, clientID string) (mfaGrant, *oauthError) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.mfaTokens[tok]
	if !ok || (clientID != "" && g.clientID != clientID) {
		return mfaGrant{}, newErr(http.StatusForbidden, "invalid_grant", "Malformed mfa_token")
	}
	if t.cfg.Now().After(g.expires) {
		return mfaGrant{}, newErr(http.StatusForbidden, "expired_token", "mfa_token is expired")
	}
	return *g, nil
}

func (t *Tenant) grantMFA(app *Application, grant string, form url.Values) (map[string]any, *oauthError) {
	tok := form.Get("mfa_token")
	if tok == "" {
		return nil, invalidRequest("Missing required parameter: mfa_token")
	}
	g, oe := t.lookupMFAToken(tok, app.ClientID)
	if oe != nil && grant == GrantMFAOTP {
		// An enrollment made with an MFA-API access token is confirmed with that
		// token in mfa_token (auth0test's choice; Auth0 documents the mfa_token case).
		if eg, ok := t.enrollmentGrant(tok, app.ClientID); ok {
			g, oe = eg, nil
		}
	}
	if oe != nil {
		return nil, oe
	}
	user, ok := t.userByID(g.userID)
	if !ok {
		return nil, newErr(http.StatusForbidden, "invalid_grant", "Malformed mfa_token")
	}
	var newRecovery string
	switch grant {
	case GrantMFAOTP:
		otp := form.Get("otp")
		if otp == "" {
			return nil, invalidRequest("Missing required parameter: otp")
		}
		confirmed, err := t.confirmEnrollment(tok, g.userID, otp)
		if err != nil {
			return nil, err
		}
		if !confirmed && (user.TOTPSecret == "" || !checkTOTP(user.TOTPSecret, otp, t.cfg.Now())) {
			return nil, newErr(http.StatusForbidden, "invalid_grant", "Invalid otp_code.")
		}
		t.mu.Lock()
		t.otpUsedLocked(user.ID, t.cfg.Now())
		t.mu.Unlock()
	case GrantMFAOOB:
		code := form.Get("oob_code")
		if code == "" {
			return nil, invalidRequest("Missing required parameter: oob_code")
		}
		t.mu.Lock()
		ch, ok := t.oobChallenges[code]
		status := ""
		if ok && ch.mfaToken == tok {
			status = ch.status
			if status != "pending" {
				delete(t.oobChallenges, code)
			}
		}
		t.mu.Unlock()
		switch status {
		case "pending":
			return nil, newErr(http.StatusBadRequest, "authorization_pending", "Authorization pending: please repeat the request in a few seconds.")
		case "denied":
			return nil, newErr(http.StatusBadRequest, "access_denied", "MFA Authorization rejected.")
		case "approved":
		default:
			return nil, newErr(http.StatusForbidden, "invalid_grant", "Invalid oob_code.")
		}
	case GrantMFARecoveryCode:
		rc := form.Get("recovery_code")
		if rc == "" {
			return nil, invalidRequest("Missing required parameter: recovery_code")
		}
		t.mu.Lock()
		u := t.userByIDLocked(g.userID)
		ok := u != nil && u.RecoveryCode != "" && subtle.ConstantTimeCompare([]byte(u.RecoveryCode), []byte(strings.ToUpper(rc))) == 1
		if ok {
			newRecovery = newRecoveryCode()
			t.setRecoveryCodeLocked(u, newRecovery, t.cfg.Now())
		}
		t.mu.Unlock()
		if !ok {
			return nil, newErr(http.StatusForbidden, "invalid_grant", "Invalid recovery code.")
		}
	}
	// The mfa_token is single use once it produced tokens.
	t.mu.Lock()
	delete(t.mfaTokens, tok)
	t.mu.Unlock()
	api := t.runAction(ActionEvent{User: user, ClientID: app.ClientID, Connection: user.Connection,
		Protocol: ProtocolMFA, Scopes: g.scopes, Audience: g.audience,
		AuthenticationMethods: []string{"mfa"}, Authentication: []AuthMethod{{Name: "mfa", Timestamp: t.cfg.Now()}}})
	if api.denied {
		return nil, newErr(http.StatusForbidden, "access_denied", api.reason)
	}
	// Tokens obtained through the MFA API carry no amr (Auth0's documented exception).
	resp, _ := t.issueTokens(tokenRequest{app: app, user: &user, scopes: g.scopes, audience: g.audience,
		authTime: t.cfg.Now(), idClaims: api.idClaims, atClaims: api.atClaims})
	if newRecovery != "" {
		resp["recovery_code"] = newRecovery
	}
	return resp, nil
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (t *Tenant) handleMFAAuthenticators(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed")
		return
	}
	userID, _, ok := t.mfaBearer(r, "read:authenticators")
	if !ok {
		writeError(w, http.StatusUnauthorized, "invalid_token", "Invalid mfa_token")
		return
	}
	t.mu.Lock()
	u := t.userByIDLocked(userID)
	list := []any{}
	if u != nil && u.TOTPSecret != "" {
		list = append(list,
			map[string]any{"id": t.factorIDLocked("totp", u.ID), "authenticator_type": "otp", "active": true},
			map[string]any{"id": t.factorIDLocked("push", u.ID), "authenticator_type": "oob", "oob_channel": "auth0", "active": true, "name": "auth0test Guardian"})
	}
	if u != nil && u.RecoveryCode != "" {
		list = append(list, map[string]any{"id": t.factorIDLocked("recovery-code", u.ID), "authenticator_type": "recovery-code", "active": true})
	}
	t.mu.Unlock()
	writeJSON(w, http.StatusOK, list)
}

func (t *Tenant) handleMFAChallenge(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed")
		return
	}
	form, app, ok := t.readClientForm(w, r)
	if !ok {
		return
	}
	tok := form.Get("mfa_token")
	if tok == "" {
		invalidRequest("Missing required parameter: mfa_token").write(w)
		return
	}
	g, oe := t.lookupMFAToken(tok, app.ClientID)
	if oe != nil {
		oe.write(w)
		return
	}
	types := strings.Fields(form.Get("challenge_type"))
	if len(types) == 0 {
		types = []string{"otp", "oob"}
	}
	t.mu.Lock()
	u := t.userByIDLocked(g.userID)
	hasFactor := u != nil && u.TOTPSecret != ""
	var otpID, pushID string
	if hasFactor {
		otpID, pushID = t.factorIDLocked("totp", u.ID), t.factorIDLocked("push", u.ID)
	}
	t.mu.Unlock()
	if !hasFactor {
		// Auth0 answers 400 for a user without an active authenticator.
		writeError(w, http.StatusBadRequest, "unsupported_challenge_type", "User is not enrolled.")
		return
	}
	authID := form.Get("authenticator_id")
	for _, typ := range types {
		switch typ {
		case "otp":
			if authID == "" || authID == otpID {
				writeJSON(w, http.StatusOK, map[string]any{"challenge_type": "otp"})
				return
			}
		case "oob":
			if authID == "" || authID == pushID {
				code := "oob." + randomToken(24)
				t.mu.Lock()
				t.oobChallenges[code] = &oobChallenge{mfaToken: tok, userID: g.userID, created: t.cfg.Now(), status: "pending"}
				t.mu.Unlock()
				writeJSON(w, http.StatusOK, map[string]any{"challenge_type": "oob", "oob_code": code})
				return
			}
		}
	}
	writeError(w, http.StatusBadRequest, "unsupported_challenge_type", "The challenge type is not supported by the authenticator.")
}

// ErrNotPending is returned when approving or denying something that is not (or no
// longer) waiting for a decision.
var ErrNotPending = errors.New("auth0test: no such pending request")

// ApproveOOB approves a push (oob) challenge, as the user would in Guardian.
func (t *Tenant) ApproveOOB(oobCode string) error { return t.decideOOB(oobCode, "approved") }

// DenyOOB rejects a push (oob) challenge.
func (t *Tenant) DenyOOB(oobCode string) error { return t.decideOOB(oobCode, "denied") }

func (t *Tenant) decideOOB(code, status string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch, ok := t.oobChallenges[code]
	if !ok || ch.status != "pending" {
		return ErrNotPending
	}
	ch.status = status
	return nil
}
