package auth0test

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// enrollment is an OTP authenticator associated through /mfa/associate and not
// yet confirmed with the mfa-otp grant.
type enrollment struct {
	token        string // the mfa_token or MFA-API access token that associated it
	clientID     string
	secret       string
	recoveryCode string // set on the user's first enrollment
	expires      time.Time
}

// mfaAudience is the MFA API's audience, https://{domain}/mfa/.
func (t *Tenant) mfaAudience() string { return t.Issuer() + "mfa/" }

// mfaBearer authenticates an MFA API request: an mfa_token, or an access token
// for the MFA audience carrying scope. It returns the user id and whether the
// credential is an mfa_token.
func (t *Tenant) mfaBearer(r *http.Request, scope string) (userID string, isMFAToken, ok bool) {
	tok := bearer(r)
	if tok == "" {
		return "", false, false
	}
	if g, oe := t.lookupMFAToken(tok, ""); oe == nil {
		return g.userID, true, true
	}
	if strings.Count(tok, ".") != 2 {
		return "", false, false
	}
	_, claims, err := t.verifyJWT(tok, true)
	if err != nil || !slices.Contains(audiences(claims["aud"]), t.mfaAudience()) {
		return "", false, false
	}
	sc, _ := claims["scope"].(string)
	sub, _ := claims["sub"].(string)
	if !slices.Contains(strings.Fields(sc), scope) || sub == "" {
		return "", false, false
	}
	return sub, false, true
}

// handleMFAAssociate is POST /mfa/associate: OTP enrollment. Auth0 accepts an
// mfa_token only while the user has no active authenticator; otherwise an
// access token for the MFA audience with scope enroll.
func (t *Tenant) handleMFAAssociate(w http.ResponseWriter, r *http.Request) {
	if !allowPOST(w, r) {
		return
	}
	form, app, ok := t.readClientForm(w, r)
	if !ok {
		return
	}
	userID, isMFAToken, ok := t.mfaBearer(r, "enroll")
	if !ok {
		writeError(w, http.StatusUnauthorized, "invalid_token", "Invalid token")
		return
	}
	types := form["authenticator_types"]
	if raw := form.Get("authenticator_types"); strings.HasPrefix(raw, "[") {
		types = nil
		if err := json.Unmarshal([]byte(raw), &types); err != nil {
			invalidRequest("authenticator_types must be an array of strings").write(w)
			return
		}
	}
	if len(types) == 0 {
		invalidRequest("Missing required parameter: authenticator_types").write(w)
		return
	}
	if len(types) != 1 || types[0] != "otp" {
		// Auth0 also enrolls oob (sms, voice, auth0 push) and email here.
		writeError(w, http.StatusBadRequest, "unsupported_challenge_type",
			"auth0test enrolls only authenticator_types [\"otp\"]")
		return
	}
	secret := newTOTPSecret()
	now := t.cfg.Now()
	t.mu.Lock()
	u := t.userByIDLocked(userID)
	if u == nil {
		t.mu.Unlock()
		writeError(w, http.StatusUnauthorized, "invalid_token", "Invalid token")
		return
	}
	if isMFAToken && u.TOTPSecret != "" {
		t.mu.Unlock()
		writeError(w, http.StatusUnauthorized, "access_denied",
			"User is already enrolled: use an access token for the MFA API audience with scope enroll")
		return
	}
	e := &enrollment{token: bearer(r), clientID: app.ClientID, secret: secret, expires: now.Add(mfaTokenLifetime)}
	if u.RecoveryCode == "" {
		e.recoveryCode = newRecoveryCode()
	}
	t.enrollments[u.ID] = e
	email := u.Email
	t.mu.Unlock()
	resp := map[string]any{
		"authenticator_type": "otp",
		"secret":             secret,
		"barcode_uri":        t.otpauthURI(email, secret),
	}
	if e.recoveryCode != "" {
		resp["recovery_codes"] = []string{e.recoveryCode}
	}
	writeJSON(w, http.StatusOK, resp)
}

// enrollmentGrant returns an mfa grant for an access token that associated an
// enrollment, so that the mfa-otp grant can confirm it.
func (t *Tenant) enrollmentGrant(tok, clientID string) (mfaGrant, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for uid, e := range t.enrollments {
		if e.token == tok && e.clientID == clientID && !t.cfg.Now().After(e.expires) {
			return mfaGrant{clientID: clientID, userID: uid, expires: e.expires}, true
		}
	}
	return mfaGrant{}, false
}

// confirmEnrollment confirms the user's pending enrollment made with tok when
// otp matches its secret. It reports whether it did.
func (t *Tenant) confirmEnrollment(tok, userID, otp string) (bool, *oauthError) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.enrollments[userID]
	if !ok || e.token != tok {
		return false, nil
	}
	if now.After(e.expires) {
		delete(t.enrollments, userID)
		return false, nil
	}
	if !checkTOTP(e.secret, otp, now) {
		return false, newErr(http.StatusForbidden, "invalid_grant", "Invalid otp_code.")
	}
	u := t.userByIDLocked(userID)
	if u == nil {
		return false, nil
	}
	t.setTOTPLocked(u, e.secret, now)
	t.otpUsedLocked(u.ID, now)
	if e.recoveryCode != "" {
		t.setRecoveryCodeLocked(u, e.recoveryCode, now)
	}
	delete(t.enrollments, userID)
	return true, nil
}

// handleMFAAuthenticator is DELETE /mfa/authenticators/{id}: 204. OTP and push
// are one Guardian enrollment here, so deleting either removes both.
func (t *Tenant) handleMFAAuthenticator(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodDelete {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed")
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/mfa/authenticators/")
	userID, isMFAToken, ok := t.mfaBearer(r, "remove:authenticators")
	if !ok || isMFAToken {
		// Deleting needs an access token for the MFA audience.
		writeError(w, http.StatusUnauthorized, "invalid_token", "Invalid token")
		return
	}
	t.mu.Lock()
	u := t.userByIDLocked(userID)
	found := u != nil && t.deleteFactorLocked(u, id)
	t.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "not_found", "Authenticator not found")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// newTOTPSecret is a random 160-bit base32 OTP secret.
func newTOTPSecret() string {
	var raw [20]byte
	_, _ = rand.Read(raw[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw[:])
}

func newRecoveryCode() string {
	var raw [15]byte
	_, _ = rand.Read(raw[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw[:])[:24]
}
