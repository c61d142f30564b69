package store_test

import (
	"context"
	"errors"
	"fmt"
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
