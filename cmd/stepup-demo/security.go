package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/internal/qr"
)

// security is the user's own MFA settings page, /account/security: Auth0's
// guardian-example in Go. Reading it needs a login; every change is a POST
// from this site that needs an MFA no older than STEPUP_SETTINGS_MAX_AGE.
// Without one, the change is kept in the return path of a step-up
// (/account/security/confirm?action=...), whose page asks the user to
// confirm it with a new POST once the step-up is done.
type security struct {
	d       *demo
	factors *stepup.Factors
	pol     stepup.Policy
}

func newSecurity(d *demo) (*security, error) {
	f, err := d.client.Factors(stepup.FactorsConfig{})
	if err != nil {
		return nil, badConfig("the security page: %v", err)
	}
	return &security{d: d, factors: f, pol: stepup.MFA.WithMaxAge(d.cfg.SettingsAge).Named("settings")}, nil
}

func (sc *security) routes(mux *http.ServeMux) {
	c := sc.d.client
	mux.Handle("GET /account/security", c.RequireLogin(http.HandlerFunc(sc.page)))
	mux.Handle("POST /account/security", c.RequireLogin(http.HandlerFunc(sc.change)))
	mux.Handle("GET /account/security/confirm", c.RequireStepUp(sc.pol)(http.HandlerFunc(sc.confirm)))
}

// securityView is what the security page shows.
type securityView struct {
	Page       view // what every page shows
	Factors    []stepup.Factor
	AlwaysMFA  bool
	Until      time.Time // changes allowed until; zero when a step-up is needed first
	Done       string
	Error      string
	Recovery   string                 // a new recovery code, shown once
	TOTP       *stepup.TOTPEnrollment // an enrollment to confirm
	QR         template.URL           // its otpauth URI as a QR code (a data: PNG)
	Pending    *pendingChange         // the confirmation page's change
	ReadFailed bool
}

// pendingChange is a change from the form: the action and its argument.
type pendingChange struct {
	Action string
	ID     string
	On     string
}

// actions the form may ask for, with what the confirmation page says.
var securityActions = map[string]string{
	"remove":         "Remove the authentication method",
	"totp":           "Add an authenticator app",
	"totp-confirm":   "Confirm the authenticator app",
	"ticket":         "Enroll a factor on the tenant's page",
	"recovery":       "Make a new recovery code (the old one stops working)",
	"always":         "Change \"always ask for MFA at sign-in\"",
	"forget":         "Forget the browsers that skip MFA",
	"signout-others": "Sign out my other sessions",
}

func readPending(v url.Values) (*pendingChange, bool) {
	p := &pendingChange{Action: v.Get("action"), ID: v.Get("id"), On: v.Get("on")}
	if _, ok := securityActions[p.Action]; !ok || len(p.ID) > 128 || (p.On != "" && p.On != "1" && p.On != "0") {
		return nil, false
	}
	return p, true
}

func (p *pendingChange) query() string {
	q := url.Values{"action": {p.Action}}
	if p.ID != "" {
		q.Set("id", p.ID)
	}
	if p.On != "" {
		q.Set("on", p.On)
	}
	return q.Encode()
}

// Describe is the confirmation page's sentence: it says which way a switch
// goes.
func (p *pendingChange) Describe() string {
	if p.Action == "always" {
		if p.On == "1" {
			return "Turn ON \"always ask for MFA at sign-in\""
		}
		return "Turn OFF \"always ask for MFA at sign-in\" (MFA only where a page needs it)"
	}
	return securityActions[p.Action]
}

// pendingCookie binds a change waiting for its step-up to the session and
// the browser that asked for it with a same-origin POST: the confirmation
// page offers a change only with this cookie, so a link from another site
// (which can name any change in the query) gets no confirmation button.
const pendingCookie = "demo_security_pending"

func pendingMark(s *stepup.Session, p *pendingChange) string {
	h := sha256.Sum256([]byte("stepup-demo pending change\x00" + s.Handle + "\x00" + p.query()))
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

func (sc *security) setPending(w http.ResponseWriter, s *stepup.Session, p *pendingChange) {
	http.SetCookie(w, &http.Cookie{Name: pendingCookie, Value: pendingMark(s, p), Path: "/account/security",
		MaxAge: 600, HttpOnly: true, Secure: strings.HasPrefix(sc.d.cfg.BaseURL, "https://"), SameSite: http.SameSiteLaxMode})
}

// isPending reports whether p is the change this browser's session asked
// for (setPending).
func isPending(r *http.Request, s *stepup.Session, p *pendingChange) bool {
	ck, err := r.Cookie(pendingCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(ck.Value), []byte(pendingMark(s, p))) == 1
}

func (sc *security) view(r *http.Request, s *stepup.Session) securityView {
	v := securityView{Page: sc.d.view(s, "Security")}
	if sc.d.client.CheckSession(s, sc.pol) == nil {
		ev := s.StepUp
		if s.StepUpAt.IsZero() {
			ev = s.Authentication
		}
		if until, ok := sc.pol.ValidUntil(ev.AuthTime); ok {
			v.Until = until
		}
	}
	list, err := sc.factors.List(r.Context(), s)
	if err == nil {
		v.Factors = list
		v.AlwaysMFA, err = sc.factors.AlwaysMFA(r.Context(), s)
	}
	if err != nil {
		sc.d.log.WarnContext(r.Context(), "stepup-demo: reading the security settings", "error", err)
		v.ReadFailed = true
	}
	switch r.URL.Query().Get("done") {
	case "removed":
		v.Done = "The authentication method was removed."
	case "enrolled":
		v.Done = "The authenticator app was added."
	case "always":
		v.Done = "Your sign-in preference was saved."
	case "forgot":
		v.Done = "Remembered browsers were forgotten."
	case "signedout":
		v.Done = "Your other sessions were signed out."
	}
	return v
}

func (sc *security) page(w http.ResponseWriter, r *http.Request) {
	s, _ := stepup.SessionFromContext(r.Context())
	renderSecurity(w, http.StatusOK, sc.view(r, s))
}

func (sc *security) change(w http.ResponseWriter, r *http.Request) {
	if err := sc.d.client.CheckSameOrigin(r); err != nil {
		sc.d.errorPage(w, r, err) // the cross_site page: nothing changed
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	p, ok := readPending(r.PostForm)
	if !ok {
		http.Error(w, "unknown change", http.StatusBadRequest)
		return
	}
	s, _ := stepup.SessionFromContext(r.Context())
	if sc.d.client.CheckSession(s, sc.pol) != nil {
		// Step up first; the confirmation page finishes the change.
		sc.setPending(w, s, p)
		http.Redirect(w, r, "/account/security/confirm?"+p.query(), http.StatusSeeOther)
		return
	}
	sc.apply(w, r, s, p, r.PostForm.Get("code"))
}

// confirm is reached after the step-up: it shows the pending change with a
// button that POSTs it.
func (sc *security) confirm(w http.ResponseWriter, r *http.Request) {
	p, ok := readPending(r.URL.Query())
	s, _ := stepup.SessionFromContext(r.Context())
	if !ok || !isPending(r, s, p) {
		// Not a change this session asked for (a link from elsewhere):
		// the plain page, no confirmation button.
		http.Redirect(w, r, "/account/security", http.StatusSeeOther)
		return
	}
	v := sc.view(r, s)
	v.Pending = p
	renderSecurity(w, http.StatusOK, v)
}

func (sc *security) apply(w http.ResponseWriter, r *http.Request, s *stepup.Session, p *pendingChange, code string) {
	ctx := r.Context()
	f := sc.factors
	var err error
	done := ""
	switch p.Action {
	case "remove":
		err, done = f.Remove(ctx, s, sc.pol, p.ID), "removed"
	case "totp":
		var e *stepup.TOTPEnrollment
		e, err = f.StartTOTP(ctx, s, sc.pol)
		if errors.Is(err, stepup.ErrNoMFAToken) {
			// A login for the MFA API's audience, back to the confirmation:
			// a step-up when the user has a factor to prove; without one (the
			// tenant could not ask for it) the session's own fresh step-up,
			// checked above, is the proof.
			pol := stepup.Policy{}
			if sc.hasFactor(r, s) {
				pol = sc.pol
			}
			sc.setPending(w, s, p) // the confirmation after that login offers this change
			if err = sc.d.client.StepUp(w, r, f.MFAAuthorizeOptions(pol, "/account/security/confirm?"+p.query())); err == nil {
				return
			}
		}
		if err == nil {
			v := sc.view(r, s)
			v.TOTP = e
			if code, qerr := qr.Encode([]byte(e.URI)); qerr == nil {
				if img, qerr := code.PNG(5); qerr == nil {
					v.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(img))
				}
			}
			renderSecurity(w, http.StatusOK, v)
			return
		}
	case "totp-confirm":
		err, done = f.ConfirmTOTP(ctx, s, sc.pol, code), "enrolled"
	case "ticket":
		var ticket string
		if ticket, err = f.EnrollmentTicket(ctx, s, sc.pol, "otp"); err == nil {
			http.Redirect(w, r, ticket, http.StatusSeeOther)
			return
		}
	case "recovery":
		var rc string
		if rc, err = f.RegenerateRecoveryCode(ctx, s, sc.pol); err == nil {
			v := sc.view(r, s)
			v.Recovery = rc // shown once: never logged, never stored
			renderSecurity(w, http.StatusOK, v)
			return
		}
	case "always":
		err, done = f.SetAlwaysMFA(ctx, s, sc.pol, p.On == "1"), "always"
	case "forget":
		err, done = f.ForgetBrowsers(ctx, s, sc.pol), "forgot"
	case "signout-others":
		_, err = sc.d.client.LogoutOtherSessions(ctx, s)
		done = "signedout"
	}
	if err != nil {
		sc.d.log.WarnContext(ctx, "stepup-demo: security change refused", "action", p.Action, "error", err)
		v := sc.view(r, s)
		v.Error = "The change could not be made."
		var te *stepup.TenantError
		switch {
		case errors.Is(err, stepup.ErrFactorNotFound):
			v.Error = "That authentication method is not one of yours."
		case errors.As(err, &te) && te.Code == "invalid_grant":
			v.Error = "That code is not right: try the current code of the app."
		case errors.Is(err, stepup.ErrStepUpRequired):
			v.Error = "This change needs a fresh multi-factor authentication."
		}
		renderSecurity(w, http.StatusUnprocessableEntity, v)
		return
	}
	http.Redirect(w, r, "/account/security?done="+done, http.StatusSeeOther)
}

// hasFactor reports whether the user has a confirmed second factor other
// than a recovery code.
func (sc *security) hasFactor(r *http.Request, s *stepup.Session) bool {
	list, err := sc.factors.List(r.Context(), s)
	if err != nil {
		return true // ask for MFA: the stricter choice
	}
	for _, f := range list {
		if f.Confirmed && f.Type != "recovery-code" && f.Type != "password" {
			return true
		}
	}
	return false
}

func renderSecurity(w http.ResponseWriter, status int, v securityView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self' https:; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = securityPage.Execute(w, v)
}

var securityPage = template.Must(template.Must(pages.Clone()).New("security").Funcs(template.FuncMap{
	// otpauth marks the enrollment's URI (checked by Factors.StartTOTP to be
	// otpauth://) as a safe link; html/template refuses unknown schemes.
	"otpauth": func(u string) template.URL {
		if !strings.HasPrefix(u, "otpauth://") {
			return "#"
		}
		return template.URL(u)
	},
	"hm": func(t time.Time) string { return t.UTC().Format("15:04") + " UTC" },
	"day": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04")
	},
}).Parse(`{{template "top" .Page}}
<h1 id="title">Security</h1>
{{if .Done}}<p class="ok card" id="done">{{.Done}}</p>{{end}}
{{if .Error}}<p class="err card" id="error">{{.Error}}</p>{{end}}
<p id="until">{{if .Until.IsZero}}<span class="warn">Changes need a fresh multi-factor authentication: you will be asked for one.</span>{{else}}<span class="ok">Changes allowed until {{hm .Until}}.</span>{{end}}</p>
{{with .Pending}}<div class="card" id="pending"><h3>Confirm the change</h3><p>{{.Describe}}{{if .ID}} (<code>{{.ID}}</code>){{end}}?</p>
<form method="post" action="/account/security"><input type="hidden" name="action" value="{{.Action}}">{{if .ID}}<input type="hidden" name="id" value="{{.ID}}">{{end}}{{if .On}}<input type="hidden" name="on" value="{{.On}}">{{end}}
<button id="confirm" type="submit">Confirm</button> <a href="/account/security">Cancel</a></form></div>{{end}}
{{with .Recovery}}<div class="card aid" id="recovery"><h3>Your new recovery code</h3><p>Write it down now: it is shown once. <code id="recovery-code" style="font-size:1.3em">{{.}}</code></p></div>{{end}}
{{with .TOTP}}<div class="card" id="totp"><h3>Add an authenticator app</h3>
{{if $.QR}}<p><img id="totp-qr" alt="QR code of the key" src="{{$.QR}}"></p>{{end}}
<p>Scan it with your authenticator app, or open this link on the phone: <a id="otpauth" style="word-break:break-all" href="{{otpauth .URI}}">{{.URI}}</a></p>
<p>Or type the key: <code id="totp-secret">{{.Secret}}</code></p>
<form method="post" action="/account/security"><input type="hidden" name="action" value="totp-confirm">
<label>Code from the app <input id="totp-code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="8"></label> <button id="totp-submit" type="submit">Confirm</button></form></div>{{end}}
<div class="card" id="factors"><h3>Your authentication methods</h3>
{{if .ReadFailed}}<p class="warn">Your settings cannot be read right now.</p>{{else}}
<table><tr><th>Type</th><th>Name</th><th>Enrolled</th><th>Last used</th><th></th></tr>
{{range .Factors}}<tr data-type="{{.Type}}" data-id="{{.ID}}"><td>{{.Type}}</td><td>{{if .Name}}{{.Name}}{{else}}—{{end}}</td><td>{{day .CreatedAt}}</td><td>{{day .LastAuthAt}}</td>
<td><form method="post" action="/account/security" style="margin:0"><input type="hidden" name="action" value="remove"><input type="hidden" name="id" value="{{.ID}}"><button class="remove" type="submit">Remove</button></form></td></tr>
{{else}}<tr><td colspan="5">No second factor: add one below.</td></tr>{{end}}</table>{{end}}
<form method="post" action="/account/security" style="display:inline"><input type="hidden" name="action" value="totp"><button id="add-totp" type="submit">Add an authenticator app</button></form>
<form method="post" action="/account/security" style="display:inline"><input type="hidden" name="action" value="recovery"><button id="regen-recovery" type="submit">New recovery code</button></form></div>
<div class="card" id="prefs"><h3>Sign-in</h3>
<form method="post" action="/account/security"><input type="hidden" name="action" value="always"><input type="hidden" name="on" value="{{if .AlwaysMFA}}0{{else}}1{{end}}">
<p>Always ask for MFA at sign-in: <strong id="always-state">{{if .AlwaysMFA}}on{{else}}off{{end}}</strong> <button id="always" type="submit">Turn {{if .AlwaysMFA}}off{{else}}on{{end}}</button></p></form>
<form method="post" action="/account/security"><input type="hidden" name="action" value="forget"><button id="forget" type="submit">Forget remembered browsers</button></form>
<form method="post" action="/account/security"><input type="hidden" name="action" value="signout-others"><button id="signout-others" type="submit">Sign out my other sessions</button></form></div>
{{template "bottom" .Page}}`))
