package redisstore_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepupauth/stepup/internal/redistest"
	"github.com/stepupauth/stepup/redisstore"
)

func TestOpenURLKinds(t *testing.T) {
	tests := []struct {
		name, url string
		check     func(t *testing.T, c redis.UniversalClient)
	}{
		{"single", "redis://user:pw@127.0.0.1:6380/2?dial_timeout=2s", func(t *testing.T, c redis.UniversalClient) {
			cc, ok := c.(*redis.Client)
			if !ok {
				t.Fatalf("got %T, want *redis.Client", c)
			}
			o := cc.Options()
			if o.Addr != "127.0.0.1:6380" || o.DB != 2 || o.Password != "pw" || o.DialTimeout != 2*time.Second || !o.ContextTimeoutEnabled {
				t.Errorf("options: addr %s db %d dial %v ctx %v", o.Addr, o.DB, o.DialTimeout, o.ContextTimeoutEnabled)
			}
		}},
		{"cluster seeds", "redis://127.0.0.1:7001?addr=127.0.0.1:7002&addr=127.0.0.1:7003", func(t *testing.T, c redis.UniversalClient) {
			cc, ok := c.(*redis.ClusterClient)
			if !ok {
				t.Fatalf("got %T, want *redis.ClusterClient", c)
			}
			o := cc.Options()
			if !slices.Equal(o.Addrs, []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}) || !o.ContextTimeoutEnabled {
				t.Errorf("options: addrs %v ctx %v", o.Addrs, o.ContextTimeoutEnabled)
			}
		}},
		{"cluster one seed", "redis://127.0.0.1:7001?cluster=true", func(t *testing.T, c redis.UniversalClient) {
			cc, ok := c.(*redis.ClusterClient)
			if !ok {
				t.Fatalf("got %T, want *redis.ClusterClient", c)
			}
			if o := cc.Options(); !slices.Equal(o.Addrs, []string{"127.0.0.1:7001"}) {
				t.Errorf("addrs %v", o.Addrs)
			}
		}},
		{"sentinel", "redis://127.0.0.1:26379?master_name=main&addr=127.0.0.1:26380", func(t *testing.T, c redis.UniversalClient) {
			if _, ok := c.(*redis.Client); !ok {
				t.Fatalf("got %T, want the *redis.Client of a failover client", c)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := redisstore.OpenURL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc.check(t, c)
			if _, err := redisstore.New(c, redisstore.Options{}); err != nil {
				t.Errorf("New refuses the client of OpenURL: %v", err)
			}
		})
	}
	for _, bad := range []string{"http://x", "redis://h:1?cluster=maybe", "redis://h:1?nonsense=1", "::"} {
		if c, err := redisstore.OpenURL(bad); !errors.Is(err, redisstore.ErrInvalidConfig) {
			if c != nil {
				c.Close()
			}
			t.Errorf("OpenURL(%q) = %v; want ErrInvalidConfig", bad, err)
		}
	}
}

// OpenURL's clients work against the real servers.
func TestOpenURLLive(t *testing.T) {
	redistest.Client(t) // skip or fail without the servers
	seeds := strings.Split(os.Getenv(redistest.EnvCluster), ",")
	urls := map[string]string{
		"single":  "redis://" + os.Getenv(redistest.EnvAddr),
		"cluster": "redis://" + seeds[0] + "?cluster=true",
	}
	if len(seeds) > 1 {
		urls["cluster seeds"] = "redis://" + seeds[0] + "?addr=" + strings.Join(seeds[1:], "&addr=")
	}
	for name, u := range urls {
		t.Run(name, func(t *testing.T) {
			c, err := redisstore.OpenURL(u)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := redisstore.New(c, redisstore.Options{Prefix: redistest.Prefix(t)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if v, err := s.Take(ctx, "k"); err != nil || string(v) != "v" {
				t.Fatalf("Take = %q, %v", v, err)
			}
		})
	}
}
