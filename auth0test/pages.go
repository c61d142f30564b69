package auth0test

import (
	"html/template"
	"net/http"
)

type link struct{ Href, Text string }

type option struct{ Value, Text string }

type pageData struct {
	Page       string // login, social, otp, error, ciba, logout, logout-confirm, logout-declined
	Title      string
	State      string
	Email      string
	Connection string
	Socials    []link
	Accounts   []option
	Error      string // error code shown on the page (data-error)
	Message    string
	CIBA       []CIBARequest
	OOB        []OOBChallenge
}

// The hosted pages are plain HTML forms, so that Browser (and people) can drive
// them. data-page and data-error let a program tell the pages apart.
var pages = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} - auth0test</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if eq .Page "ciba"}}<meta http-equiv="refresh" content="3">{{end}}
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}
label,input,select,button{display:block;width:100%;margin:.4rem 0;box-sizing:border-box}
input,select{padding:.5rem}button{padding:.6rem;background:#635dff;color:#fff;border:0;border-radius:4px}
.error{color:#b00020}table{width:100%}td form{display:inline}td button{width:auto;display:inline}</style>
</head><body data-page="{{.Page}}"{{if .Error}} data-error="{{.Error}}"{{end}}>
<h1>{{.Title}}</h1>
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
{{range .Socials}}<p><a class="social" href="{{.Href}}">{{.Text}}</a></p>{{end}}
{{else if eq .Page "social"}}
<p>Emulated identity provider <strong>{{.Connection}}</strong>: choose the account to sign in with.</p>
<form method="post" action="/u/social">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="connection" value="{{.Connection}}">
<label for="email">Account</label>
<select id="email" name="email">{{range .Accounts}}<option value="{{.Value}}">{{.Text}}</option>{{end}}</select>
<button type="submit">Sign in</button>
</form>
{{else if eq .Page "otp"}}
<p>Enter the 6-digit code from your authenticator app.</p>
<form method="post" action="/u/mfa-otp-challenge">
<input type="hidden" name="state" value="{{.State}}">
<label for="code">Enter your one-time code</label>
<input id="code" name="code" inputmode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code" required>
<button type="submit">Continue</button>
</form>
{{else if eq .Page "consent"}}
<p>The application asks for access to your account: <span id="scopes">{{.Email}}</span>.</p>
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
<p>Do you want to log out of this tenant?</p>
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
{{end}}
</body></html>
`))

func renderPage(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "deny")
	w.WriteHeader(status)
	_ = pages.Execute(w, d)
}
