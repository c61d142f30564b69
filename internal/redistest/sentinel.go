package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name under which a Sentinels' set-up monitors its master.
const MasterName = "stepuptest"

// Sentinel is a Redis Sentinel set-up of one test's own: a master, one
// replica of it and one Sentinel (quorum 1) that promotes the replica about a
// second after the master stops answering. Create it with StartSentinel.
type Sentinel struct {
	Master, Replica *Server
	// Sentinel is the Sentinel process; its Addr is what clients are given.
	Sentinel *Server
}

// StartSentinel starts a master, a replica and a Sentinel from the
// redis-server on PATH (skipping t without it, see Unavailable), and waits
// until the Sentinel knows the replica.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	m := StartServer(t)
	r := newServer(t)
	mhost, mport, _ := net.SplitHostPort(m.Addr())
	r.extra = []string{"--replicaof", mhost, mport}
	r.Start()

	s := newServer(t)
	conf := s.dir + "/sentinel.conf"
	cfg := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s 1\n"+
		"sentinel down-after-milliseconds %[1]s 500\n"+
		"sentinel failover-timeout %[1]s 5000\n"+
		"sentinel parallel-syncs %[1]s 1\n", MasterName, mhost, mport)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	s.args = []string{conf, "--sentinel"}
	s.Start()

	st := &Sentinel{Master: m, Replica: r, Sentinel: s}
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
	defer sc.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		replicas, err := sc.Replicas(ctx, MasterName).Result()
		cancel()
		if err == nil && len(replicas) == 1 && !strings.Contains(fmt.Sprint(replicas[0]["flags"]), "down") {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: the Sentinel did not discover the replica within 20s: %v %v", replicas, err)
		}
		time.Sleep(50 * time.Millisecond) // waiting for the Sentinel's discovery
	}
}

// Client returns a Sentinel failover client (with ContextTimeoutEnabled) of
// the set-up, closed when the test ends.
func (s *Sentinel) Client() *redis.Client {
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            MasterName,
		SentinelAddrs:         []string{s.Sentinel.Addr()},
		ContextTimeoutEnabled: true,
	})
	s.Master.t.Cleanup(func() { c.Close() })
	return c
}

// MasterAddr asks the Sentinel for the current master's address.
func (s *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel.Addr()})
	defer sc.Close()
	hp, err := sc.GetMasterAddrByName(ctx, MasterName).Result()
	if err != nil {
		return "", err
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("redistest: unexpected master address %q", hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}
