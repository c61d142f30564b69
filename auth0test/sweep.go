package auth0test

import (
	"slices"
	"time"
)

// sweepEvery: one request in sweepEvery sweeps the tenant's records, so a
// long-running tenant (the demo, a soak test) stays bounded without a goroutine.
const sweepEvery = 256

// maxRefreshLog bounds the refresh-token family log (oldest entries dropped).
const maxRefreshLog = 4096

// sweepLocked drops every record past its lifetime and returns the SSO
// sessions that expired (for session-expired back-channel logouts).
func (t *Tenant) sweepLocked(now time.Time) []session {
	for k, tx := range t.txs {
		if now.After(tx.created.Add(loginTxTimeout)) {
			delete(t.txs, k)
		}
	}
	for k, c := range t.codes {
		if now.After(c.expires.Add(codeLifetime)) { // kept a while to detect replays
			delete(t.codes, k)
		}
	}
	for k, p := range t.pars {
		if now.After(p.expires) {
			delete(t.pars, k)
		}
	}
	for k, r := range t.ciba {
		if now.After(r.expires.Add(cibaKeep)) {
			delete(t.ciba, k)
		}
	}
	for k, g := range t.mfaTokens {
		if now.After(g.expires) {
			delete(t.mfaTokens, k)
		}
	}
	for k, ch := range t.oobChallenges {
		if _, ok := t.mfaTokens[ch.mfaToken]; !ok {
			delete(t.oobChallenges, k)
		}
	}
	for k, e := range t.enrollments {
		if now.After(e.expires) {
			delete(t.enrollments, k)
		}
	}
	for k, exp := range t.usedJTIs {
		if now.After(exp) {
			delete(t.usedJTIs, k)
		}
	}
	for k, o := range t.opaque {
		if now.After(o.expires) {
			delete(t.opaque, k)
		}
	}
	for k, p := range t.logouts {
		if now.After(p.expires) {
			delete(t.logouts, k)
		}
	}
	for k, tk := range t.tickets {
		if now.After(tk.expires) {
			delete(t.tickets, k)
		}
	}
	for k, inv := range t.invitations {
		if now.After(inv.expires) {
			delete(t.invitations, k)
		}
	}
	for k, w := range t.limits {
		if lim, ok := t.cfg.RateLimits[k]; !ok || now.After(w.start.Add(max(lim.Window, time.Second))) {
			delete(t.limits, k)
		}
	}
	// Refresh-token families past their absolute or idle lifetime answer
	// invalid_grant like unknown ones: drop them with their tokens.
	for k, f := range t.families {
		if now.After(f.created.Add(t.cfg.RefreshTokenLifetime)) || now.After(f.lastUsed.Add(t.cfg.RefreshTokenIdleLifetime)) {
			delete(t.families, k)
		}
	}
	for k, rt := range t.refreshTokens {
		if _, ok := t.families[rt.family.id]; !ok {
			delete(t.refreshTokens, k)
		}
	}
	if n := len(t.refreshLog); n > maxRefreshLog {
		t.refreshLog = slices.Delete(t.refreshLog, 0, n-maxRefreshLog)
	}
	var expired []session
	for k, s := range t.sessions {
		if t.sessionExpiredLocked(s, now) {
			expired = append(expired, *s)
			delete(t.sessions, k)
		}
	}
	return expired
}

// Sweep drops every expired record now (the tenant also does it every few
// hundred requests) and sends the session-expired back-channel logouts of the
// SSO sessions that expired. Tests call it after moving the clock.
func (t *Tenant) Sweep() {
	t.mu.Lock()
	expired := t.sweepLocked(t.cfg.Now())
	t.mu.Unlock()
	t.deliverLogouts(nil, expired, InitiatorSessionExpired)
}

// Retained counts the records a tenant holds, to show that a long-running
// tenant stays bounded.
type Retained struct {
	Transactions, Codes, Sessions, RefreshFamilies, RefreshTokens, RefreshLog int
	MFATokens, OOBChallenges, PAR, CIBA, OpaqueTokens, ClientAssertions       int
	LogoutConfirmations, LogoutDeliveries                                     int
	EnrollmentTickets, Invitations                                            int
}

// Retained returns the tenant's record counts.
func (t *Tenant) Retained() Retained {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Retained{
		Transactions: len(t.txs), Codes: len(t.codes), Sessions: len(t.sessions),
		RefreshFamilies: len(t.families), RefreshTokens: len(t.refreshTokens), RefreshLog: len(t.refreshLog),
		MFATokens: len(t.mfaTokens), OOBChallenges: len(t.oobChallenges), PAR: len(t.pars), CIBA: len(t.ciba),
		OpaqueTokens: len(t.opaque), ClientAssertions: len(t.usedJTIs),
		LogoutConfirmations: len(t.logouts), LogoutDeliveries: len(t.deliveries),
		EnrollmentTickets: len(t.tickets), Invitations: len(t.invitations),
	}
}
