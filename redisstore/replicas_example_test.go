package redisstore_test

import (
	"context"
	"encoding/base64"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/redisstore"
)

// One replica of an app that runs as many: the Redis of REDIS_URL (one
// server, Cluster or Sentinel), the sealing key every replica shares, and a
// deadline on every request so that a hung Redis holds none for long. This
// is the README's "Many replicas" set-up. (Not run: it needs a Redis.)
func Example_replicas() {
	ctx := context.Background()
	rdb, err := redisstore.OpenURL(os.Getenv("REDIS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close() // the caller owns the client
	st, err := redisstore.New(rdb, redisstore.Options{Prefix: "intranet:"})
	if err != nil {
		log.Fatal(err)
	}
	sealingKey, err := base64.StdEncoding.DecodeString(os.Getenv("STEPUP_SEALING_KEY")) // 32 bytes, the same everywhere
	if err != nil {
		log.Fatal(err)
	}
	client, err := stepup.New(ctx, stepup.Config{
		Domain:       "fabrikam.eu.auth0.com",
		ClientID:     os.Getenv("AUTH0_CLIENT_ID"),
		ClientSecret: os.Getenv("AUTH0_CLIENT_SECRET"),
		RedirectURL:  "https://intranet.fabrikam.example/callback",
		Store:        st,
		SealingKeys:  [][]byte{sealingKey},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /callback", client.CallbackHandler())
	mux.Handle("GET /", client.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("welcome"))
	})))
	// The store calls of the middleware use the request's context.
	log.Fatal(http.ListenAndServe(":8080", http.TimeoutHandler(mux, 5*time.Second, "timed out")))
}
