package stepup

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzRetryMark feeds the loop-protection marker's two parsers of untrusted
// input: the marker read from a page's URL, and the return path it is put
// into. A marker opens only when sealed for the session; a return path keeps
// exactly one marker and stays a local path.
func FuzzRetryMark(f *testing.F) {
	c, _, _ := offlineClient(f, nil)
	handle := randomToken()
	good := c.sealRetryMark(retryMark{Audience: "https://api/", ACR: ACRMultiFactor, MaxAge: 600, At: 1}, handle)
	f.Add(good, "/report?year=2026&"+RetryParam+"="+good)
	f.Add("", "/")
	f.Add("AAAA", "/a?"+RetryParam+"=x&"+RetryParam+"=y&b")
	f.Add(strings.Repeat("A", 2000), "//evil.example/")
	f.Add("%%%", "/a?b=%zz&"+RetryParam)
	f.Fuzz(func(t *testing.T, mark, path string) {
		if m, ok := c.openRetryMark(mark, handle); ok && mark != good {
			t.Fatalf("a marker that was not sealed opened: %q -> %+v", mark, m)
		}
		if _, ok := c.openRetryMark(mark, randomToken()); ok {
			t.Fatalf("a marker opened for another session: %q", mark)
		}
		out, err := withRetryMark(path, good)
		if err != nil {
			return
		}
		if checkReturnTo(path) != nil {
			t.Fatalf("withRetryMark accepted %q, which is not a local path", path)
		}
		if err := checkReturnTo(out); err != nil {
			t.Fatalf("withRetryMark(%q) = %q: %v", path, out, err)
		}
		_, query, _ := strings.Cut(out, "?")
		n := 0
		for _, kv := range strings.Split(query, "&") {
			if k, v, _ := strings.Cut(kv, "="); k == RetryParam {
				n++
				if got, _ := url.QueryUnescape(v); got != good {
					t.Fatalf("marker %q, want %q", got, good)
				}
			}
		}
		if n != 1 {
			t.Fatalf("withRetryMark(%q) = %q: %d markers", path, out, n)
		}
		if !strings.HasPrefix(out, strings.SplitN(path, "?", 2)[0]+"?") {
			t.Fatalf("withRetryMark(%q) = %q changed the path", path, out)
		}
	})
}
