package store

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// checkTable checks the table's own invariants: every record is reachable
// from its home slot (no empty slot between them), its hash is the one of
// its key in the shard (when hashOf is given), and n counts the records.
func (r *records) checkTable(t *testing.T, hashOf func(string) uint64) {
	t.Helper()
	if len(r.slots)&(len(r.slots)-1) != 0 {
		t.Fatalf("%d slots: not a power of two", len(r.slots))
	}
	mask := uint64(len(r.slots) - 1)
	n := 0
	for j := range r.slots {
		sl := &r.slots[j]
		if sl.hash == 0 {
			continue
		}
		n++
		if hashOf != nil && hashOf(sl.key) != sl.hash {
			t.Errorf("slot %d: %q holds hash %#x, its key hashes to %#x", j, sl.key, sl.hash, hashOf(sl.key))
		}
		for i := sl.hash & mask; i != uint64(j); i = (i + 1) & mask {
			if r.slots[i].hash == 0 {
				t.Errorf("slot %d: %q is not reachable from its home %d (slot %d is empty)", j, sl.key, sl.hash&mask, i)
				break
			}
		}
	}
	if n != r.n {
		t.Errorf("the table counts %d records and holds %d", r.n, n)
	}
}

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
			// Homes drawn from a few values, some at the end of the array;
			// with homes 1, every key has the same full hash (only the
			// key comparison tells them apart).
			if homes == 1 {
				return 0xdead_beef
			}
			return uint64(n)<<32 | (uint64(n)%homes + ^uint64(0)>>40) | 1
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
			if step%97 == 0 {
				r.checkTable(t, hash)
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
