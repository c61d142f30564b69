package main

import (
	"html/template"
	"net/http"
	"strconv"
	"time"
)

// view is what every page shows about the visitor.
type view struct {
	Title    string
	SignedIn bool
	User     string // name or email, else subject
	Subject  string
	ACR      string
	AMR      []string
	AuthTime time.Time
	// StepUpUntil is when the session's MFA stops satisfying /employees'
	// policy; zero when the session has no MFA.
	StepUpUntil time.Time
	StepUpValid bool
	DemoTenant  string // the embedded tenant's URL, for the demo aids
	Now         time.Time

	Customers []customer
	Employees []employee
	API       *apiResult
	Message   string
	Status    int
	// SessionUnavailable: the session could not be read (the store is
	// down); the header says so instead of "not signed in".
	SessionUnavailable bool
	Problem            *problem // the error page's explanation
	Detail             string   // the error page's technical detail, folded away
}

type customer struct{ Name, City, Since string }
type employee struct {
	Name   string `json:"name"`
	Role   string `json:"role"`
	Salary int    `json:"salary"`
}

// apiResult is what the salary page learned by calling /api/employees
// with the session's access token.
type apiResult struct {
	Status    int
	Challenge string
	Employees []employee
	Err       string
}

var pages = template.Must(template.New("layout").Funcs(template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"money": func(n int) string {
		var s []byte
		d := strconv.Itoa(n)
		for i := range len(d) {
			if i > 0 && (len(d)-i)%3 == 0 {
				s = append(s, ',')
			}
			s = append(s, d[i])
		}
		return "$" + string(s)
	},
}).Parse(`{{define "top"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Fabrikam intranet</title>
<style>
body{font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2530;background:#f5f7fa}
header{background:#1f3a5f;color:#fff;padding:.8rem 1.5rem;display:flex;gap:1.5rem;align-items:center}
header a{color:#fff;text-decoration:none}header .brand{font-weight:700;margin-right:auto}
main{max-width:52rem;margin:1.5rem auto;padding:0 1.5rem}
.card{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eef1f4}
.ok{color:#17693a}.warn{color:#9a5b00}.err{color:#a11}code{font-size:.9em;word-break:break-all}
button{font:inherit;padding:.35rem .9rem;border-radius:6px;border:1px solid #c33;background:#fff;color:#a11;cursor:pointer}
.aid{border-left:4px solid #e0a800;background:#fffbe6}
</style></head><body>
<header><a class="brand" href="/">Fabrikam intranet</a><a href="/customers">Customers</a><a href="/employees">Salaries</a><a href="/account/security" id="security-link">Security</a>
{{if .SignedIn}}<span id="who">{{.User}}</span><form method="post" action="/logout" style="margin:0"><button id="signout" type="submit">Sign out</button></form>{{else if .SessionUnavailable}}<span id="who">sign-in unavailable</span>{{else}}<span id="who">not signed in</span>{{end}}
</header><main>{{end}}

{{define "bottom"}}
{{if .SignedIn}}<div class="card" id="session"><h3>Your session</h3><table>
<tr><th>Subject</th><td><code>{{.Subject}}</code></td></tr>
<tr><th>acr</th><td><code id="acr">{{if .ACR}}{{.ACR}}{{else}}—{{end}}</code></td></tr>
<tr><th>amr</th><td><code id="amr">{{range $i, $m := .AMR}}{{if $i}}, {{end}}{{$m}}{{else}}—{{end}}</code></td></tr>
<tr><th>auth_time</th><td id="auth_time">{{ts .AuthTime}}</td></tr>
<tr><th>Step-up valid until</th><td id="stepup_until">{{if .StepUpValid}}<span class="ok">{{ts .StepUpUntil}}</span>{{else if not .StepUpUntil.IsZero}}<span class="warn">expired {{ts .StepUpUntil}}</span>{{else}}<span class="warn">no MFA in this session</span>{{end}}</td></tr>
</table></div>{{end}}
{{if .DemoTenant}}<div class="card aid"><strong>Demo aid</strong> (embedded dev tenant only): the current one-time code is on
<a href="/demo/otp" id="otp-link">/demo/otp</a>. A real deployment has no such page.</div>{{end}}
</main></body></html>{{end}}

{{define "home"}}{{template "top" .}}
<h1>Welcome to the Fabrikam intranet</h1>
<div class="card"><p><a href="/customers">Customer data</a> needs a login.</p>
<p><a href="/employees">Salary data</a> needs a multi-factor authentication no older than the policy allows.</p></div>
{{template "bottom" .}}{{end}}

{{define "customers"}}{{template "top" .}}
<h1 id="title">Customers</h1>
<div class="card"><table><tr><th>Customer</th><th>City</th><th>Since</th></tr>
{{range .Customers}}<tr><td>{{.Name}}</td><td>{{.City}}</td><td>{{.Since}}</td></tr>{{end}}</table></div>
{{template "bottom" .}}{{end}}

{{define "employees"}}{{template "top" .}}
<h1 id="title">Salaries</h1>
<div class="card"><table><tr><th>Employee</th><th>Role</th><th>Salary</th></tr>
{{range .Employees}}<tr><td>{{.Name}}</td><td>{{.Role}}</td><td>{{money .Salary}}</td></tr>{{end}}</table></div>
{{with .API}}<div class="card" id="api"><h3>From the salary API</h3>
{{if eq .Status 200}}<p class="ok" id="api-status" data-status="200">GET /api/employees answered 200 to the session's access token: {{len .Employees}} records.</p>
{{else if eq .Status 0}}<p class="warn" id="api-status" data-status="0">The salary API was not called: {{.Err}}.</p>
{{else}}<p class="warn" id="api-status" data-status="{{.Status}}">GET /api/employees answered {{.Status}}{{if .Challenge}}: <code>{{.Challenge}}</code>{{end}}{{if .Err}} ({{.Err}}){{end}}</p>
<p><a href="/employees">Try again</a> (an RFC 9470 challenge sends you through the step-up it asks for).</p>{{end}}
</div>{{end}}
{{template "bottom" .}}{{end}}

{{define "error"}}{{template "top" .}}
{{with .Problem}}<h1 id="title">{{.Title}}</h1><div class="card" id="problem" data-reason="{{.Code}}">
<p id="message">{{.What}}</p>
<p id="next"><strong>What to do next:</strong> {{.Next}}</p>{{end}}
{{if .SignedIn}}<p id="still">You are signed in as <strong>{{.User}}</strong>.</p>{{else if .SessionUnavailable}}<p id="still">Your session cannot be checked right now.</p>{{end}}
<p><a href="/">Back to the start page</a>{{if .SignedIn}} · <a href="/customers">Customer data</a>{{end}}</p>
<details id="detail"><summary>Technical detail</summary><p>Status {{.Status}}{{with .Problem}}, reason <code>{{.Code}}</code>{{end}}, at {{ts .Now}}.</p>
{{if .Detail}}<p><code id="detail-text">{{.Detail}}</code></p>{{else}}<p>The server's log has the rest.</p>{{end}}</details></div>
{{template "bottom" .}}{{end}}

{{define "otp"}}{{template "top" .}}
<h1 id="title">Demo aid: one-time code</h1>
<div class="card aid"><p>This page exists only with the embedded dev tenant. It plays the part of the authenticator app on the demo user's phone.</p>
<p>Current code for <strong>{{.User}}</strong>: <code id="otp" style="font-size:1.6em">{{.Message}}</code> (changes every 30 seconds)</p></div>
</main></body></html>{{end}}
`))

func render(w http.ResponseWriter, name string, status int, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https:; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, name, v)
}

var customers = []customer{
	{"Contoso Ltd.", "Seattle", "2019"},
	{"Northwind Traders", "London", "2021"},
	{"Tailspin Toys", "Lyon", "2024"},
}

var employees = []employee{
	{"Alice Fabrikam", "Head of Finance", 142000},
	{"Bob Fabrikam", "Engineer", 118500},
	{"Chen Wei", "Designer", 97250},
}
