// Package metrics turns stepup's audit events (stepup.Config.Events) into
// Prometheus counters. It is an example module of its own, so that the SDK's
// go.mod does not depend on Prometheus: copy it, or import it.
//
// Labels are bounded: the event's kind (a fixed set), the policy's name (the
// app's own, from a handful of Policy values) and, for refusals, the reason
// code (a StepUpError Reason or the tenant's error code, never free text: a
// login hook's message is reported as "hook"). Subjects, sessions and
// audiences are never labels: they would make one series per user.
package metrics

import (
	"context"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stepupauth/stepup"
)

// Counters are the stepup counters of one registry.
type Counters struct {
	events *prometheus.CounterVec
}

// New registers stepup_events_total{kind,policy,reason} with reg.
func New(reg prometheus.Registerer) (*Counters, error) {
	c := &Counters{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stepup_events_total",
		Help: "Audit events of the stepup SDK: logins, step-ups demanded, completed and refused, API challenges, refreshes, CIBA, logouts.",
	}, []string{"kind", "policy", "reason"})}
	if err := reg.Register(c.events); err != nil {
		return nil, err
	}
	return c, nil
}

// Events is the counter vector, labelled kind, policy and reason.
func (c *Counters) Events() *prometheus.CounterVec { return c.events }

// Observe is a stepup.Config.Events hook: it counts e. It never blocks.
func (c *Counters) Observe(_ context.Context, e stepup.Event) {
	c.events.WithLabelValues(string(e.Kind), policyLabel(e.Policy), reasonLabel(e)).Inc()
}

// policyLabel bounds a policy name (the app names its policies; an API's
// challenge policy is "api:<audience>", kept as "api").
func policyLabel(p string) string {
	if strings.HasPrefix(p, "api:") {
		return "api"
	}
	if len(p) > 32 {
		return p[:32]
	}
	return p
}

// reasonLabel keeps the reason of refusals as a code.
func reasonLabel(e stepup.Event) string {
	switch e.Kind {
	case stepup.EventLoginRefused:
		return "hook"
	case stepup.EventStepUpRefused, stepup.EventStepUpDemanded, stepup.EventRefreshRefused,
		stepup.EventCIBADenied, stepup.EventCIBAExpired, stepup.EventLogout:
		r, _, _ := strings.Cut(e.Reason, ":") // "tenant did not perform...: acr missing" → its first part
		if len(r) > 64 {
			r = r[:64]
		}
		return r
	}
	return ""
}
