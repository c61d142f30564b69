package auth0test

import (
	"maps"
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
	maps.DeleteFunc(t.txs, func(_ string, tx *loginTx) bool { return now.After(tx.created.Add(loginTxTimeout)) })
	maps.DeleteFunc(t.codes, func(_ string, c *authCode) bool { return now.After(c.expires.Add(codeLifetime)) }) // kept a while to detect replays
	maps.DeleteFunc(t.pars, func(_ string, p *parRequest) bool { return now.After(p.expires) })
	maps.DeleteFunc(t.ciba, func(_ string, r *cibaRequest) bool { return now.After(r.expires.Add(cibaKeep)) })
	maps.DeleteFunc(t.mfaTokens, func(_ string, g *mfaGrant) bool { return now.After(g.expires) })
	maps.DeleteFunc(t.oobChallenges, func(_ string, ch *oobChallenge) bool {
		_, ok := t.mfaTokens[ch.mfaToken]
		return !ok
	})
	maps.DeleteFunc(t.enrollments, func(_ string, e *enrollment) bool { return now.After(e.expires) })
	maps.DeleteFunc(t.usedJTIs, func(_ string, exp time.Time) bool { return now.After(exp) })
	maps.DeleteFunc(t.opaque, func(_ string, o *opaqueToken) bool { return now.After(o.expires) })
	maps.DeleteFunc(t.logouts, func(_ string, p *pendingLogout) bool { return now.After(p.expires) })
	maps.DeleteFunc(t.tickets, func(_ string, tk *enrollTicket) bool { return now.After(tk.expires) })
	maps.DeleteFunc(t.invitations, func(_ string, inv *invitation) bool { return now.After(inv.expires) })
	maps.DeleteFunc(t.limits, func(k string, w *rateWindow) bool {
		lim, ok := t.cfg.RateLimits[k]
		return !ok || now.After(w.start.Add(max(lim.Window, time.Second)))
	})
	// Refresh-token families past their absolute or idle lifetime answer
	// invalid_grant like unknown ones: drop them with their tokens.
	maps.DeleteFunc(t.families, func(_ string, f *family) bool {
		return now.After(f.created.Add(t.cfg.RefreshTokenLifetime)) || now.After(f.lastUsed.Add(t.cfg.RefreshTokenIdleLifetime))
	})
	maps.DeleteFunc(t.refreshTokens, func(_ string, rt *refreshToken) bool {
		_, ok := t.families[rt.family.id]
		return !ok
	})
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
