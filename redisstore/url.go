package redisstore

import (
	"errors"
	"fmt"
	"math"
	"net/url"

	"github.com/redis/go-redis/v9"
)

// OpenURL returns a go-redis client for a Redis URL such as the REDIS_URL of
// a deployment, configured as New requires (ContextTimeoutEnabled). The
// caller owns the client and closes it. The kind of client follows from the
// URL:
//
//	redis://[user:password@]host:port[/db]             one server (rediss:// for TLS)
//	redis://host1:port1?addr=host2:port2&addr=...      Redis Cluster: the seeds
//	redis://host:port?cluster=true                     Redis Cluster from one seed
//	redis://sentinel1:port?master_name=NAME&addr=...   Sentinel failover: the Sentinels' addresses
//
// Other query parameters are go-redis options in snake case (dial_timeout=2s,
// pool_size=50...), as redis.ParseURL, redis.ParseClusterURL and
// redis.ParseFailoverURL read them. OpenURL does not connect: a Redis that is
// down is reported by the first call.
//
// Failover: a Sentinel client asks the Sentinels for the new master by
// itself. A Cluster client is made to follow a master failover by the Store
// that New builds over it, which reloads the slot map after a connection
// error to a node (at most once per Options.ClusterReloadInterval); used
// without a Store, the client reloads only on MOVED/READONLY replies or
// when its map is old.
func OpenURL(redisURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(redisURL)
	if err != nil {
		// A *url.Error quotes the whole URL, password included: keep only
		// its cause, which names the faulty part.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: Redis URL: %v", ErrInvalidConfig, err)
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(redisURL)
		if err != nil {
			return nil, fmt.Errorf("%w: Redis Sentinel URL: %w", ErrInvalidConfig, err)
		}
		if err := checkPool(o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns); err != nil {
			return nil, err
		}
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), nil
	case q.Has("addr") || q.Has("cluster"):
		if q.Has("cluster") {
			if v := q.Get("cluster"); v != "true" && v != "1" {
				return nil, fmt.Errorf("%w: Redis URL: cluster=%q, want true", ErrInvalidConfig, v)
			}
			q.Del("cluster")
			u.RawQuery = q.Encode()
		}
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("%w: Redis Cluster URL: %w", ErrInvalidConfig, err)
		}
		if err := checkPool(o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns); err != nil {
			return nil, err
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), nil
	default:
		o, err := redis.ParseURL(redisURL)
		if err != nil {
			return nil, fmt.Errorf("%w: Redis URL: %w", ErrInvalidConfig, err)
		}
		if err := checkPool(o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns); err != nil {
			return nil, err
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClient(o), nil
	}
}

// checkPool rejects pool sizes that go-redis's constructors would panic on
// (they must fit an int32), so a bad REDIS_URL is an error, not a crash.
func checkPool(sizes ...int) error {
	for _, n := range sizes {
		if n < 0 || n > math.MaxInt32 {
			return fmt.Errorf("%w: Redis URL: pool size %d out of range", ErrInvalidConfig, n)
		}
	}
	return nil
}
