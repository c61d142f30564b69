package stepup

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzDefaultNavigation: the Accept headers of any request (bounded only by
// the server's header limit) decide without panicking, and a header that
// lists a media type other than */* is never a navigation.
func FuzzDefaultNavigation(f *testing.F) {
	for _, a := range []string{"", "*/*", "application/json", "*/*;q=0.8", "text/plain, */*", ",,,", " ; ", "*/*,"} {
		f.Add(http.MethodGet, a)
	}
	f.Fuzz(func(t *testing.T, method, accept string) {
		r := &http.Request{Method: method, Header: http.Header{"Accept": {accept}}}
		got := DefaultNavigation(r)
		if got && method != http.MethodGet && method != http.MethodHead {
			t.Fatalf("%s is a navigation", method)
		}
		for part := range strings.SplitSeq(accept, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if mt = strings.TrimSpace(mt); got && mt != "" && mt != "*/*" {
				t.Fatalf("Accept %q (lists %q) is a navigation", accept, mt)
			}
		}
	})
}
