package stepup

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Callers branch on them with errors.Is; the typed errors
// below carry the details and match the relevant sentinel.
var (
	// ErrStepUpRequired matches every *StepUpError.
	ErrStepUpRequired = errors.New("stepup: step-up required")
	// ErrInvalidToken matches every failure to validate an ID or access token.
	ErrInvalidToken = errors.New("stepup: invalid token")
	// ErrTransactionNotFound: the callback's state names no pending
	// authorization: the browser sent no transaction cookie for it (another
	// browser, or an expired or dropped transaction), it expired, or the
	// callback was already used (a replay).
	ErrTransactionNotFound = errors.New("stepup: authorization transaction not found (unknown, expired or already used)")
	// ErrStateMismatch: the browser's transaction cookie for the callback's
	// state does not open for that state (another transaction's, tampered,
	// or sealed with a key the Client no longer has).
	ErrStateMismatch = errors.New("stepup: callback does not belong to this browser")
	// ErrIssuerMismatch: the authorization response's iss (RFC 9207) differs
	// from the tenant's issuer, or is missing when it is required.
	ErrIssuerMismatch = errors.New("stepup: authorization response issuer mismatch")
	// ErrMissingIDToken: the token endpoint answered without an id_token.
	ErrMissingIDToken = errors.New("stepup: token response has no id_token")
	// ErrNoSession: the request carries no valid session (none, unknown, or expired).
	ErrNoSession = errors.New("stepup: no session")
	// ErrTenantUnavailable: the Auth0 tenant could not be reached or answered
	// with a server error; nothing was let through.
	ErrTenantUnavailable = errors.New("stepup: tenant unavailable")
	// ErrInvalidConfig: a Config is unusable; the message says what to fix.
	ErrInvalidConfig = errors.New("stepup: invalid configuration")
)

// Reason says why an authentication does not satisfy a Policy.
type Reason string

// Reasons of a *StepUpError.
const (
	ReasonACRMissing      Reason = "acr missing"
	ReasonACRMismatch     Reason = "acr not acceptable"
	ReasonAMRMissing      Reason = "required authentication method missing from amr"
	ReasonAuthTimeMissing Reason = "auth_time missing"
	ReasonTooOld          Reason = "authentication too old"
	// ReasonNotPerformed: a step-up was requested from the tenant and the
	// login came back without it (e.g. the tenant ignores acr_values, or has no
	// MFA Action). Asking again would loop, so this is final for that login.
	ReasonNotPerformed Reason = "tenant did not perform the requested step-up"
	// ReasonScopeMissing: an access token lacks a required scope.
	ReasonScopeMissing Reason = "required scope missing"
)

// StepUpError reports an authentication that does not satisfy a Policy.
// It matches ErrStepUpRequired.
type StepUpError struct {
	Policy Policy
	Reason Reason
	// Details, set according to Reason.
	ACR    string        // the acr received (ReasonACRMismatch)
	Method string        // the amr value or scope missing (ReasonAMRMissing, ReasonScopeMissing)
	Age    time.Duration // the authentication's age (ReasonTooOld)
	// Cause is the check that failed when Reason is ReasonNotPerformed.
	Cause Reason
}

func (e *StepUpError) Error() string {
	name := e.Policy.Name
	if name == "" {
		name = "unnamed"
	}
	msg := fmt.Sprintf("stepup: policy %q not satisfied: %s", name, e.Reason)
	switch e.Reason {
	case ReasonACRMismatch:
		msg += fmt.Sprintf(" (got %q)", e.ACR)
	case ReasonAMRMissing, ReasonScopeMissing:
		msg += fmt.Sprintf(" (%q)", e.Method)
	case ReasonTooOld:
		msg += fmt.Sprintf(" (%s old, limit %s)", e.Age.Round(time.Second), e.Policy.MaxAge)
	case ReasonNotPerformed:
		msg += fmt.Sprintf(": the login came back with %s; check that the tenant lists the class in acr_values_supported and runs a step-up Action that enables MFA", e.Cause)
		if e.ACR != "" {
			msg += fmt.Sprintf(" (acr %q)", e.ACR)
		}
	}
	return msg
}

// Is makes every StepUpError match ErrStepUpRequired.
func (e *StepUpError) Is(target error) bool { return target == ErrStepUpRequired }

// AuthorizeError is an error returned by the tenant to the callback
// (error, error_description), e.g. access_denied or login_required.
type AuthorizeError struct {
	Code        string
	Description string
}

func (e *AuthorizeError) Error() string {
	if e.Description == "" {
		return "stepup: authorization failed: " + e.Code
	}
	return fmt.Sprintf("stepup: authorization failed: %s: %s", e.Code, e.Description)
}

// TenantError is an error answer of one of the tenant's endpoints, such as
// /oauth/token's invalid_grant or mfa_required. 5xx answers and transport
// failures also match ErrTenantUnavailable.
type TenantError struct {
	Endpoint    string // e.g. "/oauth/token"
	StatusCode  int
	Code        string // the OAuth error code, e.g. "invalid_grant"
	Description string
	// MFAToken is set with Code "mfa_required".
	MFAToken string
	// RetryAfter is the server's requested delay (429, slow_down), if any.
	RetryAfter time.Duration
	Err        error // the transport error, if the request failed before an answer
}

func (e *TenantError) Error() string {
	switch {
	case e.Err != nil:
		return fmt.Sprintf("stepup: tenant %s: %v", e.Endpoint, e.Err)
	case e.Description != "":
		return fmt.Sprintf("stepup: tenant %s: %d %s: %s", e.Endpoint, e.StatusCode, e.Code, e.Description)
	default:
		return fmt.Sprintf("stepup: tenant %s: %d %s", e.Endpoint, e.StatusCode, e.Code)
	}
}

func (e *TenantError) Unwrap() error { return e.Err }

// Is makes transport failures, 5xx and 429 answers match ErrTenantUnavailable.
func (e *TenantError) Is(target error) bool {
	return target == ErrTenantUnavailable && (e.Err != nil || e.StatusCode >= 500 || e.StatusCode == 429)
}
