package store_test

import (
	"testing"
	"time"

	"github.com/stepupauth/stepup/store"
	"github.com/stepupauth/stepup/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	clk := storetest.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	storetest.Run(t, func(t *testing.T) store.Store {
		m := store.NewMemory(store.MemoryOptions{Now: clk.Now})
		t.Cleanup(func() { m.Close() })
		return m
	}, storetest.WithClock(clk.Advance))
}

// With a bound on entries the store still conforms (the suite stays under it).
func TestMemoryConformanceBounded(t *testing.T) {
	clk := storetest.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	storetest.Run(t, func(t *testing.T) store.Store {
		m := store.NewMemory(store.MemoryOptions{Now: clk.Now, MaxEntries: 1000, SweepInterval: -1})
		t.Cleanup(func() { m.Close() })
		return m
	}, storetest.WithClock(clk.Advance))
}
