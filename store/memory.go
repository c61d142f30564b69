package store

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryOptions configures NewMemory. The zero value is ready to use.
type MemoryOptions struct {
	// Now is the clock that TTLs are measured against. Default: the wall
	// clock at NewMemory moved on by the monotonic clock (see "How it keeps
	// time" on Memory). Tests move an injected clock instead of sleeping.
	Now func() time.Time

	// SweepInterval is how often the background sweep removes expired
	// records and index members that nobody reads again. Default: 1 minute.
	// A negative value disables the sweep goroutine; expired records are
	// then reclaimed only lazily (when their key is used, and a few per
	// write).
	SweepInterval time.Duration

	// SweepBatch bounds the expired records one sweep step removes while
	// holding a shard's lock, so that a sweep never stalls requests for
	// long; a sweep repeats steps until nothing expired is left. Default:
	// 256.
	SweepBatch int

	// MaxEntries bounds what the store holds, counted in entries: a record
	// is one entry, an index is one entry per member; expired ones not yet
	// reclaimed count until they are. The policy: the store never evicts a
	// live record or member to make room. A write that needs a new entry (a
	// new key, a new index member) when the store is full first reclaims
	// every expired entry; if it is still full, the write fails with an
	// error that matches ErrUnavailable, and nothing changes (callers fail
	// closed: an HTTP service answers 503). Writes that need no new entry
	// (replacing a record, GetEx, re-adding a member) always succeed.
	// Default: 0, no bound.
	MaxEntries int
}

// Memory is the in-memory Store: state for one process, lost when it exits.
// Its zero value is not usable: call NewMemory. Call Close when done, to stop
// its sweep goroutine.
//
// # How it keeps time
//
// The store's clock is MemoryOptions.Now when one is injected. Otherwise it
// is the wall clock read once, at NewMemory, moved on by the monotonic clock
// (time.Since): a record set with TTL d expires exactly d of monotonic time
// later. A step of the wall clock after NewMemory (NTP, an operator setting
// the date) therefore neither shortens nor lengthens any TTL, and the
// store's clock drifts from the wall clock by that step; where the
// monotonic clock stops while the machine is suspended (Linux), TTLs stop
// with it. Deadlines are unix nanoseconds of this clock.
//
// Expiry is exact and lazy: a read compares the record's deadline with the
// clock, so an expired record is never returned, whether or not it has been
// reclaimed. Reclaiming is the work of an expiry queue per shard: a binary
// min-heap of small values (deadline, key) kept in one slice, with lazy
// invalidation. Every record has a heap item at or before its deadline.
// Extending or replacing a record does not touch the heap: when its item
// comes due, the record is removed if it has expired, or queued again at
// its later deadline; only a shortened deadline pushes a new item at once.
// Items of records that were deleted or taken are dropped when they come
// due, and a heap that grows past twice the live entries is rebuilt, so the
// queue stays O(live entries) whatever the mix of GetEx, Set and Take.
// Indexes are kept the same way, queued at their earliest member's deadline;
// they purge their expired members when that comes due, and whenever they
// are used.
//
// # Concurrency
//
// Keys are spread by hash over 64 shards, each with its own lock, tables
// and heap, so that goroutines working on different keys rarely wait for one
// another. Records are stored by value in the shard's open-addressing table
// (a slot of 56 bytes: the key's hash, the key, the value's slice and the
// deadline), indexed by the same hash that picked the shard: a read hashes
// the key once and usually reads one slot, no pointer to follow but the
// key's and the value's. A shard's table doubles, all at once under its
// lock, when it is three quarters full, and never shrinks; indexes are in a
// Go map of their own.
type Memory struct {
	now func() time.Time
	// base and baseNs are the default clock (no Now injected): the wall
	// clock read once at NewMemory, then moved on by the monotonic clock.
	base       time.Time
	baseNs     int64
	batch      int
	maxEntries int64
	// entries counts the entries held (records plus index members), when
	// maxEntries > 0.
	entries atomic.Int64
	seed    maphash.Seed
	shards  [shardCount]shard

	closeOnce sync.Once
	done      chan struct{} // closed by Close: stops the sweep goroutine
	wg        sync.WaitGroup
}

const (
	shardBits  = 6
	shardCount = 1 << shardBits
)

type shard struct {
	mu sync.Mutex // guards every field below
	// m holds the records, by value (see records); ix the indexes. A key
	// is in one of them at most.
	m    records
	ix   map[string]index
	heap []due // min-heap by at
	// closed: Close has run; every call fails.
	closed bool
	_      [64]byte // keeps the next shard's lock off this cache line
}

// entry is one record: 32 bytes beside its key and hash in the table.
type entry struct {
	value []byte
	// expires is the deadline (unix ns by the store's clock): the record is
	// live before it.
	expires int64
}

// index is one index.
type index struct {
	// members holds each member's deadline.
	members map[string]int64
}

// due is a heap item: the record or index with the key is to be looked at
// at time at. Every record has an item at or before its deadline, every
// index one at or before its earliest member's; other items are left over
// and dropped (or moved to the entry's deadline) when they come due.
type due struct {
	at  int64
	key string
}

// writeReclaim is how many due heap items a write that adds an entry
// handles on its way, so that memory stays bounded under load even with the
// sweep disabled.
const writeReclaim = 2

var (
	errClosed = wrapf(ErrUnavailable, "memory store closed")
	errFull   = wrapf(ErrUnavailable, "memory store full (MaxEntries)")

	errEmptyMember = wrapf(ErrInvalidArgument, "empty index member")
	errNotIndex    = wrapf(ErrInvalidArgument, "the key holds a record, not an index")
)

// errNeedRoom is internal: the write needs an entry and the store is full
// even after reclaiming its shard; the caller reclaims every shard and tries
// once more.
var errNeedRoom = wrapf(ErrUnavailable, "memory store full (MaxEntries)")

// NewMemory returns an empty in-memory Store. Unless opts disables it, a
// goroutine sweeps expired records until Close.
func NewMemory(opts MemoryOptions) *Memory {
	m := &Memory{
		now:        opts.Now,
		base:       time.Now(),
		batch:      opts.SweepBatch,
		maxEntries: int64(opts.MaxEntries),
		seed:       maphash.MakeSeed(),
		done:       make(chan struct{}),
	}
	m.baseNs = m.base.UnixNano()
	for i := range m.shards {
		m.shards[i].ix = make(map[string]index)
	}
	if m.batch <= 0 {
		m.batch = 256
	}
	if m.maxEntries < 0 {
		m.maxEntries = 0
	}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = time.Minute
	}
	if interval > 0 {
		m.wg.Add(1)
		go m.sweepLoop(interval)
	}
	return m
}

// Close stops the sweep goroutine and waits for it to return. The records
// are dropped; later calls fail with an error that matches ErrUnavailable.
// Close is safe to call more than once and from several goroutines; it
// always returns nil.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		for i := range m.shards {
			s := &m.shards[i]
			s.mu.Lock()
			s.closed = true
			s.m, s.ix, s.heap = records{}, nil, nil
			s.mu.Unlock()
		}
		m.entries.Store(0)
		close(m.done)
	})
	m.wg.Wait()
	return nil
}

// hash is the key's hash (never 0): its top bits pick the shard, its low
// bits the slot in the shard's table.
func (m *Memory) hash(key string) uint64 {
	h := maphash.String(m.seed, key)
	if h == 0 {
		h = 1
	}
	return h
}

func (m *Memory) shard(h uint64) *shard {
	return &m.shards[h>>(64-shardBits)]
}

// clock reads the store's clock in unix ns. With no clock injected it is
// the wall clock of NewMemory plus the monotonic time elapsed since (see
// "How it keeps time"): time.Since reads only the monotonic clock, less than
// half the cost of time.Now, which reads the wall clock too.
func (m *Memory) clock() int64 {
	if m.now == nil {
		return m.baseNs + int64(time.Since(m.base))
	}
	return m.now().UnixNano()
}

// deadline is now+ttl, saturated.
func deadline(now int64, ttl time.Duration) int64 {
	d := now + int64(ttl)
	if d < now {
		return math.MaxInt64
	}
	return d
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := begin(ctx, key); err != nil {
		return nil, err
	}
	h := m.hash(key)
	s := m.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock() // a deferred unlock: an injected clock that panics must not leave the shard locked
	i, _, err := m.record(s, h, key)
	if err != nil {
		return nil, err
	}
	return clone(s.m.slots[i].e.value), nil
}

// GetEx implements Store.
func (m *Memory) GetEx(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	if err := beginWrite(ctx, key, ttl); err != nil {
		return nil, err
	}
	h := m.hash(key)
	s := m.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, now, err := m.record(s, h, key)
	if err != nil {
		return nil, err
	}
	e := &s.m.slots[i].e
	s.setDeadline(key, e, deadline(now, ttl))
	return clone(e.value), nil
}

// Take implements Store.
func (m *Memory) Take(ctx context.Context, key string) ([]byte, error) {
	if err := begin(ctx, key); err != nil {
		return nil, err
	}
	h := m.hash(key)
	s := m.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _, err := m.record(s, h, key)
	if err != nil {
		return nil, err
	}
	// Get and GetEx copy under the lock, so nobody else holds this slice:
	// it goes to the caller as is.
	v := s.m.slots[i].e.value
	m.removeRecord(s, i)
	return v, nil
}

// Set implements Store.
func (m *Memory) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := beginWrite(ctx, key, ttl); err != nil {
		return err
	}
	return m.write(key, value, ttl, false)
}

// SetNX implements Store.
func (m *Memory) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := beginWrite(ctx, key, ttl); err != nil {
		return false, err
	}
	err := m.write(key, value, ttl, true)
	switch err {
	case nil:
		return true, nil
	case errExists:
		return false, nil
	}
	return false, err
}

var errExists = wrapf(ErrInvalidArgument, "exists") // internal to SetNX

// write is Set (SetNX with nx): it copies value outside the lock (it may be
// large) and, when the store is full, reclaims every shard and tries once
// more.
func (m *Memory) write(key string, value []byte, ttl time.Duration, nx bool) error {
	v := clone(value)
	err := m.set(key, v, ttl, nx)
	if err == errNeedRoom {
		m.reclaimAll()
		if err = m.set(key, v, ttl, nx); err == errNeedRoom {
			err = errFull
		}
	}
	return err
}

// set writes a record; with nx, only if the key holds nothing live
// (errExists otherwise).
func (m *Memory) set(key string, v []byte, ttl time.Duration, nx bool) error {
	h := m.hash(key)
	s := m.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	return m.setLocked(s, h, key, v, ttl, nx)
}

// setLocked is set with s.mu held.
func (m *Memory) setLocked(s *shard, h uint64, key string, v []byte, ttl time.Duration, nx bool) error {
	if s.closed {
		return errClosed
	}
	now := m.clock()
	exp := deadline(now, ttl)
	if i := s.m.find(h, key); i >= 0 {
		e := &s.m.slots[i].e
		if nx && now < e.expires {
			return errExists
		}
		if exp < e.expires {
			s.push(due{at: exp, key: key})
		}
		*e = entry{value: v, expires: exp}
		return nil
	}
	if x, ok := s.ix[key]; ok {
		if m.purge(x.members, now) > 0 {
			if nx {
				return errExists
			}
			// An index becomes a record: it keeps one entry of its count.
			m.release(int64(len(x.members)) - 1)
			delete(s.ix, key)
			s.insert(h, key, entry{value: v, expires: exp})
			return nil
		}
		delete(s.ix, key) // no live member: no index
	}
	if err := m.reserve(s, now); err != nil {
		return err
	}
	s.reclaim(m, now, writeReclaim)
	s.insert(h, key, entry{value: v, expires: exp})
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := begin(ctx, key); err != nil {
		return err
	}
	h := m.hash(key)
	s := m.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if i := s.m.find(h, key); i >= 0 {
		m.removeRecord(s, i)
	}
	if x, ok := s.ix[key]; ok {
		m.removeIndex(s, key, x)
	}
	return nil
}

// IndexAdd implements Store.
func (m *Memory) IndexAdd(ctx context.Context, key, member string, ttl time.Duration) error {
	if err := beginWrite(ctx, key, ttl); err != nil {
		return err
	}
	if member == "" {
		return errEmptyMember
	}
	err := m.indexAdd(key, member, ttl)
	if err == errNeedRoom {
		m.reclaimAll()
		if err = m.indexAdd(key, member, ttl); err == errNeedRoom {
			err = errFull
		}
	}
	return err
}

func (m *Memory) indexAdd(key, member string, ttl time.Duration) error {
	h := m.hash(key)
	s := m.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	now := m.clock()
	exp := deadline(now, ttl)
	if i := s.m.find(h, key); i >= 0 {
		if now < s.m.slots[i].e.expires {
			return errNotIndex
		}
		// An expired record gives its entry to the index.
		s.m.deleteAt(i)
		s.insertIndex(key, index{members: map[string]int64{member: exp}})
		return nil
	}
	x, ok := s.ix[key]
	first := int64(math.MaxInt64) // the earliest live member's deadline
	if ok {
		m.purge(x.members, now)
		for k, d := range x.members {
			if k != member {
				first = min(first, d)
			}
		}
	}
	if _, had := x.members[member]; !had {
		if err := m.reserve(s, now); err != nil {
			if ok && len(x.members) == 0 {
				m.removeIndex(s, key, x)
			}
			return err
		}
		s.reclaim(m, now, writeReclaim)
		// reserve and reclaim may have dropped this very index, if it had
		// no live member.
		if x, ok = s.ix[key]; !ok {
			s.insertIndex(key, index{members: map[string]int64{member: exp}})
			return nil
		}
	}
	x.members[member] = exp
	if exp < first {
		s.push(due{at: exp, key: key})
	}
	return nil
}

// IndexMembers implements Store.
func (m *Memory) IndexMembers(ctx context.Context, key string) ([]string, error) {
	if err := begin(ctx, key); err != nil {
		return nil, err
	}
	s := m.shard(m.hash(key))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	x, ok := s.ix[key]
	if !ok {
		return nil, nil
	}
	if m.purge(x.members, m.clock()) == 0 {
		m.removeIndex(s, key, x)
		return nil, nil
	}
	out := make([]string, 0, len(x.members))
	for k := range x.members {
		out = append(out, k)
	}
	return out, nil
}

// IndexRemove implements Store.
func (m *Memory) IndexRemove(ctx context.Context, key, member string) error {
	if err := begin(ctx, key); err != nil {
		return err
	}
	if member == "" {
		return errEmptyMember
	}
	s := m.shard(m.hash(key))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	x, ok := s.ix[key]
	if !ok {
		return nil
	}
	if _, had := x.members[member]; had {
		delete(x.members, member)
		m.release(1)
	}
	if len(x.members) == 0 {
		m.removeIndex(s, key, x)
	}
	return nil
}

// record returns the slot of the live record with the key (hash h) and
// the time it read the clock at, or errClosed or ErrNotFound (without
// reading the clock when the key is absent); an expired record is removed
// on the way. s.mu must be held.
func (m *Memory) record(s *shard, h uint64, key string) (int, int64, error) {
	if s.closed {
		return 0, 0, errClosed
	}
	i := s.m.find(h, key)
	if i < 0 {
		return 0, 0, ErrNotFound
	}
	now := m.clock()
	if now >= s.m.slots[i].e.expires {
		m.removeRecord(s, i)
		return 0, 0, ErrNotFound
	}
	return i, now, nil
}

// purge drops the expired members of an index and returns how many are
// left.
func (m *Memory) purge(members map[string]int64, now int64) int {
	n := 0
	for k, d := range members {
		if now >= d {
			delete(members, k)
			n++
		}
	}
	m.release(int64(n))
	return len(members)
}

// reserve takes one entry of the MaxEntries bound, reclaiming the expired
// entries of s if the store is full. s.mu must be held.
func (m *Memory) reserve(s *shard, now int64) error {
	if m.maxEntries == 0 {
		return nil
	}
	if m.entries.Add(1) <= m.maxEntries {
		return nil
	}
	m.entries.Add(-1)
	s.reclaim(m, now, len(s.heap))
	if m.entries.Add(1) <= m.maxEntries {
		return nil
	}
	m.entries.Add(-1)
	return errNeedRoom
}

func (m *Memory) release(n int64) {
	if m.maxEntries != 0 && n != 0 {
		m.entries.Add(-n)
	}
}

// removeRecord and removeIndex remove an entry; its heap items are left to
// be dropped when they come due. s.mu must be held.
func (m *Memory) removeRecord(s *shard, i int) {
	m.release(1)
	s.m.deleteAt(i)
}

func (m *Memory) removeIndex(s *shard, key string, x index) {
	m.release(int64(len(x.members)))
	delete(s.ix, key)
}

// setDeadline gives record e (in its slot) with the key the deadline exp; only a
// deadline before the current one needs a new heap item (the current one's
// item comes due first and moves on to the new deadline). s.mu must be
// held.
func (s *shard) setDeadline(key string, e *entry, exp int64) {
	if exp < e.expires {
		s.push(due{at: exp, key: key})
	}
	e.expires = exp
}

// insert adds a new record, insertIndex a new index, queued at their
// deadline (the earliest member's). s.mu must be held and the key must be
// absent.
func (s *shard) insert(h uint64, key string, e entry) {
	s.m.insert(h, key, e)
	s.push(due{at: e.expires, key: key})
}

func (s *shard) insertIndex(key string, x index) {
	s.ix[key] = x
	s.push(due{at: earliest(x.members), key: key})
}

func earliest(members map[string]int64) int64 {
	first := int64(math.MaxInt64)
	for _, d := range members {
		first = min(first, d)
	}
	return first
}

// reclaim handles up to limit heap items that are due at now, and reports
// how many it handled. s.mu must be held.
func (s *shard) reclaim(m *Memory, now int64, limit int) int {
	n := 0
	for n < limit && len(s.heap) > 0 && s.heap[0].at <= now {
		d := s.pop()
		n++
		if i := s.m.find(m.hash(d.key), d.key); i >= 0 {
			if e := &s.m.slots[i].e; now >= e.expires {
				m.removeRecord(s, i)
			} else if d.at < e.expires {
				// Extended since: follow it to its deadline.
				s.push(due{at: e.expires, key: d.key})
			}
			continue
		}
		if x, ok := s.ix[d.key]; ok {
			if m.purge(x.members, now) == 0 {
				m.removeIndex(s, d.key, x)
				continue
			}
			s.push(due{at: earliest(x.members), key: d.key})
		}
		// Neither: left over by a removed entry.
	}
	return n
}

// push adds d to the heap, rebuilding the heap first when it holds more
// than twice as many items as there are live entries.
func (s *shard) push(d due) {
	if len(s.heap) >= 2*(s.m.len()+len(s.ix))+64 {
		s.rebuild()
	}
	s.heap = append(s.heap, d)
	h := s.heap
	j := len(h) - 1
	for j > 0 {
		p := (j - 1) / 2
		if h[p].at <= h[j].at {
			break
		}
		h[p], h[j] = h[j], h[p]
		j = p
	}
}

func (s *shard) pop() due {
	h := s.heap
	d := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = due{} // drop the key for the GC
	s.heap = h[:n]
	s.down(0)
	return d
}

func (s *shard) down(j int) {
	h := s.heap
	n := len(h)
	for {
		l := 2*j + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && h[r].at < h[l].at {
			c = r
		}
		if h[j].at <= h[c].at {
			return
		}
		h[j], h[c] = h[c], h[j]
		j = c
	}
}

// rebuild replaces the heap by one item per live entry, at its deadline.
func (s *shard) rebuild() {
	clear(s.heap)
	h := s.heap[:0]
	for key, e := range s.m.all() {
		h = append(h, due{at: e.expires, key: key})
	}
	for key, x := range s.ix {
		h = append(h, due{at: earliest(x.members), key: key})
	}
	s.heap = h
	for j := len(h)/2 - 1; j >= 0; j-- {
		s.down(j)
	}
}

// reclaimAll removes every expired entry, one shard at a time.
func (m *Memory) reclaimAll() {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		if !s.closed {
			s.reclaim(m, m.clock(), len(s.heap))
		}
		s.mu.Unlock()
	}
}

// sweep removes every expired entry, at most m.batch heap items per hold
// of a shard's lock.
func (m *Memory) sweep() {
	for i := range m.shards {
		s := &m.shards[i]
		for {
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				return
			}
			n := s.reclaim(m, m.clock(), m.batch)
			s.mu.Unlock()
			if n < m.batch {
				break
			}
		}
	}
}

func (m *Memory) sweepLoop(interval time.Duration) {
	defer m.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.done:
			return
		case <-t.C:
			m.sweep()
		}
	}
}

func begin(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stepup: store: %w", err)
	}
	return checkKey(key)
}

func beginWrite(ctx context.Context, key string, ttl time.Duration) error {
	if err := begin(ctx, key); err != nil {
		return err
	}
	return checkTTL(ttl)
}

// clone copies b; it returns a non-nil empty slice for an empty b.
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

var _ Store = (*Memory)(nil)
