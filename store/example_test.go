package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stepupauth/stepup/store"
)

// A one-time record: the first Take gets it, a replay finds nothing.
func ExampleNewMemory() {
	ctx := context.Background()
	s := store.NewMemory(store.MemoryOptions{})
	defer s.Close()

	if err := s.Set(ctx, "tx:state123", []byte(`{"nonce":"n"}`), 10*time.Minute); err != nil {
		panic(err)
	}
	v, err := s.Take(ctx, "tx:state123")
	fmt.Printf("%s %v\n", v, err)
	_, err = s.Take(ctx, "tx:state123")
	fmt.Println(errors.Is(err, store.ErrNotFound))
	// Output:
	// {"nonce":"n"} <nil>
	// true
}

// A lease: of the replicas that try, one wins; the others wait for its
// result or for the lease to expire.
func ExampleStore_setNX() {
	ctx := context.Background()
	var s store.Store = store.NewMemory(store.MemoryOptions{})
	defer s.(*store.Memory).Close()

	for _, replica := range []string{"replica-a", "replica-b"} {
		won, err := s.SetNX(ctx, "lease:sess1", []byte(replica), 5*time.Second)
		fmt.Println(replica, won, err)
	}
	// Output:
	// replica-a true <nil>
	// replica-b false <nil>
}

// A session's idle deadline: each page load reads the session and moves
// its expiry in one step, without rewriting it.
func ExampleStore_getEx() {
	ctx := context.Background()
	clk := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s := store.NewMemory(store.MemoryOptions{Now: func() time.Time { return clk }})
	defer s.Close()

	s.Set(ctx, "sess:abc", []byte("alice"), 30*time.Minute)
	for range 3 {
		clk = clk.Add(20 * time.Minute) // a page load every 20 minutes
		v, err := s.GetEx(ctx, "sess:abc", 30*time.Minute)
		fmt.Printf("%s %v\n", v, err)
	}
	clk = clk.Add(30 * time.Minute) // idle for 30 minutes
	_, err := s.GetEx(ctx, "sess:abc", 30*time.Minute)
	fmt.Println(errors.Is(err, store.ErrNotFound))
	// Output:
	// alice <nil>
	// alice <nil>
	// alice <nil>
	// true
}

// An index finds the sessions of one user; each member expires with its
// session.
func ExampleStore_indexAdd() {
	ctx := context.Background()
	clk := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s := store.NewMemory(store.MemoryOptions{Now: func() time.Time { return clk }})
	defer s.Close()

	s.IndexAdd(ctx, "user:auth0|alice", "sess:laptop", 12*time.Hour)
	s.IndexAdd(ctx, "user:auth0|alice", "sess:phone", time.Hour)
	members, _ := s.IndexMembers(ctx, "user:auth0|alice")
	slices.Sort(members)
	fmt.Println(members)

	clk = clk.Add(2 * time.Hour) // the phone's session has expired
	members, _ = s.IndexMembers(ctx, "user:auth0|alice")
	fmt.Println(members)

	s.Delete(ctx, "user:auth0|alice") // "sign out everywhere" removes the index
	members, _ = s.IndexMembers(ctx, "user:auth0|alice")
	fmt.Println(len(members))
	// Output:
	// [sess:laptop sess:phone]
	// [sess:laptop]
	// 0
}
