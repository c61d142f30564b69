package store

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// The records table against a map, with hashes chosen to collide (a few
// homes, runs that wrap around the end of the array) and deletions
// anywhere in the runs.
func TestRecordsMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, homes := range []uint64{1, 3, 64, 1 << 20} {
		var r records
		want := make(map[string]int64)
		hash := func(key string) uint64 {
			n, _ := strconv.Atoi(key[1:])
			// Distinct full hashes, homes drawn from a few values, some at
			// the end of the array.
			return uint64(n)<<32 | (uint64(n)%homes+^uint64(0)>>40)&^(1<<63) | 1
		}
		for step := range 20_000 {
			key := "k" + strconv.Itoa(rng.IntN(300))
			h := hash(key)
			i := r.find(h, key)
			_, ok := want[key]
			if ok != (i >= 0) {
				t.Fatalf("homes %d step %d: find(%q) = %d, in map %v", homes, step, key, i, ok)
			}
			if ok {
				if got := r.slots[i].e.expires; got != want[key] {
					t.Fatalf("find(%q): expires %d, want %d", key, got, want[key])
				}
				if rng.IntN(2) == 0 {
					r.deleteAt(i)
					delete(want, key)
				} else {
					r.slots[i].e.expires = int64(step)
					want[key] = int64(step)
				}
			} else {
				r.insert(h, key, entry{expires: int64(step)})
				want[key] = int64(step)
			}
			if r.len() != len(want) {
				t.Fatalf("len %d, want %d", r.len(), len(want))
			}
		}
		n := 0
		for key, e := range r.all() {
			n++
			if w, ok := want[key]; !ok || w != e.expires {
				t.Fatalf("all: %q %d, want %d %v", key, e.expires, w, ok)
			}
		}
		if n != len(want) {
			t.Fatalf("all yields %d, want %d", n, len(want))
		}
	}
}
