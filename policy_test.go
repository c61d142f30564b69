package stepup

import (
	"errors"
	"testing"
	"time"
)

func TestPolicyCheck(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	mfa := Authentication{ACR: ACRMultiFactor, AMR: []string{"pwd", "mfa"}, AuthTime: now.Add(-time.Minute)}
	tests := []struct {
		name   string
		policy Policy
		auth   Authentication
		want   Reason // "" = satisfied
	}{
		{"login accepts password only", Login, Authentication{AMR: []string{"pwd"}, AuthTime: now}, ""},
		{"login accepts empty evidence", Login, Authentication{}, ""},
		{"mfa satisfied", MFA, mfa, ""},
		{"mfa acr missing", MFA, Authentication{AMR: []string{"mfa"}}, ReasonACRMissing},
		{"mfa acr other class", MFA, Authentication{ACR: "urn:other", AMR: []string{"mfa"}}, ReasonACRMismatch},
		{"mfa amr missing", MFA, Authentication{ACR: ACRMultiFactor}, ReasonAMRMissing},
		{"mfa amr without mfa", MFA, Authentication{ACR: ACRMultiFactor, AMR: []string{"pwd"}}, ReasonAMRMissing},
		{"fresh enough", MFA.WithMaxAge(10 * time.Minute), mfa, ""},
		{"exactly at the limit", MFA.WithMaxAge(time.Minute), mfa, ""},
		{"too old", MFA.WithMaxAge(30 * time.Second), mfa, ReasonTooOld},
		{"auth_time missing", Login.WithMaxAge(time.Minute), Authentication{}, ReasonAuthTimeMissing},
		{"any of several acr", Policy{ACR: []string{"urn:corp:mfa", ACRMultiFactor}}, mfa, ""},
		{"enterprise acr without amr", Policy{ACR: []string{"urn:corp:mfa"}}, Authentication{ACR: "urn:corp:mfa"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Check(tc.auth, now)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: got %v, want nil", err)
				}
				return
			}
			var se *StepUpError
			if !errors.As(err, &se) {
				t.Fatalf("Check: got %v, want *StepUpError", err)
			}
			if se.Reason != tc.want {
				t.Errorf("Reason: got %q, want %q", se.Reason, tc.want)
			}
			if !errors.Is(err, ErrStepUpRequired) {
				t.Errorf("errors.Is(err, ErrStepUpRequired) = false for %v", err)
			}
		})
	}
}

func TestPolicyParameters(t *testing.T) {
	p := Policy{ACR: []string{"a", "b"}, MaxAge: 1500 * time.Millisecond}
	if got := p.ACRValues(); got != "a b" {
		t.Errorf("ACRValues: got %q, want %q", got, "a b")
	}
	if got, ok := p.MaxAgeSeconds(); !ok || got != "2" {
		t.Errorf("MaxAgeSeconds: got %q %v, want \"2\" true", got, ok)
	}
	if _, ok := Login.MaxAgeSeconds(); ok {
		t.Error("Login has a max_age")
	}
	if Login.RequiresStepUp() || !MFA.RequiresStepUp() {
		t.Error("RequiresStepUp: Login must not, MFA must")
	}
}

func TestPolicyCheckDoesNotAllocate(t *testing.T) {
	now := time.Now()
	p := MFA.WithMaxAge(10 * time.Minute)
	a := Authentication{ACR: ACRMultiFactor, AMR: []string{"pwd", "mfa"}, AuthTime: now}
	if n := testing.AllocsPerRun(100, func() { _ = p.Check(a, now) }); n != 0 {
		t.Errorf("Check allocates %v times per call, want 0", n)
	}
}

func BenchmarkPolicyCheck(b *testing.B) {
	now := time.Now()
	p := MFA.WithMaxAge(10 * time.Minute)
	a := Authentication{ACR: ACRMultiFactor, AMR: []string{"pwd", "mfa"}, AuthTime: now}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Check(a, now); err != nil {
			b.Fatal(err)
		}
	}
}
