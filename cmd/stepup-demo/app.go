package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
)

// routes is the demo's HTTP surface (a contract: other tools drive it).
func (d *demo) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.home)
	mux.Handle("GET /customers", d.client.RequireLogin(http.HandlerFunc(d.customers)))
	mux.Handle("GET /employees", d.client.RequireStepUp(d.pagePol)(http.HandlerFunc(d.employees)))
	mux.Handle("GET /login", d.client.LoginHandler())
	mux.Handle("GET /callback", d.client.CallbackHandler())
	mux.HandleFunc("GET /error", d.errorRoute)
	mux.Handle("GET /logout", d.client.LogoutHandler())  // a sign-out button
	mux.Handle("POST /logout", d.client.LogoutHandler()) // signs out: the app's own pages only
	mux.Handle("POST "+backChannelPath, d.client.BackChannelLogoutHandler())
	if d.verifier != nil {
		mux.Handle("GET /api/employees", d.verifier.Require(d.apiPolicy)(http.HandlerFunc(d.apiEmployees)))
	} else {
		mux.HandleFunc("GET /api/employees", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "not_configured",
				"error_description": "set AUTH0_AUDIENCE to the API identifier to enable the salary API"})
		})
	}
	if d.tenant != nil {
		mux.HandleFunc("GET /demo/otp", d.demoOTP)
	}
	d.security.routes(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	return d.logRequests(mux)
}

// home is public: it shows who is signed in, if anyone.
func (d *demo) home(w http.ResponseWriter, r *http.Request) {
	s, err := d.client.SessionFromRequest(r)
	render(w, "home", http.StatusOK, d.viewOf(r, s, err, "Home"))
}

// viewOf is view for a public page that loaded its session itself: when the
// session could not be read (the store is down), the header says that the
// sign-in service is unavailable rather than "not signed in".
func (d *demo) viewOf(r *http.Request, s *stepup.Session, err error, title string) view {
	v := d.view(s, title)
	if err != nil && !errors.Is(err, stepup.ErrNoSession) {
		d.log.WarnContext(r.Context(), "stepup-demo: loading the session", "path", r.URL.Path, "error", err)
		v.SessionUnavailable = true
	}
	return v
}

func (d *demo) customers(w http.ResponseWriter, r *http.Request) {
	s, _ := stepup.SessionFromContext(r.Context())
	v := d.view(s, "Customers")
	v.Customers = customers
	render(w, "customers", http.StatusOK, v)
}

// employees is the salary page: the session passed the MFA policy; the page
// also calls the salary API with the session's access token for the API
// (stepup.APIClient). When the API answers with an RFC 9470 challenge, or
// the session holds no token for it, the page sends the user through exactly
// the step-up the API asks for (Client.StepUp) and comes back here, which
// calls the API again with the new token. If the API still refuses the token
// of that very step-up (a tenant without the claims Action), the page shows
// the API's answer instead of looping.
func (d *demo) employees(w http.ResponseWriter, r *http.Request) {
	s, _ := stepup.SessionFromContext(r.Context())
	v := d.view(s, "Salaries")
	v.Employees = employees
	res, need := d.callAPI(r, s)
	if need != nil {
		err := d.client.StepUp(w, r, need.AuthorizeOptions)
		if err == nil {
			d.log.InfoContext(r.Context(), "stepup-demo: the salary API asked for a step-up", "reason", need.Error())
			return
		}
		if !errors.Is(err, stepup.ErrStepUpLoop) {
			d.errorPage(w, r, err)
			return
		}
		d.log.WarnContext(r.Context(), "stepup-demo: the salary API refuses the token of the step-up it asked for", "error", err)
	}
	v.API = res
	render(w, "employees", http.StatusOK, v)
}

// callAPI calls /api/employees for the session. It returns what to show,
// and the *StepUpNeededError when the user must go through the tenant first.
func (d *demo) callAPI(r *http.Request, s *stepup.Session) (*apiResult, *stepup.StepUpNeededError) {
	if d.api == nil {
		return &apiResult{Err: "no API audience configured (AUTH0_AUDIENCE)"}, nil
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, d.apiURL, nil)
	if err != nil {
		return &apiResult{Err: "building the request failed"}, nil
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.api.Do(s, req)
	var need *stepup.StepUpNeededError
	switch {
	case errors.As(err, &need) && need.Challenge != nil:
		return &apiResult{Status: http.StatusUnauthorized, Challenge: need.Challenge.String()}, need
	case need != nil:
		return &apiResult{Err: "the session holds no usable access token for the API"}, need
	case err != nil:
		d.log.WarnContext(r.Context(), "stepup-demo: calling the salary API", "error", err)
		return &apiResult{Err: "the API could not be reached"}, nil
	}
	defer resp.Body.Close()
	res := &apiResult{Status: resp.StatusCode, Challenge: resp.Header.Get("WWW-Authenticate")}
	if resp.StatusCode == http.StatusOK {
		var body apiBody
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
			res.Err = "unreadable answer"
		}
		res.Employees = body.Employees
	}
	return res, nil
}

// apiBody is /api/employees' answer.
type apiBody struct {
	Subject   string     `json:"subject"`
	Employees []employee `json:"employees"`
}

// apiEmployees serves the salary API to a token that passed the API policy.
func (d *demo) apiEmployees(w http.ResponseWriter, r *http.Request) {
	tok, _ := stepup.AccessTokenFromContext(r.Context())
	writeJSON(w, http.StatusOK, apiBody{Subject: tok.Subject, Employees: employees})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// demoOTP shows the demo user's current one-time code: it plays the
// authenticator app. Only with the embedded tenant.
func (d *demo) demoOTP(w http.ResponseWriter, r *http.Request) {
	v := d.view(nil, "One-time code")
	v.User = auth0test.AliceEmail
	v.Message = d.tenant.OTP(auth0test.AliceEmail)
	render(w, "otp", http.StatusOK, v)
}

// view fills what every page shows about the visitor.
func (d *demo) view(s *stepup.Session, title string) view {
	v := view{Title: title, Now: d.now()}
	if d.tenant != nil {
		v.DemoTenant = d.tenant.URL()
	}
	if s == nil {
		return v
	}
	v.SignedIn = true
	v.Subject = s.Subject
	v.User = s.Name
	if v.User == "" {
		v.User = s.Email
	}
	if v.User == "" {
		v.User = s.Subject
	}
	v.ACR, v.AMR, v.AuthTime = s.Authentication.ACR, s.Authentication.AMR, s.Authentication.AuthTime
	if until, ok := s.StepUpValidUntil(d.client.PolicyFor(d.pagePol, s.Connection)); ok {
		v.StepUpUntil = until
	}
	v.StepUpValid = d.client.CheckSession(s, d.pagePol) == nil
	return v
}

// logRequests logs one line per request: method, path (never the query,
// which carries authorization codes), status and duration.
func (d *demo) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		d.log.InfoContext(r.Context(), "http", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration", time.Since(start).Round(time.Microsecond).String())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
