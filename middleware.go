package stepup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stepupauth/stepup/store"
)

type sessionCtxKey struct{}

// SessionFromContext returns the session that RequireLogin or RequireStepUp
// put in the request's context.
func SessionFromContext(ctx context.Context) (*Session, bool) {
	s, ok := ctx.Value(sessionCtxKey{}).(*Session)
	return s, ok && s != nil
}

// RequireLogin serves next only to requests with a live session (see
// RequireStepUp with the Login policy).
func (c *Client) RequireLogin(next http.Handler) http.Handler {
	return c.RequireStepUp(Login)(next)
}

// RequireStepUp returns middleware that serves next only to requests whose
// session satisfies p, as adapted to the session's connection (PolicyFor);
// next finds the session with SessionFromContext.
//
// Otherwise a browser navigation is redirected through the tenant's
// /authorize with p's acr_values and max_age and a local return path (the
// request's own path for GET and HEAD, Config.DefaultReturnTo for other
// methods). A request is a navigation when, in this order: its
// Sec-Fetch-Mode is "navigate" (any other mode, such as cors, no-cors or
// same-origin from fetch and XMLHttpRequest, is not); without
// Sec-Fetch-Mode, its Sec-Fetch-Dest is "document" or "iframe"; it carries
// X-Requested-With (not a navigation); its Accept lists text/html; and
// otherwise Config.Navigation decides (default: GET or HEAD with no Accept
// or only "*/*", as curl and Go's http.Client send). Any other request gets
// 401 with a JSON body:
// {"error":"login_required"} or {"error":"insufficient_user_authentication",
// "acr_values":"...","max_age":N}. A failing store is answered through
// Config.ErrorHandler (503): nothing is served on a guess.
func (c *Client) RequireStepUp(p Policy) func(http.Handler) http.Handler {
	p = clonePolicy(p)
	// p as PolicyFor adapts it to each connection, made once: a request
	// only looks its session's up (a connection without an entry keeps p).
	adapted := make(map[string]Policy, len(c.cfg.ConnectionPolicies))
	for conn := range c.cfg.ConnectionPolicies {
		adapted[conn] = c.PolicyFor(p, conn)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, err := c.sessionFromCookie(r.Context(), r)
			if err != nil && !errors.Is(err, ErrNoSession) {
				c.fail(w, r, err)
				return
			}
			eff := p
			var checkErr error = ErrNoSession
			if s != nil {
				if a, ok := adapted[s.Connection]; ok {
					eff = a
				}
				if checkErr = c.checkSession(s, &eff); checkErr == nil {
					next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionCtxKey{}, s)))
					return
				}
			}
			c.challenge(w, r, eff, s, checkErr)
		})
	}
}

// challenge answers a request whose session is missing or too weak; eff is
// the page's policy as adapted to the session's connection.
func (c *Client) challenge(w http.ResponseWriter, r *http.Request, eff Policy, s *Session, why error) {
	opts := AuthorizeOptions{ReturnTo: returnPath(r, c.cfg.DefaultReturnTo)}
	if s != nil {
		// The hint routes the browser only: eff, adapted to the connection
		// sub names, is sent as is (not re-adapted to the hint's name).
		// Only hints: one that is over its bound (a record from before the
		// bounds) is dropped rather than failing the step-up.
		if checkConnection(s.connectionHint) == nil {
			opts.Connection = s.connectionHint
		}
		if checkText(s.Email, maxLoginHintLen) == nil {
			opts.LoginHint = s.Email
		}
	}
	opts.Policy = eff
	if s != nil {
		reason := ""
		var se *StepUpError
		if errors.As(why, &se) {
			reason = string(se.Reason)
		}
		c.emit(r.Context(), Event{Kind: EventStepUpDemanded, Session: handlePrefix(s.Handle), Subject: s.Subject,
			SessionID: s.SessionID, Connection: s.Connection, Organization: s.OrgID, Policy: eff.Name, Reason: reason})
	}
	if !c.isNavigation(r) {
		body := map[string]any{"error": "login_required", "error_description": why.Error()}
		if s != nil {
			body["error"] = "insufficient_user_authentication"
			if v := eff.ACRValues(); v != "" {
				body["acr_values"] = v
			}
			if sec, ok := eff.MaxAgeSeconds(); ok {
				body["max_age"] = json.Number(sec)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(body)
		return
	}
	if err := c.startAuthorize(w, r, opts, eff); err != nil {
		c.fail(w, r, err)
	}
}

func (c *Client) redirectToAuthorize(w http.ResponseWriter, r *http.Request, opts AuthorizeOptions) {
	if err := c.sendToAuthorize(w, r, opts); err != nil {
		c.fail(w, r, err)
	}
}

// sendToAuthorize starts an authorization with opts, bound to r's browser,
// and redirects to it. On error it has written nothing.
func (c *Client) sendToAuthorize(w http.ResponseWriter, r *http.Request, opts AuthorizeOptions) error {
	return c.startAuthorize(w, r, opts, c.PolicyFor(opts.Policy, opts.Connection))
}

// startAuthorize is sendToAuthorize sending policy (see authorizeURL): the
// transaction goes into its cookie (SetTransactionCookie), nothing into the
// Store.
func (c *Client) startAuthorize(w http.ResponseWriter, r *http.Request, opts AuthorizeOptions, policy Policy) error {
	ar, err := c.authorizeURL(r.Context(), opts, policy)
	if err != nil {
		return err
	}
	c.SetTransactionCookie(w, r, ar)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, ar.URL, http.StatusFound)
	return nil
}

// LoginHandler starts a login: it redirects to the tenant's /authorize with
// a transaction cookie (AuthorizeURL; nothing is written to the Store).
// Query parameters: return_to (a local path; default
// Config.DefaultReturnTo, also for one that is not a safe local path),
// connection (optional; the browser controls it, so it only routes the
// login: the session's policy follows the ID token's sub, see
// Session.Connection), organization (an id "org_..." or a name; default
// Config.Organization; the callback checks the ID token against it; when
// Config.Organization is set, any other organization is refused: the
// browser cannot choose another) and
// invitation (an Auth0 invitation ticket id, which Auth0 accepts only with
// the organization it was issued for: the link in an invitation email is
// the application's login route with both). A return_to over 2048 bytes, a
// connection that is not an Auth0 connection name (1 to 128 letters, digits
// and inner "-"), an organization or an invitation that is not a name of 1
// to 50 (invitation: 64) letters, digits, "-" and "_", or an invitation
// without an organization, is answered 400 (ErrInvalidAuthorizeOptions
// through Config.ErrorHandler).
func (c *Client) LoginHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		opts := AuthorizeOptions{Connection: q.Get("connection"), ReturnTo: c.cfg.DefaultReturnTo,
			Organization: q.Get("organization")}
		if c.cfg.Organization != "" && opts.Organization != "" && !sameOrganization(opts.Organization, c.cfg.Organization) {
			// The browser controls the query: an app pinned to one
			// organization never logs a browser in to another.
			c.fail(w, r, fmt.Errorf("%w: organization %s is not this application's (Config.Organization)", ErrInvalidAuthorizeOptions, clip(opts.Organization)))
			return
		}
		if inv := q.Get("invitation"); inv != "" {
			if opts.Organization == "" && c.cfg.Organization == "" {
				c.fail(w, r, fmt.Errorf("%w: an invitation needs the organization it was issued for", ErrInvalidAuthorizeOptions))
				return
			}
			opts.Extra = url.Values{"invitation": {inv}}
		}
		if rt := q.Get("return_to"); len(rt) > maxReturnToLen {
			c.fail(w, r, fmt.Errorf("%w: return_to is %d bytes, at most %d", ErrInvalidAuthorizeOptions, len(rt), maxReturnToLen))
			return
		} else if rt != "" && checkReturnTo(rt) == nil {
			opts.ReturnTo = rt
		}
		c.redirectToAuthorize(w, r, opts)
	})
}

// CallbackHandler serves Config.RedirectURL: it completes the authorization
// with Exchange, given the request's transaction cookie for the callback's
// state (a callback without it is a 400 that writes nothing), starts (or
// continues, rotating its cookie) the session, and redirects to the login's
// return path. The transaction cookie is expired once the transaction is
// spent (its code redeemed, or expired); a failure that anyone who learnt
// the state could cause (an error= callback, a forged or replayed code)
// leaves it, so the user's own callback still succeeds. Any failure is
// answered through Config.ErrorHandler, never with another redirect to the
// tenant: a step-up the tenant did not perform does not loop.
func (c *Client) CallbackHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		state := q.Get("state")
		res, tx, spent, err := c.exchangeTx(r.Context(), q, c.transactionFromRequest(r, state))
		if spent {
			http.SetCookie(w, c.ClearTransactionCookie(state))
		}
		if err != nil {
			if c.silentFallback(w, r, tx, state, err) {
				return
			}
			c.fail(w, r, err)
			return
		}
		// The code is spent: from here on, the request's cancellation or
		// deadline must not lose the login (each store call keeps its
		// StoreTimeout).
		ctx, cancel := c.detach(r.Context())
		defer cancel()
		prev, err := c.sessionFromCookie(ctx, r)
		if err != nil && !errors.Is(err, ErrNoSession) {
			c.fail(w, r, err)
			return
		}
		s, err := c.StartSession(ctx, res, prev)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		http.SetCookie(w, c.SessionCookie(s))
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, res.ReturnTo, http.StatusFound)
	})
}

// silentFallback answers a silent login (prompt=none) that the tenant
// refused because it needs the user (login_required, interaction_required,
// consent_required) by starting the same authorization again without
// prompt=none: same policy, connection, audience, organization and return
// path. It reports whether it wrote the answer. Anyone who learnt the state
// can send the browser here with such an error; all it gains is showing the
// user a login page they were about to get anyway.
func (c *Client) silentFallback(w http.ResponseWriter, r *http.Request, tx *txRecord, state string, err error) bool {
	var ae *AuthorizeError
	if c.cfg.NoSilentFallback || tx == nil || !tx.Silent || !errors.As(err, &ae) {
		return false
	}
	switch ae.Code {
	case "login_required", "interaction_required", "consent_required":
	default:
		return false
	}
	opts := AuthorizeOptions{Connection: tx.Connection, Policy: tx.Policy, Audience: tx.Audience,
		Organization: tx.Org, ReturnTo: tx.ReturnTo}
	if tx.MaxAge >= 0 {
		d := time.Duration(tx.MaxAge) * time.Second
		opts.MaxAge = &d
	}
	// The silent transaction is over: its cookie goes with the redirect.
	http.SetCookie(w, c.ClearTransactionCookie(state))
	if err := c.startAuthorize(w, r, opts, tx.Policy); err != nil {
		c.fail(w, r, err)
	}
	return true
}

// SessionFromRequest loads the session of the request's cookie, for pages
// that serve everyone but show who is signed in (the protected ones get it
// from SessionFromContext). ErrNoSession when there is none; a failing
// store gives an error matching store.ErrUnavailable.
func (c *Client) SessionFromRequest(r *http.Request) (*Session, error) {
	if s, ok := SessionFromContext(r.Context()); ok {
		return s, nil
	}
	return c.sessionFromCookie(r.Context(), r)
}

// sessionFromCookie loads the session of r's cookie with ctx.
func (c *Client) sessionFromCookie(ctx context.Context, r *http.Request) (*Session, error) {
	ck, err := r.Cookie(c.sessionCookie)
	if err != nil {
		return nil, ErrNoSession
	}
	return c.LoadSession(ctx, ck.Value)
}

// Bounds of what fail logs of a request, and of the message
// DefaultErrorHandler shows.
const (
	maxLoggedPath       = 256
	maxLoggedError      = 1024
	maxErrorPageMessage = 512
)

func (c *Client) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := ErrorStatus(err)
	level := c.log.WarnContext
	if status >= 500 {
		level = c.log.ErrorContext
	}
	// Bounded: the path and parts of the error come from the browser.
	level(r.Context(), "stepup: request refused", "path", truncateUTF8(r.URL.Path, maxLoggedPath),
		"status", status, "error", truncateUTF8(err.Error(), maxLoggedError))
	c.cfg.ErrorHandler(w, r, err)
}

// ErrorStatus maps an error of this package to an HTTP status: 503 when the
// store or the tenant is unavailable (fail closed), 400 for callbacks that
// cannot be completed (unknown, replayed or foreign state, issuer mismatch,
// invalid token, bad code), 403 when the tenant refused the login or the
// requested step-up was not performed (ErrStepUpLoop included: an API still
// refuses the token of the step-up it asked for), for a cross-site request
// (ErrCrossSiteRequest), when Config.BeforeSession refused it
// (ErrLoginRefused) or it was for another organization
// (ErrOrganizationMismatch), 401 without a session, 500 otherwise (a Client
// without RedirectURL asked for a login: ErrInvalidConfig).
func ErrorStatus(err error) int {
	var (
		ae *AuthorizeError
		te *TenantError
	)
	switch {
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, ErrTenantUnavailable),
		errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrStepUpRequired), errors.Is(err, ErrStepUpLoop), errors.As(err, &ae),
		errors.Is(err, ErrCrossSiteRequest), errors.Is(err, ErrLoginRefused), errors.Is(err, ErrOrganizationMismatch):
		return http.StatusForbidden
	case errors.Is(err, ErrTransactionNotFound), errors.Is(err, ErrStateMismatch),
		errors.Is(err, ErrIssuerMismatch), errors.Is(err, ErrInvalidCallback),
		errors.Is(err, ErrInvalidToken), errors.Is(err, ErrInvalidAuthorizeOptions):
		return http.StatusBadRequest
	case errors.Is(err, ErrMissingIDToken):
		return http.StatusBadGateway
	case errors.As(err, &te):
		if te.StatusCode >= 400 && te.StatusCode < 500 {
			return http.StatusBadRequest
		}
		return http.StatusBadGateway
	case errors.Is(err, ErrNoSession):
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

// DefaultErrorHandler writes a plain HTML page with ErrorStatus(err). The
// error's message is shown for 4xx answers (it names what went wrong with
// the sign-in, and holds no token or secret); 5xx answers say only that the
// service is unavailable.
func DefaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	status := ErrorStatus(err)
	var msg string
	switch {
	case status == http.StatusServiceUnavailable:
		msg = "The sign-in service is unavailable at the moment. Nothing was let through. Please try again in a minute."
	case status >= 500:
		msg = "Sign-in failed because of an error on our side."
	default:
		// Browser-controlled parts are bounded where the error is built
		// (an AuthorizeError from Exchange is at most ~500 bytes), so the
		// page shows what the log says; this bound, on a character
		// boundary, only catches errors built elsewhere.
		msg = truncateUTF8(err.Error(), maxErrorPageMessage)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html>\n<title>%d %s</title>\n<h1>%s</h1>\n<p>%s</p>\n<p><a href=\"/\">Back to the start page</a></p>\n",
		status, html.EscapeString(http.StatusText(status)), html.EscapeString(http.StatusText(status)), html.EscapeString(msg))
}

// isNavigation reports whether r is a top-level page load by a browser,
// which can follow a redirect to the login page, rather than an API call,
// XMLHttpRequest or fetch (see RequireStepUp for the order of the checks).
func (c *Client) isNavigation(r *http.Request) bool {
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	if d := r.Header.Get("Sec-Fetch-Dest"); d != "" {
		return d == "document" || d == "iframe"
	}
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	for _, a := range r.Header.Values("Accept") {
		if strings.Contains(a, "text/html") {
			return true
		}
	}
	if c.cfg.Navigation != nil {
		return c.cfg.Navigation(r)
	}
	return DefaultNavigation(r)
}

// DefaultNavigation is the default of Config.Navigation: a GET or HEAD
// whose Accept is absent or only "*/*" (curl, wget, Go's http.Client) is a
// navigation; anything else is an API call.
func DefaultNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, a := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(a, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if mt = strings.TrimSpace(mt); mt != "" && mt != "*/*" {
				return false
			}
		}
	}
	return true
}

// returnPath is where a login started by r comes back to: r's own path and
// query for GET and HEAD when it is a safe local path, def otherwise.
func returnPath(r *http.Request, def string) string {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return def
	}
	p := r.RequestURI
	if p == "" {
		p = r.URL.RequestURI()
	}
	if checkReturnTo(p) != nil {
		return def
	}
	return p
}

// sameOrganization reports whether two organization references name the
// same one as Auth0's SDKs compare them: "org_" ids exactly, names without
// regard to case. An id and a name never match (the reference's form is the
// app's choice: use the one its invitation links carry, the id).
func sameOrganization(a, b string) bool {
	if strings.HasPrefix(a, "org_") || strings.HasPrefix(b, "org_") {
		return a == b
	}
	return strings.EqualFold(a, b)
}
