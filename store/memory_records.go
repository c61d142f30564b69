package store

import "iter"

// records is a shard's table of records: open addressing with linear
// probing over a power-of-two array of slots, each holding the key's hash,
// the key and the record by value (56 bytes). The hash is the one that
// picked the shard (its low bits pick the slot, its top bits the shard), so
// a Get, Set or Take hashes its key once (reclaiming expired records hashes
// each key it pops from the heap again); a lookup compares the stored hash
// before the key, so it usually reads one slot and nothing else. The table
// doubles when it is three quarters full, all at once under the shard's lock
// (a shard's table of a million records moves in milliseconds); it never
// shrinks, like a Go map. A deletion shifts the slots that follow back, so
// no tombstones accumulate whatever the mix of Set and Take.
type records struct {
	slots []slot // len is 0 or a power of two
	n     int    // records held
}

type slot struct {
	hash uint64 // 0: an empty slot (hashes are never 0, see Memory.hash)
	key  string
	e    entry
}

func (r *records) len() int { return r.n }

// find returns the slot of the key (hash h), or -1.
func (r *records) find(h uint64, key string) int {
	if r.n == 0 {
		return -1
	}
	mask := uint64(len(r.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &r.slots[i]
		if s.hash == h && s.key == key {
			return int(i)
		}
		if s.hash == 0 {
			return -1
		}
	}
}

// insert adds a record; the key (hash h) must be absent.
func (r *records) insert(h uint64, key string, e entry) {
	if (r.n+1)*4 > len(r.slots)*3 {
		r.grow()
	}
	mask := uint64(len(r.slots) - 1)
	i := h & mask
	for r.slots[i].hash != 0 {
		i = (i + 1) & mask
	}
	r.slots[i] = slot{hash: h, key: key, e: e}
	r.n++
}

func (r *records) grow() {
	old := r.slots
	r.slots = make([]slot, max(8, 2*len(old)))
	mask := uint64(len(r.slots) - 1)
	for j := range old {
		o := &old[j]
		if o.hash == 0 {
			continue
		}
		i := o.hash & mask
		for r.slots[i].hash != 0 {
			i = (i + 1) & mask
		}
		r.slots[i] = *o
	}
}

// deleteAt removes the record in slot i, moving back the records after it
// that would otherwise no longer be found (backward-shift deletion). Slot
// numbers returned by find before it are stale after it.
func (r *records) deleteAt(i int) {
	mask := len(r.slots) - 1
	for j := (i + 1) & mask; r.slots[j].hash != 0; j = (j + 1) & mask {
		home := int(r.slots[j].hash) & mask
		// The record in j stays if its home is cyclically in (i, j].
		if i <= j {
			if i < home && home <= j {
				continue
			}
		} else if i < home || home <= j {
			continue
		}
		r.slots[i] = r.slots[j]
		i = j
	}
	r.slots[i] = slot{} // drops the key and the value for the GC
	r.n--
}

// all yields every record, in no particular order; the table must not
// change meanwhile.
func (r *records) all() iter.Seq2[string, entry] {
	return func(yield func(string, entry) bool) {
		for j := range r.slots {
			if s := &r.slots[j]; s.hash != 0 && !yield(s.key, s.e) {
				return
			}
		}
	}
}
