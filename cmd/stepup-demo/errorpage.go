package main

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/store"
)

// problem is a failure explained to a person: what happened and what to do
// next. Its Code is the reason in /error?reason=CODE; the page's status is
// Status.
type problem struct {
	Code   string
	Status int
	Title  string
	What   string // what happened
	Next   string // what to do next
}

// problems are every failure the demo explains, by reason code. A reason
// the demo did not make (someone typed /error?reason=...) is shown as
// unknownProblem: the page never shows text taken from its URL.
var problems = map[string]problem{
	"no_second_factor": {Status: http.StatusForbidden,
		Title: "Salary data needs a second factor",
		What:  "Your account has no second factor, so the sign-in service could not do the extra check that salary data needs.",
		Next:  "Enroll one on the security page, or ask an admin. You are still signed in with your password: customer data stays open to you."},
	"stepup_denied": {Status: http.StatusForbidden,
		Title: "The extra check was refused",
		What:  "The sign-in service refused the extra check that this page needs.",
		Next:  "You are still signed in as before. Try again later, or ask an admin (quote the technical detail below)."},
	"stepup_not_performed": {Status: http.StatusForbidden,
		Title: "The extra check did not happen",
		What:  "You came back from the sign-in service without the second factor this page needs; asking again would end the same way.",
		Next:  "Ask an admin: the sign-in service is not set up to ask for a second factor (see the README's \"Use your own tenant\")."},
	"login_denied": {Status: http.StatusForbidden,
		Title: "Sign-in refused",
		What:  "The sign-in service refused to sign you in.",
		Next:  "Check that you use the right account, or ask an admin (quote the technical detail below)."},
	"link_used": {Status: http.StatusBadRequest,
		Title: "This sign-in link cannot be used",
		What:  "The sign-in link was already used, has expired, or was started in another browser. Nothing was changed.",
		Next:  "Open the page you wanted again: it starts a new sign-in if one is needed."},
	"cross_site": {Status: http.StatusForbidden,
		Title: "Request refused",
		What:  "A request to change something (to sign you out, or your security settings) did not come from the intranet's own pages: another site can link here, but not act for you. Nothing was changed.",
		Next:  "Use the intranet's own buttons: Sign out in the header, or the security page."},
	"bad_request": {Status: http.StatusBadRequest,
		Title: "The request could not be used",
		What:  "The request that reached the intranet is not one it can act on. Nothing was changed.",
		Next:  "Go back to the start page and try again."},
	"tenant_unavailable": {Status: http.StatusServiceUnavailable,
		Title: "The sign-in service is unavailable",
		What:  "The sign-in service could not be reached. Nothing was let through.",
		Next:  "Please try again in a minute."},
	"store_unavailable": {Status: http.StatusServiceUnavailable,
		Title: "Sessions are unavailable",
		What:  "The intranet cannot read or save sessions at the moment. Nothing was let through.",
		Next:  "Please try again in a minute."},
	"server_error": {Status: http.StatusInternalServerError,
		Title: "Something went wrong on our side",
		What:  "The intranet failed to complete your request.",
		Next:  "Please try again; if it keeps failing, tell an admin the time shown below."},
}

// Each problem's Code is its key in problems.
func init() {
	for code, p := range problems {
		p.Code = code
		problems[code] = p
	}
}

var unknownProblem = problem{Code: "unknown", Status: http.StatusBadRequest,
	Title: "Something went wrong",
	What:  "This page was opened without a reason the intranet knows.",
	Next:  "Go back to the start page and try again."}

// Bounds of what the error page handles.
const (
	maxReasonLen = 32  // /error?reason=
	maxDetailLen = 512 // the technical detail carried to /error
	// detailCookie carries the failed callback's technical detail to the
	// /error page, once (cleared there). It holds only what the page would
	// have shown at the callback: stepup's 4xx messages, which name no token
	// or secret.
	detailCookie = "demo_error_detail"
)

// classify names the problem of err. signedIn tells whether the browser
// still has a session, which turns a tenant's refusal into a refused
// step-up: a signed-in user only goes to the tenant again for one.
func classify(err error, signedIn bool) problem {
	var (
		ae  *stepup.AuthorizeError
		sue *stepup.StepUpError
	)
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return problems["store_unavailable"]
	case errors.Is(err, stepup.ErrTenantUnavailable):
		return problems["tenant_unavailable"]
	case errors.As(err, &ae) && signedIn:
		// Auth0 names no code for "no enrolled factor"; auth0test's
		// description (and Auth0's MFA errors) speak of enrollment.
		if d := strings.ToLower(ae.Description); strings.Contains(d, "enroll") || strings.Contains(d, "no factor") {
			return problems["no_second_factor"]
		}
		return problems["stepup_denied"]
	case errors.As(err, &ae):
		return problems["login_denied"]
	case errors.As(err, &sue) && sue.Reason == stepup.ReasonNotPerformed:
		return problems["stepup_not_performed"]
	case errors.Is(err, stepup.ErrTransactionNotFound), errors.Is(err, stepup.ErrStateMismatch):
		return problems["link_used"]
	case errors.Is(err, stepup.ErrCrossSiteRequest):
		return problems["cross_site"]
	}
	switch status := stepup.ErrorStatus(err); {
	case status == http.StatusServiceUnavailable:
		return problems["tenant_unavailable"]
	case status >= 400 && status < 500:
		return problems["bad_request"]
	}
	return problems["server_error"]
}

// errorPage is the stepup Client's ErrorHandler: the callback's and the
// middleware's failures. A failed callback is redirected (303) to
// /error?reason=CODE, so the address bar never keeps a callback URL that
// cannot work again; a failure of a page (a store that is down, a bad
// return_to) is explained where it happened, since loading that page again
// is what the person should do. The technical detail (stepup's message) is
// shown folded away for 4xx answers only: 5xx messages may name servers.
func (d *demo) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	s, serr := d.client.SessionFromRequest(r)
	p := classify(err, s != nil)
	detail := ""
	if p.Status < 500 {
		detail = truncate(err.Error(), maxDetailLen)
	}
	if r.URL.Path == "/callback" {
		if detail != "" {
			http.SetCookie(w, &http.Cookie{Name: detailCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(detail)),
				Path: "/error", MaxAge: 60, HttpOnly: true, Secure: strings.HasPrefix(d.cfg.BaseURL, "https://"), SameSite: http.SameSiteLaxMode})
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/error?"+url.Values{"reason": {p.Code}}.Encode(), http.StatusSeeOther)
		return
	}
	d.renderProblem(w, r, p, detail, s, serr)
}

// errorRoute serves GET /error?reason=CODE, where failed callbacks land.
func (d *demo) errorRoute(w http.ResponseWriter, r *http.Request) {
	p, ok := problems[r.URL.Query().Get("reason")]
	if !ok || len(r.URL.Query().Get("reason")) > maxReasonLen {
		p = unknownProblem
	}
	detail := ""
	if c, err := r.Cookie(detailCookie); err == nil && len(c.Value) <= base64.RawURLEncoding.EncodedLen(maxDetailLen) {
		if b, err := base64.RawURLEncoding.DecodeString(c.Value); err == nil && utf8.Valid(b) {
			detail = string(b)
		}
		http.SetCookie(w, &http.Cookie{Name: detailCookie, Path: "/error", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	s, serr := d.client.SessionFromRequest(r)
	d.renderProblem(w, r, p, detail, s, serr)
}

func (d *demo) renderProblem(w http.ResponseWriter, r *http.Request, p problem, detail string, s *stepup.Session, serr error) {
	v := d.viewOf(r, s, serr, p.Title)
	v.Problem = &p
	v.Detail = detail
	v.Status = p.Status
	render(w, "error", p.Status, v)
}

// truncate cuts s to at most n bytes on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
