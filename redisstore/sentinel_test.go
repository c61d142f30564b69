package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stepupauth/stepup/internal/redistest"
	"github.com/stepupauth/stepup/redisstore"
	"github.com/stepupauth/stepup/store"
	"github.com/stepupauth/stepup/store/storetest"
)

// A Sentinel failover client passes the suite, and the store follows a
// failover: the master stops, the Sentinel promotes the replica, and the
// same Store serves the replicated records and takes new writes.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Sentinel set-up and waits for a failover")
	}
	sen := redistest.StartSentinel(t)
	c := sen.Client()
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, c) })
	})

	t.Run("OpenURL", func(t *testing.T) {
		uc, err := redisstore.OpenURL("redis://" + sen.Sentinel.Addr() + "?master_name=" + redistest.MasterName)
		if err != nil {
			t.Fatal(err)
		}
		defer uc.Close()
		s := newStore(t, uc)
		ctx := context.Background()
		if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Take(ctx, "k"); err != nil || string(v) != "v" {
			t.Fatalf("Take = %q, %v", v, err)
		}
	})

	s := newStore(t, c)
	ctx := context.Background()
	if err := s.Set(ctx, "sess:{a}", []byte("session"), time.Minute); err != nil {
		t.Fatal(err)
	}
	// Make sure the replica has it before the master goes.
	if n, err := c.Wait(ctx, 1, 5000).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica = %d, %v", n, err)
	}
	before, err := sen.MasterAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sen.Master.Stop()
	stopped := time.Now()

	deadline := stopped.Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		v, err := s.Get(ctx, "sess:{a}")
		cancel()
		if err == nil {
			if string(v) != "session" {
				t.Fatalf("Get after failover = %q, want %q", v, "session")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not recover within 30s of the master stopping: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // waiting for the Sentinel to fail over
	}
	t.Logf("served by the new master %v after the old one stopped", time.Since(stopped).Round(time.Millisecond))
	after, err := sen.MasterAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after == before || after != sen.Replica.Addr() {
		t.Fatalf("master after failover = %s (before %s); want the replica %s", after, before, sen.Replica.Addr())
	}
	if ok, err := s.SetNX(ctx, "lease:{a}", []byte("me"), time.Minute); !ok || err != nil {
		t.Fatalf("SetNX on the new master = %v, %v", ok, err)
	}
	if v, err := s.Take(ctx, "sess:{a}"); err != nil || string(v) != "session" {
		t.Fatalf("Take on the new master = %q, %v", v, err)
	}
}
