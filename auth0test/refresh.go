package auth0test

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// family is a refresh-token family: every token rotated from one login.
type family struct {
	id       string
	clientID string
	userID   string
	scopes   []string
	audience string
	sid      string
	authTime time.Time
	org      *ActionOrganization
	methods  []AuthMethod      // of the login that created the family
	meta     map[string]string // refresh-token metadata (Config.RefreshTokenMetadata)
	created  time.Time
	lastUsed time.Time
	revoked  bool
	// lastRotated is the token most recently exchanged (rotated out): the only one
	// the overlap period may accept again.
	lastRotated string
}

type refreshToken struct {
	family *family
	used   bool
	usedAt time.Time
}

// RefreshEvent is an entry of the refresh-token family log.
type RefreshEvent struct {
	Family string
	// Kind is one of:
	//   "issued"  a family was created (a login with offline_access)
	//   "used"    a non-rotating refresh token was exchanged
	//   "rotated" a refresh token was exchanged for a new one
	//   "overlap" the previous token was reused within the overlap period
	//   "reused"  an invalidated token was presented (breach detection)
	//   "revoked" the family was revoked (reuse, /oauth/revoke or a replayed code)
	//   "expired" a token of the family was presented after its lifetime
	Kind string
	At   time.Time
}

// RefreshLog returns a copy of the refresh-token family log, oldest first.
func (t *Tenant) RefreshLog() []RefreshEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.refreshLog)
}

func (t *Tenant) logRefreshLocked(familyID, kind string, at time.Time) {
	t.refreshLog = append(t.refreshLog, RefreshEvent{Family: familyID, Kind: kind, At: at})
}

// newFamily registers a new family and its first token.
func (t *Tenant) newFamily(tr tokenRequest, scopes []string, now time.Time) (value, familyID string) {
	f := &family{
		id: "rtf_" + randomToken(12), clientID: tr.app.ClientID, userID: tr.user.ID,
		scopes: slices.Clone(scopes), audience: tr.audience, sid: tr.sid, authTime: tr.authTime, org: tr.org,
		methods: slices.Clone(tr.methods), meta: maps.Clone(tr.rtMeta), created: now, lastUsed: now,
	}
	value = "v1." + randomToken(32)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.families[f.id] = f
	t.refreshTokens[value] = &refreshToken{family: f}
	t.logRefreshLocked(f.id, "issued", now)
	return value, f.id
}

var errUnknownRefresh = newErr(http.StatusForbidden, "invalid_grant", "Unknown or invalid refresh token.")

func (t *Tenant) grantRefreshToken(app *Application, form url.Values) (map[string]any, *oauthError) {
	value := form.Get("refresh_token")
	if value == "" {
		return nil, invalidRequest("Missing required parameter: refresh_token")
	}
	// Phase 1: read-only lookup, so that the Action runs without the lock held.
	t.mu.Lock()
	rt, ok := t.refreshTokens[value]
	var f family
	var user User
	if ok {
		f = *rt.family
		if u := t.userByIDLocked(f.userID); u != nil {
			user = *u
		} else {
			ok = false
		}
	}
	t.mu.Unlock()
	if !ok || f.clientID != app.ClientID {
		return nil, errUnknownRefresh
	}
	scopes := f.scopes
	if s := form.Get("scope"); s != "" {
		req := strings.Fields(s)
		for _, x := range req {
			if !slices.Contains(f.scopes, x) {
				return nil, newErr(http.StatusForbidden, "invalid_scope", "Scope '"+x+"' was not granted to this refresh token")
			}
		}
		scopes = req
	}
	if user.Blocked {
		return nil, newErr(http.StatusForbidden, "unauthorized", "user is blocked")
	}
	ev := ActionEvent{
		User: user, ClientID: app.ClientID, Connection: user.Connection, Protocol: ProtocolRefreshToken,
		Scopes: scopes, Audience: f.audience, Silent: true, Organization: f.org,
		RefreshToken: &ActionRefreshToken{ID: f.id, CreatedAt: f.created, LastExchangeAt: f.lastUsed, SessionID: f.sid, Metadata: f.meta},
	}
	if t.cfg.RefreshActionAuthentication {
		ev.Authentication = slices.Clone(f.methods)
		for _, m := range f.methods {
			ev.AuthenticationMethods = append(ev.AuthenticationMethods, m.Name)
		}
	}
	api := t.runAction(ev)
	if api.denied {
		return nil, newErr(http.StatusForbidden, "access_denied", api.reason)
	}
	if api.requireMFA {
		return nil, t.mfaRequired(app, &user, scopes, f.audience)
	}

	// Phase 2: validate and rotate atomically.
	now := t.cfg.Now()
	t.mu.Lock()
	rt, ok = t.refreshTokens[value]
	if !ok {
		t.mu.Unlock()
		return nil, errUnknownRefresh
	}
	fam := rt.family
	if fam.revoked {
		t.mu.Unlock()
		return nil, errUnknownRefresh
	}
	if now.After(fam.created.Add(t.cfg.RefreshTokenLifetime)) || now.After(fam.lastUsed.Add(t.cfg.RefreshTokenIdleLifetime)) {
		t.logRefreshLocked(fam.id, "expired", now)
		t.mu.Unlock()
		return nil, errUnknownRefresh
	}
	tr := tokenRequest{
		app: app, user: &user, scopes: scopes, audience: fam.audience, sid: fam.sid,
		authTime: fam.authTime, idClaims: api.idClaims, atClaims: api.atClaims, family: fam, org: fam.org,
		gty: GrantRefreshToken, // Auth0's profile: gty "refresh_token" after a refresh
	}
	switch {
	case !t.cfg.RefreshTokenRotation:
		t.logRefreshLocked(fam.id, "used", now)
	case !rt.used:
		rt.used, rt.usedAt = true, now
		fam.lastRotated = value
		tr.rotateValue = t.addTokenLocked(fam)
		t.logRefreshLocked(fam.id, "rotated", now)
	case t.cfg.RotationOverlap > 0 && fam.lastRotated == value && now.Sub(rt.usedAt) <= t.cfg.RotationOverlap:
		tr.rotateValue = t.addTokenLocked(fam)
		t.logRefreshLocked(fam.id, "overlap", now)
	default:
		fam.revoked = true
		t.cfg.Logger.Info("auth0test: refresh token reuse detected: family revoked", "family", fam.id)
		t.logRefreshLocked(fam.id, "reused", now)
		t.logRefreshLocked(fam.id, "revoked", now)
		t.mu.Unlock()
		return nil, errUnknownRefresh
	}
	fam.lastUsed = now
	if api.rtMetaChanged {
		// Applied as the refresh token is issued (not at mfa_required or a
		// denial, which returned above), for every later exchange.
		fam.meta = maps.Clone(api.rtMeta)
	}
	t.mu.Unlock()
	// Refreshed ID tokens carry no amr (Auth0's documented exception) and, by
	// auth0test's choice, no acr: a refresh never changes the step-up level.
	resp, _ := t.issueTokens(tr)
	return resp, nil
}

func (t *Tenant) addTokenLocked(f *family) string {
	v := "v1." + randomToken(32)
	t.refreshTokens[v] = &refreshToken{family: f}
	return v
}

// RevokeRefreshFamily revokes the family of a refresh token, as /oauth/revoke does.
// It reports whether the token was known.
func (t *Tenant) RevokeRefreshFamily(refreshToken string) bool {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	rt, ok := t.refreshTokens[refreshToken]
	if !ok {
		return false
	}
	if !rt.family.revoked {
		rt.family.revoked = true
		t.logRefreshLocked(rt.family.id, "revoked", now)
	}
	return true
}

// RefreshFamily returns the family id of a refresh token ("" if unknown).
func (t *Tenant) RefreshFamily(refreshToken string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rt, ok := t.refreshTokens[refreshToken]; ok {
		return rt.family.id
	}
	return ""
}

func (t *Tenant) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if !allowPOST(w, r) {
		return
	}
	form, app, ok := t.readClientForm(w, r)
	if !ok {
		return
	}
	token := form.Get("token")
	if token == "" {
		invalidRequest("Missing required parameter: token").write(w)
		return
	}
	now := t.cfg.Now()
	t.mu.Lock()
	// Unknown tokens, and tokens of another application, are answered 200 and left
	// alone (RFC 7009: the client learns nothing).
	if rt, ok := t.refreshTokens[token]; ok && rt.family.clientID == app.ClientID && !rt.family.revoked {
		rt.family.revoked = true
		t.logRefreshLocked(rt.family.id, "revoked", now)
	}
	t.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
