package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// OwnCluster is a Redis Cluster of one test's own, with replicas, for
// failover tests: its nodes may be killed. Create it with StartCluster; its
// processes are stopped (by PID) when the test ends.
type OwnCluster struct {
	t testing.TB
	// Nodes are the cluster's servers, masters first as created.
	Nodes []*Server
	// NodeTimeout is the cluster-node-timeout the nodes run with.
	NodeTimeout time.Duration
}

// StartCluster starts a Redis Cluster of masters masters, each with one
// replica, on free loopback ports, with a cluster-node-timeout of
// nodeTimeout (the time after which an unreachable master is failed over),
// and waits until every slot is served and every replica is in sync. It
// needs redis-server and redis-cli on PATH (skipping t without them, see
// Unavailable).
func StartCluster(t testing.TB, masters int, nodeTimeout time.Duration) *OwnCluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		Unavailable(t, "redis-cli is not on PATH: this test creates its own Redis Cluster (install Debian's redis-tools)")
	}
	oc := &OwnCluster{t: t, NodeTimeout: nodeTimeout}
	var addrs []string
	for range 2 * masters {
		s := newServer(t)
		// The cluster bus listens on port+10000: make sure it is free too.
		for tries := 0; ; tries++ {
			_, p, _ := net.SplitHostPort(s.addr)
			port, _ := strconv.Atoi(p)
			if port+10000 < 65536 && portFree(port+10000) {
				break
			}
			if tries == 50 {
				t.Fatalf("redistest: no free port with a free cluster bus port")
			}
			np, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(np))
		}
		s.extra = []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(nodeTimeout.Milliseconds(), 10)}
		s.Start()
		oc.Nodes = append(oc.Nodes, s)
		addrs = append(addrs, s.addr)
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !oc.ready() {
		if time.Now().After(deadline) {
			t.Fatalf("redistest: the Redis Cluster on %v was not ready within 30s", addrs)
		}
		time.Sleep(50 * time.Millisecond) // waiting for the cluster to converge
	}
	return oc
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// ready reports whether every node says cluster_state:ok and every replica
// is in sync with its master.
func (oc *OwnCluster) ready() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	replicas := 0
	for _, s := range oc.Nodes {
		c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
		info, err := c.ClusterInfo(ctx).Result()
		repl, err2 := c.Info(ctx, "replication").Result()
		c.Close()
		if err != nil || err2 != nil || !strings.Contains(info, "cluster_state:ok") {
			return false
		}
		if strings.Contains(repl, "role:slave") {
			if !strings.Contains(repl, "master_link_status:up") || strings.Contains(repl, "master_sync_in_progress:1") {
				return false
			}
			replicas++
		}
	}
	return replicas == len(oc.Nodes)/2
}

// Client returns a new Cluster client (with ContextTimeoutEnabled) seeded
// with every node, closed when the test ends.
func (oc *OwnCluster) Client(opts *redis.ClusterOptions) *redis.ClusterClient {
	o := redis.ClusterOptions{}
	if opts != nil {
		o = *opts
	}
	for _, s := range oc.Nodes {
		o.Addrs = append(o.Addrs, s.addr)
	}
	o.ContextTimeoutEnabled = true
	c := redis.NewClusterClient(&o)
	oc.t.Cleanup(func() { c.Close() })
	return c
}

// MasterOf asks the cluster, through any node that answers other than
// except, which node is the master serving slot, and returns its address.
// It reads CLUSTER NODES (not CLUSTER SLOTS, which go-redis sends to load
// its slot map, so that tests can count those).
func (oc *OwnCluster) MasterOf(ctx context.Context, slot int, except string) (string, error) {
	var lastErr error = fmt.Errorf("redistest: no node answered")
	for _, s := range oc.Nodes {
		if s.addr == except {
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1, DialTimeout: 500 * time.Millisecond})
		nodes, err := c.ClusterNodes(ctx).Result()
		c.Close()
		if err != nil {
			lastErr = err
			continue
		}
		if addr, ok := masterOf(nodes, slot); ok {
			return addr, nil
		}
		lastErr = fmt.Errorf("redistest: node %s knows no master of slot %d", s.addr, slot)
	}
	return "", lastErr
}

// masterOf finds the master of slot in a CLUSTER NODES reply: lines of
// "id ip:port@bus flags master ping pong epoch link slot...".
func masterOf(nodes string, slot int) (string, bool) {
	for _, line := range strings.Split(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
			continue
		}
		for _, r := range f[8:] {
			lo, hi, isRange := strings.Cut(r, "-")
			if !isRange {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && slot >= a && slot <= b {
				addr, _, _ := strings.Cut(f[1], "@")
				return addr, true
			}
		}
	}
	return "", false
}

// Node returns the node with the address addr, or nil.
func (oc *OwnCluster) Node(addr string) *Server {
	for _, s := range oc.Nodes {
		if s.addr == addr {
			return s
		}
	}
	return nil
}
