package store

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"time"
)

// MemoryOptions configures NewMemory. The zero value is ready to use.
type MemoryOptions struct {
	// Now is the clock that TTLs are measured against. Default: time.Now.
	// Tests move an injected clock instead of sleeping.
	Now func() time.Time

	// SweepInterval is how often the background sweep removes expired
	// records that nobody reads again. Default: 1 minute. A negative value
	// disables the sweep goroutine; expired records are then reclaimed only
	// lazily (when their key is used, and a few per write).
	SweepInterval time.Duration

	// SweepBatch bounds the records one sweep step removes while holding the
	// store's lock, so that a sweep never stalls requests for long; a sweep
	// repeats steps until nothing expired is left. Default: 256.
	SweepBatch int

	// MaxEntries bounds the number of records kept, expired records not yet
	// reclaimed included. When the store is full, writing a new key first
	// reclaims every expired record; if still full, the write fails with an
	// error that matches ErrUnavailable (callers fail closed; nothing live is
	// evicted). Default: 0, no bound.
	MaxEntries int
}

// Memory is the in-memory Store: state for one process, lost when it exits.
// Its zero value is not usable: call NewMemory. Call Close when done, to stop
// its sweep goroutine.
//
// Expiry is lazy (a read never returns an expired record) and complemented by
// a bounded sweep: records are indexed by expiry time, so reclaiming costs
// O(log n) per expired record and never scans live ones.
type Memory struct {
	now        func() time.Time
	batch      int
	maxEntries int

	mu      sync.Mutex // guards entries, indexes, byExpiry and closed
	entries map[string]*entry
	// indexes holds the indexes, each a map from member to its expiry.
	indexes map[string]map[string]time.Time
	// byExpiry is a min-heap of the records in entries by expiry time.
	byExpiry expiryHeap
	closed   bool

	closeOnce sync.Once
	done      chan struct{} // closed by Close: stops the sweep goroutine
	wg        sync.WaitGroup
}

type entry struct {
	key     string
	value   []byte
	expires time.Time
	index   int // in byExpiry
}

// writeReclaim is how many expired records a write reclaims on its way, so
// that memory stays bounded under load even with the sweep disabled.
const writeReclaim = 2

var (
	errClosed = wrapf(ErrUnavailable, "memory store closed")
	errFull   = wrapf(ErrUnavailable, "memory store full (MaxEntries)")

	errEmptyMember = wrapf(ErrInvalidArgument, "empty index member")
)

// NewMemory returns an empty in-memory Store. Unless opts disables it, a
// goroutine sweeps expired records until Close.
func NewMemory(opts MemoryOptions) *Memory {
	m := &Memory{
		now:        opts.Now,
		batch:      opts.SweepBatch,
		maxEntries: opts.MaxEntries,
		entries:    make(map[string]*entry),
		indexes:    make(map[string]map[string]time.Time),
		done:       make(chan struct{}),
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.batch <= 0 {
		m.batch = 256
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
		m.mu.Lock()
		m.closed = true
		m.entries = nil
		m.indexes = nil
		m.byExpiry = nil
		m.mu.Unlock()
		close(m.done)
	})
	m.wg.Wait()
	return nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := begin(ctx, key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.lookup(key)
	if err != nil {
		return nil, err
	}
	return clone(e.value), nil
}

// Set implements Store.
func (m *Memory) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := beginWrite(ctx, key, ttl); err != nil {
		return err
	}
	v := clone(value) // outside the lock: it may be large
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	now := m.now()
	if e := m.entries[key]; e != nil {
		e.value = v
		e.expires = now.Add(ttl)
		heap.Fix(&m.byExpiry, e.index)
		return nil
	}
	return m.insert(key, v, now, ttl)
}

// SetNX implements Store.
func (m *Memory) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := beginWrite(ctx, key, ttl); err != nil {
		return false, err
	}
	v := clone(value)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, errClosed
	}
	now := m.now()
	if m.live(key, now) != nil {
		return false, nil
	}
	if err := m.insert(key, v, now, ttl); err != nil {
		return false, err
	}
	return true, nil
}

// Take implements Store.
func (m *Memory) Take(ctx context.Context, key string) ([]byte, error) {
	if err := begin(ctx, key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.lookup(key)
	if err != nil {
		return nil, err
	}
	m.remove(e)
	// The entry leaves the store: its slice can go to the caller as is.
	return e.value, nil
}

// GetEx implements Store.
func (m *Memory) GetEx(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	if err := beginWrite(ctx, key, ttl); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.lookup(key)
	if err != nil {
		return nil, err
	}
	e.expires = m.now().Add(ttl)
	heap.Fix(&m.byExpiry, e.index)
	return clone(e.value), nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := begin(ctx, key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	if e := m.entries[key]; e != nil {
		m.remove(e)
	}
	delete(m.indexes, key)
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
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	now := m.now()
	ix := m.indexes[key]
	if ix == nil {
		if m.maxEntries > 0 && len(m.entries)+len(m.indexes) >= m.maxEntries {
			m.reclaim(now, len(m.entries))
			if len(m.entries)+len(m.indexes) >= m.maxEntries {
				return errFull
			}
		}
		ix = make(map[string]time.Time, 1)
		m.indexes[key] = ix
	}
	for k, exp := range ix {
		if !now.Before(exp) {
			delete(ix, k)
		}
	}
	ix[member] = now.Add(ttl)
	return nil
}

// IndexMembers implements Store.
func (m *Memory) IndexMembers(ctx context.Context, key string) ([]string, error) {
	if err := begin(ctx, key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	now := m.now()
	ix := m.indexes[key]
	out := make([]string, 0, len(ix))
	for k, exp := range ix {
		if now.Before(exp) {
			out = append(out, k)
		} else {
			delete(ix, k)
		}
	}
	if ix != nil && len(ix) == 0 {
		delete(m.indexes, key)
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
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	if ix := m.indexes[key]; ix != nil {
		delete(ix, member)
		if len(ix) == 0 {
			delete(m.indexes, key)
		}
	}
	return nil
}

// lookup returns the live entry with the key, errClosed, or ErrNotFound (an
// expired entry is removed on the way). m.mu must be held.
func (m *Memory) lookup(key string) (*entry, error) {
	if m.closed {
		return nil, errClosed
	}
	e := m.live(key, m.now())
	if e == nil {
		return nil, ErrNotFound
	}
	return e, nil
}

// live returns the live entry with the key, or nil; it removes the entry if
// it has expired. m.mu must be held.
func (m *Memory) live(key string, now time.Time) *entry {
	e := m.entries[key]
	if e == nil {
		return nil
	}
	if !now.Before(e.expires) {
		m.remove(e)
		return nil
	}
	return e
}

// insert adds a new key. m.mu must be held and key must not be in entries.
func (m *Memory) insert(key string, v []byte, now time.Time, ttl time.Duration) error {
	m.reclaim(now, writeReclaim)
	if m.maxEntries > 0 && len(m.entries) >= m.maxEntries {
		m.reclaim(now, len(m.entries))
		if len(m.entries) >= m.maxEntries {
			return errFull
		}
	}
	e := &entry{key: key, value: v, expires: now.Add(ttl)}
	m.entries[key] = e
	heap.Push(&m.byExpiry, e)
	return nil
}

func (m *Memory) remove(e *entry) {
	heap.Remove(&m.byExpiry, e.index)
	delete(m.entries, e.key)
}

// reclaim removes up to limit expired entries, earliest first, and reports
// how many it removed. m.mu must be held.
func (m *Memory) reclaim(now time.Time, limit int) int {
	n := 0
	for n < limit && len(m.byExpiry) > 0 && !now.Before(m.byExpiry[0].expires) {
		m.remove(m.byExpiry[0])
		n++
	}
	return n
}

// sweep removes every expired entry, at most m.batch per hold of the lock.
func (m *Memory) sweep() {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return
		}
		now := m.now()
		n := m.reclaim(now, m.batch)
		for key, ix := range m.indexes {
			for k, exp := range ix {
				if !now.Before(exp) {
					delete(ix, k)
				}
			}
			if len(ix) == 0 {
				delete(m.indexes, key)
			}
		}
		m.mu.Unlock()
		if n < m.batch {
			return
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

// expiryHeap is a min-heap of entries by expiry time (container/heap).
type expiryHeap []*entry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *expiryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *expiryHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return e
}

var _ Store = (*Memory)(nil)
