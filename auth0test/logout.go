package auth0test

import (
	"net/http"
	"net/url"
	"slices"
	"time"
)

// pendingLogout is an /oidc/logout request waiting on the confirmation page.
type pendingLogout struct {
	clientID string
	post     string // post_logout_redirect_uri, already checked
	state    string
	expires  time.Time
}

const logoutConfirmLifetime = 10 * time.Minute

// endSessionsLocked removes the sessions match selects and returns them.
func (t *Tenant) endSessionsLocked(match func(*session) bool) []session {
	var ended []session
	for k, s := range t.sessions {
		if match(s) {
			ended = append(ended, *s)
			delete(t.sessions, k)
		}
	}
	return ended
}

// endBrowserSession ends the browser's SSO session (and any of that sid),
// expires its cookie, and sends the back-channel logout tokens.
func (t *Tenant) endBrowserSession(w http.ResponseWriter, r *http.Request, sid, initiator string) {
	key := ""
	if c, err := r.Cookie(sessionCookie); err == nil {
		key = c.Value
	}
	t.mu.Lock()
	ended := t.endSessionsLocked(func(s *session) bool { return (key != "" && s.key == key) || (sid != "" && s.sid == sid) })
	t.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: true, SameSite: http.SameSiteNoneMode})
	t.deliverLogouts(r, ended, initiator)
}

// EndSessions ends every SSO session of the tenant (as if every browser logged
// out). No back-channel logout is sent: use EndSession or RevokeSessions for that.
func (t *Tenant) EndSessions() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.sessions)
}

// EndSession revokes the SSO session with that sid, as an administrator does
// with the Management API (DELETE /api/v2/sessions/{id}): back-channel logout
// with initiator session-revoked. It reports whether the session existed.
func (t *Tenant) EndSession(sid string) bool {
	t.mu.Lock()
	ended := t.endSessionsLocked(func(s *session) bool { return s.sid == sid })
	t.mu.Unlock()
	t.deliverLogouts(nil, ended, InitiatorSessionRevoked)
	return len(ended) > 0
}

// SessionIDs returns the sids of the live SSO sessions of the user with that
// email, so a test can name the session it ends.
func (t *Tenant) SessionIDs(email string) []string {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.userByEmailLocked(email, "")
	var out []string
	for _, s := range t.sessions {
		if u != nil && s.userID == u.ID && !t.sessionExpiredLocked(s, now) {
			out = append(out, s.sid)
		}
	}
	slices.Sort(out)
	return out
}

func (t *Tenant) sessionExpiredLocked(s *session, now time.Time) bool {
	return now.After(s.created.Add(t.cfg.SessionLifetime)) || now.After(s.lastUsed.Add(t.cfg.SessionIdleLifetime))
}

// changeUser applies change to the user with that email, ends every session of
// that user and sends back-channel logouts with initiator.
func (t *Tenant) changeUser(email, initiator string, change func(*User) bool) error {
	t.mu.Lock()
	u := t.userByEmailLocked(email, "")
	if u == nil {
		t.mu.Unlock()
		return ErrNoUser
	}
	id := u.ID
	if !change(u) {
		t.mu.Unlock()
		return nil
	}
	ended := t.endSessionsLocked(func(s *session) bool { return s.userID == id })
	t.mu.Unlock()
	t.deliverLogouts(nil, ended, initiator)
	return nil
}

// ChangePassword sets a database user's password, as a password reset does: the
// user's SSO sessions end (back-channel logout: password-changed).
func (t *Tenant) ChangePassword(email, password string) error {
	return t.changeUser(email, InitiatorPasswordChanged, func(u *User) bool { u.Password = password; return true })
}

// ChangeEmail changes a user's email (their identifier): the user's SSO
// sessions end (back-channel logout: email-identifier-changed).
func (t *Tenant) ChangeEmail(email, newEmail string) error {
	return t.changeUser(email, InitiatorEmailIdentifierChanged, func(u *User) bool { u.Email = newEmail; return true })
}

// BlockUser blocks (or unblocks) a user, as the Dashboard does. Blocking ends
// the user's SSO sessions (back-channel logout: session-revoked, auth0test's
// choice: Auth0 names no initiator for blocking); the blocked user's logins and
// refresh exchanges fail.
func (t *Tenant) BlockUser(email string, blocked bool) error {
	return t.changeUser(email, InitiatorSessionRevoked, func(u *User) bool { u.Blocked = blocked; return blocked })
}

// DeleteUser deletes a user: their SSO sessions end (back-channel logout:
// account-deleted), their refresh tokens stop working, and the user is gone.
func (t *Tenant) DeleteUser(email string) error {
	var id string
	err := t.changeUser(email, InitiatorAccountDeleted, func(u *User) bool { id = u.ID; return true })
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.users = slices.DeleteFunc(t.users, func(u *User) bool { return u.ID == id })
	for _, f := range t.families {
		if f.userID == id {
			f.revoked = true
		}
	}
	return nil
}

func (t *Tenant) handleV2Logout(w http.ResponseWriter, r *http.Request) {
	q, ok := t.hostedQuery(w, r, http.MethodGet)
	if !ok {
		return
	}
	clientID := q.Get("client_id")
	returnTo := q.Get("returnTo")
	// With client_id, the application's Allowed Logout URLs; without it, the
	// tenant's (redirect-users-after-logout). federated is accepted: there is no
	// upstream identity provider to sign out of.
	var allowed []string
	if clientID != "" {
		t.mu.Lock()
		app, ok := t.apps[clientID]
		if ok {
			allowed = slices.Clone(app.LogoutURLs)
		}
		t.mu.Unlock()
		if !ok {
			t.pageError(w, http.StatusBadRequest, "invalid_request", "Unknown client: "+clientID)
			return
		}
	} else {
		allowed = slices.Clone(t.cfg.LogoutURLs)
	}
	if returnTo != "" && !logoutURLMatches(allowed, returnTo) {
		t.pageError(w, http.StatusBadRequest, "invalid_request",
			"The \"returnTo\" querystring parameter \""+returnTo+"\" is not defined as a valid URL in \"Allowed Logout URLs\".")
		return
	}
	if returnTo == "" && len(allowed) > 0 {
		returnTo = allowed[0] // Auth0: the first Allowed Logout URL
	}
	t.endBrowserSession(w, r, "", InitiatorRPLogout)
	if returnTo == "" {
		renderPage(w, http.StatusOK, pageData{Page: "logout", Title: "Logged out"})
		return
	}
	http.Redirect(w, r, returnTo, http.StatusFound)
}

// logoutURLMatches compares u with the allowed URLs, ignoring u's query and
// fragment as Auth0 does.
func logoutURLMatches(allowed []string, u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	p.RawQuery, p.Fragment, p.RawFragment, p.ForceQuery = "", "", "", false
	bare := p.String()
	return slices.Contains(allowed, u) || slices.Contains(allowed, bare)
}

func (t *Tenant) handleOIDCLogout(w http.ResponseWriter, r *http.Request) {
	q, ok := t.hostedQuery(w, r, http.MethodGet, http.MethodPost)
	if !ok {
		return
	}
	clientID := q.Get("client_id")
	logoutHint := q.Get("logout_hint")
	hintSID := ""
	hinted := false
	if hint := q.Get("id_token_hint"); hint != "" {
		// An expired ID token is still a valid hint.
		_, claims, err := t.verifyJWT(hint, false)
		if err != nil || claims["iss"] != t.Issuer() {
			t.pageError(w, http.StatusBadRequest, "invalid_request", "Invalid id_token_hint")
			return
		}
		aud := audiences(claims["aud"])
		if clientID != "" && !slices.Contains(aud, clientID) {
			t.pageError(w, http.StatusBadRequest, "invalid_request", "client_id does not match the id_token_hint audience")
			return
		}
		if clientID == "" && len(aud) > 0 {
			clientID = aud[0]
		}
		hintSID, _ = claims["sid"].(string)
		if logoutHint != "" && logoutHint != hintSID {
			t.pageError(w, http.StatusBadRequest, "invalid_request", "logout_hint does not match the sid of the id_token_hint")
			return
		}
		hinted = true
	} else if logoutHint != "" {
		hintSID, hinted = logoutHint, true
	}
	if clientID != "" {
		if _, ok := t.Application(clientID); !ok {
			t.pageError(w, http.StatusBadRequest, "invalid_request", "Unknown client: "+clientID)
			return
		}
	}
	post := q.Get("post_logout_redirect_uri")
	if post != "" {
		if clientID == "" {
			t.pageError(w, http.StatusBadRequest, "invalid_request",
				"post_logout_redirect_uri needs client_id or id_token_hint to name the application")
			return
		}
		if !t.logoutURLAllowed(clientID, post) {
			t.pageError(w, http.StatusBadRequest, "invalid_request",
				"post_logout_redirect_uri \""+post+"\" is not an allowed logout URL of the application")
			return
		}
	}
	// Without a hint, or with one that is not the browser's session, Auth0 asks
	// the user to confirm (a consent prompt).
	browser := t.sessionFor(r, t.cfg.Now())
	if !hinted || browser == nil || browser.sid != hintSID {
		id := randomToken(24)
		t.mu.Lock()
		t.logouts[id] = &pendingLogout{clientID: clientID, post: post, state: q.Get("state"),
			expires: t.cfg.Now().Add(logoutConfirmLifetime)}
		t.mu.Unlock()
		renderPage(w, http.StatusOK, pageData{Page: "logout-confirm", Title: "Log out?", App: t.appName(clientID), State: id})
		return
	}
	t.endBrowserSession(w, r, hintSID, InitiatorRPLogout)
	t.afterOIDCLogout(w, r, post, q.Get("state"))
}

// handleLogoutConfirm is the confirmation page's form: accept ends the
// browser's session, anything else leaves it.
func (t *Tenant) handleLogoutConfirm(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		t.pageError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed")
		return
	}
	form, err := parseBody(r)
	if err != nil {
		t.pageError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	id := form.Get("state")
	now := t.cfg.Now()
	t.mu.Lock()
	p, ok := t.logouts[id]
	delete(t.logouts, id)
	t.mu.Unlock()
	if !ok || now.After(p.expires) {
		t.pageError(w, http.StatusBadRequest, "invalid_request", "Invalid or expired logout request")
		return
	}
	if form.Get("action") != "accept" {
		renderPage(w, http.StatusOK, pageData{Page: "logout-declined", Title: "Still logged in"})
		return
	}
	t.endBrowserSession(w, r, "", InitiatorRPLogout)
	t.afterOIDCLogout(w, r, p.post, p.state)
}

func (t *Tenant) afterOIDCLogout(w http.ResponseWriter, r *http.Request, post, state string) {
	if post == "" {
		renderPage(w, http.StatusOK, pageData{Page: "logout", Title: "Logged out"})
		return
	}
	u, err := url.Parse(post)
	if err != nil {
		t.pageError(w, http.StatusBadRequest, "invalid_request", "invalid post_logout_redirect_uri")
		return
	}
	if state != "" {
		qq := u.Query()
		qq.Set("state", state)
		u.RawQuery = qq.Encode()
	}
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// logoutURLAllowed says whether u is one of the Allowed Logout URLs of the
// application clientID.
func (t *Tenant) logoutURLAllowed(clientID, u string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	app, ok := t.apps[clientID]
	return ok && logoutURLMatches(app.LogoutURLs, u)
}
