package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stepupauth/stepup/internal/redistest"
	"github.com/stepupauth/stepup/redisstore"
	"github.com/stepupauth/stepup/store"
)

// allOps calls every Store method once with ctx and returns their errors by
// name.
func allOps(ctx context.Context, s store.Store) map[string]error {
	errs := map[string]error{}
	errs["Set"] = s.Set(ctx, "k", []byte("v"), time.Minute)
	_, errs["Get"] = s.Get(ctx, "k")
	_, errs["SetNX"] = s.SetNX(ctx, "nx", []byte("v"), time.Minute)
	_, errs["Take"] = s.Take(ctx, "k")
	errs["Delete"] = s.Delete(ctx, "k")
	return errs
}

// wantUnavailable checks that every call failed with ErrUnavailable (and the
// typed *redisstore.Error), within the context's deadline plus slack.
func wantUnavailable(t *testing.T, s store.Store, timeout time.Duration, alsoDeadline bool) {
	t.Helper()
	for name, call := range map[string]func(ctx context.Context) error{
		"Get":    func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err },
		"Set":    func(ctx context.Context) error { return s.Set(ctx, "k", []byte("v"), time.Minute) },
		"SetNX":  func(ctx context.Context) error { _, err := s.SetNX(ctx, "nx", []byte("v"), time.Minute); return err },
		"Take":   func(ctx context.Context) error { _, err := s.Take(ctx, "k"); return err },
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, "k") },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		start := time.Now()
		err := call(ctx)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis down: got %v, want ErrUnavailable", name, err)
			continue
		}
		var rerr *redisstore.Error
		if !errors.As(err, &rerr) || rerr.Err == nil {
			t.Errorf("%s: error %v is not a *redisstore.Error with a cause", name, err)
		}
		if alsoDeadline && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: error %v does not match context.DeadlineExceeded", name, err)
		}
		// The slack covers scheduling on a loaded 2-core machine, not Redis.
		if limit := timeout + 250*time.Millisecond; took > limit {
			t.Errorf("%s took %v with a %v deadline: it must end by the deadline", name, took, timeout)
		}
		t.Logf("%s: %v after %v", name, err, took.Round(time.Millisecond))
	}
}

// waitUsable retries a Set until it succeeds: go-redis reconnects by itself;
// the store is not recreated. It returns how many calls failed first.
func waitUsable(t *testing.T, s store.Store) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for failed := 0; ; failed++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := s.Set(ctx, "k", []byte("back"), time.Minute)
		cancel()
		if err == nil {
			return failed
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not recover within 10s of Redis coming back: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // waiting for go-redis to reconnect
	}
}

func TestRedisStoppedAndRestarted(t *testing.T) {
	srv := redistest.StartServer(t)
	s, err := redisstore.New(srv.Client(), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, err := range allOps(ctx, s) {
		if err != nil {
			t.Fatalf("%s with Redis up: %v", name, err)
		}
	}

	srv.Stop()
	wantUnavailable(t, s, 2*time.Second, false)

	srv.Start()
	restarted := time.Now()
	failed := waitUsable(t, s)
	t.Logf("usable %v after the restart (%d call(s) failed first)", time.Since(restarted).Round(time.Millisecond), failed)
	for name, err := range allOps(ctx, s) {
		if err != nil {
			t.Errorf("%s after Redis came back: %v", name, err)
		}
	}
	// A transaction written after the restart is served and taken once.
	if err := s.Set(ctx, "tx:after", []byte("tx"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Take(ctx, "tx:after"); err != nil || string(v) != "tx" {
		t.Fatalf("Take after restart = %q, %v", v, err)
	}
}

// A Redis that hangs (no answer, connection open) must not hang the caller
// past its context's deadline.
func TestRedisHangs(t *testing.T) {
	srv := redistest.StartServer(t)
	s, err := redisstore.New(srv.Client(), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(context.Background(), "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.Freeze()
	wantUnavailable(t, s, 300*time.Millisecond, true)
	srv.Thaw()
	waitUsable(t, s)
	if v, err := s.Get(context.Background(), "k"); err != nil || string(v) != "back" {
		t.Fatalf("Get after the server resumed = %q, %v; want %q", v, err, "back")
	}
}
