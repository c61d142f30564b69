package redistest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/stepupauth/stepup/internal/redistest"
)

func TestPrefix(t *testing.T) {
	p := redistest.Prefix(t)
	if p != redistest.Prefix(t) {
		t.Fatal("Prefix changes between calls for one test")
	}
	if strings.ContainsAny(p, "{}*?[]\\ ") || !strings.HasSuffix(p, ":") {
		t.Fatalf("Prefix = %q: want no braces, glob characters or spaces, and a trailing ':'", p)
	}
	t.Run("sub/test{x}", func(t *testing.T) {
		q := redistest.Prefix(t)
		if q == p || strings.ContainsAny(q, "{}/") {
			t.Fatalf("subtest Prefix = %q (parent %q): want a different, sanitized prefix", q, p)
		}
	})
}

// Client gives an empty key space and removes the test's keys afterwards,
// without touching other keys.
func TestClientKeySpace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client func(t *testing.T) redis.UniversalClient
	}{
		{"single", func(t *testing.T) redis.UniversalClient { return redistest.Client(t) }},
		{"cluster", func(t *testing.T) redis.UniversalClient { return redistest.Cluster(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			outer := tc.client(t)
			other := redistest.Prefix(t) + "not-the-inner-test"
			if err := outer.Set(ctx, other, "x", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			var inner string
			var keys []string
			t.Run("inner", func(t *testing.T) {
				c := tc.client(t)
				inner = redistest.Prefix(t)
				for i := range 50 {
					keys = append(keys, inner+strings.Repeat("k", i+1))
				}
				for _, k := range keys {
					if err := c.Set(ctx, k, "v", time.Minute).Err(); err != nil {
						t.Fatal(err)
					}
				}
			})
			for _, k := range keys {
				if n := outer.Exists(ctx, k).Val(); n != 0 {
					t.Fatalf("key %q of the inner test survived it", k)
				}
			}
			if len(keys) == 0 {
				t.Fatal("the inner test wrote nothing")
			}
			if v, err := outer.Get(ctx, other).Result(); err != nil || v != "x" {
				t.Fatalf("a key outside the inner test's prefix was touched: %q, %v", v, err)
			}
		})
	}
}

func TestCountCommands(t *testing.T) {
	c := redistest.Client(t)
	n := redistest.CountCommands(c) // before the first connection: the handshake must not count
	ctx := context.Background()
	k := redistest.Prefix(t) + "k"
	c.Set(ctx, k, "v", time.Minute)
	c.Get(ctx, k)
	if diff := cmp.Diff([]string{"set", "get"}, n.Commands()); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
	n.Reset()
	if n.Count() != 0 {
		t.Fatalf("Count after Reset = %d", n.Count())
	}
	c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, k+"n")
		p.Del(ctx, k+"n")
		return nil
	})
	if got := n.Count(); got != 2 {
		t.Errorf("a pipeline of 2 commands counted %d", got)
	}
}

func TestServerStopStart(t *testing.T) {
	srv := redistest.StartServer(t)
	c := srv.Client()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	short, cancel := context.WithTimeout(ctx, time.Second)
	err := c.Ping(short).Err()
	cancel()
	if err == nil {
		t.Fatal("Ping succeeded with the server stopped")
	}
	srv.Stop() // idempotent
	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("client did not reconnect within 10s")
		}
		time.Sleep(10 * time.Millisecond) // waiting for go-redis to redial
	}
	if n := c.Exists(ctx, "k").Val(); n != 0 {
		t.Errorf("a restarted server kept data (%d keys); it should start empty", n)
	}
}

// Without the environment, tests skip with a how-to; with
// STEPUP_TEST_REQUIRE=1, they fail. Checked in a child process.
func TestMissingServerSkipsOrFails(t *testing.T) {
	if os.Getenv("REDISTEST_CHILD") == "1" {
		redistest.Client(t)
		t.Fatal("Client returned without a server")
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	run := func(require string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingServerSkipsOrFails$", "-test.v")
		cmd.Env = append(os.Environ(), "REDISTEST_CHILD=1", redistest.EnvAddr+"=", redistest.EnvRequire+"="+require)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("")
	if err != nil || !strings.Contains(out, "--- SKIP") || !strings.Contains(out, "scripts/test.sh") {
		t.Errorf("without a server and without %s: want a skip that names scripts/test.sh; got %v:\n%s", redistest.EnvRequire, err, out)
	}
	out, err = run("1")
	if err == nil || !strings.Contains(out, "--- FAIL") {
		t.Errorf("without a server and with %s=1: want a failure; got %v:\n%s", redistest.EnvRequire, err, out)
	}
}
