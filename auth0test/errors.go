package auth0test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Errors returned by Browser.Login (assert with errors.Is / errors.As).
var (
	// ErrLoginFailed: the hosted login page rejected the email or password.
	ErrLoginFailed = errors.New("auth0test: wrong email or password")
	// ErrOTPRejected: the OTP page rejected the code.
	ErrOTPRejected = errors.New("auth0test: invalid OTP code")
	// ErrMFARequired: the tenant showed the OTP page and Credentials.SkipOTP was set.
	ErrMFARequired = errors.New("auth0test: the tenant asked for a second factor")
	// ErrUnexpectedPage: the tenant answered with something the Browser cannot follow.
	ErrUnexpectedPage = errors.New("auth0test: unexpected response from the tenant")
)

// PageError is an error page of the tenant (an authorization request it refused
// before it could redirect to a callback URL: unknown client, callback URL
// mismatch, unknown or expired PAR request_uri...).
type PageError struct {
	Status      int    // HTTP status of the page
	Code        string // OAuth error code, e.g. "invalid_request"
	Description string
}

func (e *PageError) Error() string {
	return fmt.Sprintf("auth0test: error page %d %s: %s", e.Status, e.Code, e.Description)
}

// oauthError is an error answered with Auth0's JSON shape.
type oauthError struct {
	status      int
	code        string
	description string
	extra       map[string]any
	header      map[string]string
}

func (e *oauthError) Error() string { return e.code + ": " + e.description }

func newErr(status int, code, description string) *oauthError {
	return &oauthError{status: status, code: code, description: description}
}

func invalidRequest(description string) *oauthError {
	return newErr(http.StatusBadRequest, "invalid_request", description)
}

func (e *oauthError) write(w http.ResponseWriter) {
	for k, v := range e.header {
		w.Header().Set(k, v)
	}
	body := map[string]any{"error": e.code, "error_description": e.description}
	for k, v := range e.extra {
		body[k] = v
	}
	writeJSON(w, e.status, body)
}

func writeError(w http.ResponseWriter, status int, code, description string) {
	newErr(status, code, description).write(w)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"server_error","error_description":"encoding failed"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	// A handler's own caching policy (the JWKS's) wins; everything else is
	// not to be stored.
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
