package stepup

import (
	"context"
	"log/slog"
	"time"
)

// EventKind names what an Event reports.
type EventKind string

// The kinds of Event.
const (
	// EventLogin: a login completed and a session started or continued
	// (Reason "silent" for a prompt=none login). Policy is the policy the
	// login satisfied; ACR, AMR and AuthTime its ID token's.
	EventLogin EventKind = "login"
	// EventLoginRefused: Config.BeforeSession refused a login (Reason: its
	// error, cut to 400 bytes); nothing was stored.
	EventLoginRefused EventKind = "login_refused"
	// EventStepUpDemanded: a page or API demanded more than the session
	// had, and the user was sent to the tenant (or answered 401).
	EventStepUpDemanded EventKind = "step_up_demanded"
	// EventStepUpCompleted: a login satisfied a step-up policy.
	EventStepUpCompleted EventKind = "step_up_completed"
	// EventStepUpRefused: a step-up did not happen (Reason says why:
	// a StepUpError's Reason, or the tenant's error code).
	EventStepUpRefused EventKind = "step_up_refused"
	// EventAPIChallenge: an API answered an APIClient call with an RFC 9470
	// challenge (ACR: its acr_values; Reason: its error and max_age), which
	// the Client turned into a *StepUpNeededError for the page (Client.StepUp)
	// or the job (CIBA) to answer.
	EventAPIChallenge EventKind = "api_challenge"
	// EventRefresh: a TokenSource refreshed an access token.
	EventRefresh EventKind = "refresh"
	// EventRefreshRefused: the tenant refused a refresh (Reason: its error).
	EventRefreshRefused EventKind = "refresh_refused"
	// EventMFARequired: a refresh was answered mfa_required.
	EventMFARequired EventKind = "mfa_required"
	// EventCIBAStarted, EventCIBAApproved, EventCIBADenied and
	// EventCIBAExpired follow an out-of-band (CIBA) step-up.
	EventCIBAStarted  EventKind = "ciba_started"
	EventCIBAApproved EventKind = "ciba_approved"
	EventCIBADenied   EventKind = "ciba_denied"
	EventCIBAExpired  EventKind = "ciba_expired"
	// EventLogout: sessions ended (Reason: LogoutLocal, LogoutBackChannel
	// or LogoutAdmin; Sessions: how many).
	EventLogout EventKind = "logout"
)

// Logout reasons (Event.Reason of an EventLogout).
const (
	LogoutLocal       = "local"        // the user signed out (LogoutHandler, Client.Logout)
	LogoutBackChannel = "back_channel" // the tenant's back-channel logout token
	LogoutAdmin       = "admin"        // Client.LogoutUser / LogoutSID called by the app
)

// Event is an audit record of something the Client did for a user. It
// never holds a token, a code, a cookie or a secret: a session is named by
// the first 8 characters of its handle, enough to follow it through logs
// and useless as a credential.
type Event struct {
	Kind EventKind
	At   time.Time
	// Session is the prefix of the session's handle ("" when none yet).
	Session string
	// Subject is the user id (sub); SessionID Auth0's sid; Connection the
	// session's connection key; Organization the org_id, when known.
	Subject, SessionID, Connection, Organization string
	// Policy is the name of the policy concerned, when one is.
	Policy string
	// ACR, AMR and AuthTime are the authentication evidence of a login or
	// step-up.
	ACR      string
	AMR      []string
	AuthTime time.Time
	// Audience is the API concerned (refresh, API challenge, CIBA).
	Audience string
	// Reason says why (a refusal's reason, a logout's origin).
	Reason string
	// Sessions counts the sessions a logout ended.
	Sessions int
}

// handlePrefix is what an Event or a log line shows of a session handle.
func handlePrefix(handle string) string {
	if len(handle) > 8 {
		return handle[:8]
	}
	return handle
}

// emit hands e to Config.Events and logs it: Info for logins, completed
// step-ups, refreshes, CIBA approvals and logouts, Warn for refusals
// (login_refused, step_up_refused, refresh_refused) and CIBA denials and
// expiries, Debug for the rest (step_up_demanded, api_challenge,
// mfa_required, ciba_started).
// Attributes: event, session, sub, sid, connection, org, policy, acr, amr,
// audience, reason, sessions (only those set).
func (c *Client) emit(ctx context.Context, e Event) {
	if e.At.IsZero() {
		e.At = c.now()
	}
	if c.cfg.Events != nil {
		c.cfg.Events(ctx, e)
	}
	level := slog.LevelDebug
	switch e.Kind {
	case EventLogin, EventStepUpCompleted, EventRefresh, EventLogout, EventCIBAApproved:
		level = slog.LevelInfo
	case EventStepUpRefused, EventRefreshRefused, EventCIBADenied, EventCIBAExpired, EventLoginRefused:
		level = slog.LevelWarn
	}
	if !c.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs, slog.String("event", string(e.Kind)))
	for _, kv := range [...]struct{ k, v string }{
		{"session", e.Session}, {"sub", e.Subject}, {"sid", e.SessionID}, {"connection", e.Connection},
		{"org", e.Organization}, {"policy", e.Policy}, {"acr", e.ACR}, {"audience", e.Audience}, {"reason", e.Reason},
	} {
		if kv.v != "" {
			attrs = append(attrs, slog.String(kv.k, kv.v))
		}
	}
	if len(e.AMR) > 0 {
		attrs = append(attrs, slog.Any("amr", e.AMR))
	}
	if !e.AuthTime.IsZero() {
		attrs = append(attrs, slog.Time("auth_time", e.AuthTime))
	}
	if e.Sessions > 0 {
		attrs = append(attrs, slog.Int("sessions", e.Sessions))
	}
	c.log.LogAttrs(ctx, level, "stepup: "+string(e.Kind), attrs...)
}
