package auth0test

import (
	"html/template"
	"net/http"
)

type link struct{ Href, Text string }

type option struct{ Value, Text string }

type pageData struct {
	Page       string // login, social, otp, consent, error, ciba, logout, logout-confirm, logout-declined, enroll, enrolled
	Title      string
	App        string // the application's name ("" when unknown)
	ConnName   string // the connection's display name
	State      string
	Email      string
	Connection string
	Socials    []link
	Accounts   []option
	Error      string // error code shown on the page (data-error)
	Message    string
	CIBA       []CIBARequest
	OOB        []OOBChallenge
	// enrollment ticket page
	Secret, RecoveryCode string
	OTPAuthURI           template.URL // built by the tenant from its own secret and an escaped label
}

// The hosted pages are plain HTML forms, so that Browser (and people) can drive
// them. data-page and data-error let a program tell the pages apart.
var pages = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} - auth0test</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if eq .Page "ciba"}}<meta http-equiv="refresh" content="3">{{end}}
<style>body{font-family:system-ui,sans-serif;background:#f3f3f6;color:#1e212a;margin:0;padding:3rem 1rem}
main{background:#fff;max-width:25rem;margin:0 auto;padding:2.5rem;border-radius:5px;box-shadow:0 12px 40px rgba(0,0,0,.12)}
h1{font-size:1.5rem;font-weight:400;text-align:center;margin:0 0 .5rem}.lead{text-align:center;color:#65676e}
label,input,select,button,.social{display:block;width:100%;margin:.5rem 0;box-sizing:border-box}
input,select{padding:.8rem;border:1px solid #c9cace;border-radius:3px;font-size:1rem}
button{padding:.8rem;background:#635dff;color:#fff;border:0;border-radius:3px;font-size:1rem;cursor:pointer}
.social{padding:.8rem;border:1px solid #c9cace;border-radius:3px;text-align:center;color:#1e212a;text-decoration:none}
.error{color:#d03c38}code{word-break:break-all}table{width:100%}td form{display:inline}td button{width:auto;display:inline}</style>
</head><body data-page="{{.Page}}"{{if .Error}} data-error="{{.Error}}"{{end}}><main>
<h1>{{.Title}}</h1>
{{if and .App (ne .Page "logout-confirm") (ne .Page "consent")}}<p class="lead" id="app">to continue to {{.App}}</p>{{end}}
{{if .Message}}<p class="error" id="error">{{.Message}}</p>{{end}}
{{if eq .Page "login"}}
<form method="post" action="/u/login">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="connection" value="{{.Connection}}">
<label for="username">Email address</label>
<input id="username" name="username" type="email" value="{{.Email}}" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" name="action" value="default">Continue</button>
</form>
{{range .Socials}}<a class="social" href="{{.Href}}">{{.Text}}</a>{{end}}
{{else if eq .Page "social"}}
<p>Emulated identity provider <strong>{{.ConnName}}</strong>: choose the account to sign in with.</p>
<form method="post" action="/u/social">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="connection" value="{{.Connection}}">
<label for="email">Account</label>
<select id="email" name="email">{{range .Accounts}}<option value="{{.Value}}">{{.Text}}</option>{{end}}</select>
<button type="submit">Sign in</button>
</form>
{{else if eq .Page "otp"}}
<p>Enter the 6-digit code from your authenticator app{{if .Email}} for <strong id="email">{{.Email}}</strong>{{end}}.</p>
<form method="post" action="/u/mfa-otp-challenge">
<input type="hidden" name="state" value="{{.State}}">
<label for="code">Enter your one-time code</label>
<input id="code" name="code" inputmode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code" required>
<button type="submit">Continue</button>
</form>
<p><a id="use-recovery-code" href="/u/mfa-recovery-code-challenge?state={{.State}}">Use a recovery code</a></p>
{{else if eq .Page "recovery"}}
<p>Enter the recovery code you were given when you enrolled.</p>
<form method="post" action="/u/mfa-recovery-code-challenge">
<input type="hidden" name="state" value="{{.State}}">
<label for="recovery_code">Recovery code</label>
<input id="recovery_code" name="recovery_code" autocomplete="off" required>
<button type="submit">Continue</button>
</form>
{{else if eq .Page "recovery-new"}}
<p>Your recovery code was used. Save this new one: it replaces it and is shown once.</p>
<p><code id="recovery-code">{{.RecoveryCode}}</code></p>
<form method="post" action="/u/mfa-recovery-code-challenge">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="action" value="continue">
<button type="submit">I have safely recorded this code</button>
</form>
{{else if eq .Page "consent"}}
<p>{{if .App}}{{.App}}{{else}}The application{{end}} asks for access to your account: <span id="scopes">{{.Email}}</span>.</p>
<form method="post" action="/u/consent">
<input type="hidden" name="state" value="{{.State}}">
<button type="submit" name="action" value="accept">Accept</button>
<button type="submit" name="action" value="deny">Decline</button>
</form>
{{else if eq .Page "ciba"}}
{{if .CIBA}}<table><tr><th>User</th><th>Binding message</th><th>Scope</th><th></th></tr>
{{range .CIBA}}<tr><td>{{.UserID}}</td><td>{{.BindingMessage}}</td><td>{{.Scope}}</td><td>
<form method="post" action="/auth0test/ciba"><input type="hidden" name="auth_req_id" value="{{.AuthReqID}}"><button name="decision" value="approve">Approve</button></form>
<form method="post" action="/auth0test/ciba"><input type="hidden" name="auth_req_id" value="{{.AuthReqID}}"><button name="decision" value="deny">Deny</button></form>
</td></tr>{{end}}</table>{{else}}<p id="empty">No pending requests.</p>{{end}}
{{if .OOB}}<h2>MFA push challenges</h2><table><tr><th>User</th><th></th></tr>
{{range .OOB}}<tr><td>{{.UserID}}</td><td>
<form method="post" action="/auth0test/ciba"><input type="hidden" name="oob_code" value="{{.OOBCode}}"><button name="decision" value="approve">Approve</button></form>
<form method="post" action="/auth0test/ciba"><input type="hidden" name="oob_code" value="{{.OOBCode}}"><button name="decision" value="deny">Deny</button></form>
</td></tr>{{end}}</table>{{end}}
{{else if eq .Page "error"}}
<p id="code">{{.Error}}</p>
{{else if eq .Page "logout"}}
<p>You are logged out.</p>
{{else if eq .Page "logout-confirm"}}
<p>Do you want to log out{{if .App}} of {{.App}}{{end}}?</p>
<form method="post" action="/u/logout">
<input type="hidden" name="state" value="{{.State}}">
<button type="submit" name="action" value="accept">Yes, log me out</button>
</form>
<form method="post" action="/u/logout">
<input type="hidden" name="state" value="{{.State}}">
<button type="submit" name="action" value="deny">No, stay logged in</button>
</form>
{{else if eq .Page "logout-declined"}}
<p>You are still logged in.</p>
{{else if eq .Page "enroll"}}
<p>Scan the code with your authenticator app{{if .Email}} to secure <strong id="email">{{.Email}}</strong>{{end}}, or enter this key by hand:</p>
<p><code id="secret" data-secret="{{.Secret}}">{{.Secret}}</code></p>
<p><a id="otpauth" href="{{.OTPAuthURI}}">Open in your authenticator app</a></p>
<form method="post" action="/u/guardian/enroll">
<input type="hidden" name="ticket" value="{{.State}}">
<label for="code">Enter the 6-digit code it shows</label>
<input id="code" name="code" inputmode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code" required>
<button type="submit">Continue</button>
</form>
{{else if eq .Page "enrolled"}}
<p>Your authenticator app is enrolled.</p>
{{if .RecoveryCode}}<p>Save this recovery code: you will need it if you lose your device. It is shown once.</p>
<p><code id="recovery-code">{{.RecoveryCode}}</code></p>{{end}}
{{end}}
</main></body></html>
`))

func renderPage(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "deny")
	w.WriteHeader(status)
	_ = pages.Execute(w, d)
}
