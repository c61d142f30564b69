package redisstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stepupauth/stepup/redisstore"
)

func TestOpenURLErrors(t *testing.T) {
	tests := []struct {
		name, url string
	}{
		{"bad port keeps the password out", "redis://:s3cr3t-pass@redis.internal:63x79/0"},
		{"bad scheme", "http://:s3cr3t-pass@127.0.0.1:6379"},
		{"bad database", "redis://:s3cr3t-pass@127.0.0.1:6379/x"},
		{"pool size beyond int32", "redis://:s3cr3t-pass@127.0.0.1:6379/0?pool_size=99999999999"},
		{"cluster pool size beyond int32", "redis://:s3cr3t-pass@127.0.0.1:7000?addr=127.0.0.1:7001&pool_size=99999999999"},
		{"sentinel pool size beyond int32", "redis://:s3cr3t-pass@127.0.0.1:26379?master_name=m&pool_size=99999999999"},
		{"cluster flag not a boolean", "redis://:s3cr3t-pass@127.0.0.1:7000?cluster=yes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := redisstore.OpenURL(tc.url)
			if err == nil {
				c.Close()
				t.Fatalf("OpenURL(%q): got a client, want an error", tc.url)
			}
			if !errors.Is(err, redisstore.ErrInvalidConfig) {
				t.Errorf("got %v, want an error matching ErrInvalidConfig", err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}
