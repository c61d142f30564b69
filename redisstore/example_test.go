package redisstore_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/stepupauth/stepup/redisstore"
)

// From a deployment's REDIS_URL to a Store. (Not run: it needs a Redis.)
func ExampleOpenURL() {
	rdb, err := redisstore.OpenURL(os.Getenv("REDIS_URL")) // e.g. redis://127.0.0.1:6379/0
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()
	st, err := redisstore.New(rdb, redisstore.Options{Prefix: "myapp:stepup:"})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := st.Set(ctx, "hello", []byte("world"), time.Minute); err != nil {
		log.Fatal(err) // errors.Is(err, store.ErrUnavailable): answer 503
	}
}
