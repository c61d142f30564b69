package auth0test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
)

// maxBody bounds request bodies; Auth0's requests are small.
const maxBody = 64 << 10

var errDuplicate = errors.New("duplicate parameter")

// parseQueryStrict parses the query (and, for POST, the form body) of an
// /authorize request. Parameters sent more than once are refused (RFC 6749 3.1).
func parseQueryStrict(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("malformed query string")
	}
	if r.Method == http.MethodPost {
		body, err := readBody(r)
		if err != nil {
			return nil, err
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("malformed form body")
		}
		for k, v := range form {
			q[k] = append(q[k], v...)
		}
	}
	if err := noDuplicates(q); err != nil {
		return nil, err
	}
	return q, nil
}

func noDuplicates(v url.Values) error {
	for k, vs := range v {
		if len(vs) > 1 {
			return fmt.Errorf("%w: %s", errDuplicate, k)
		}
	}
	return nil
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("unreadable body")
	}
	// Restored even when too large, so that a second reader fails the same way.
	r.Body = io.NopCloser(bytes.NewReader(b))
	if len(b) > maxBody {
		return nil, fmt.Errorf("request body too large")
	}
	return b, nil
}

// parseBody parses a POST body as Auth0 does: application/x-www-form-urlencoded,
// or a JSON object (whose string, number and boolean members become parameters).
func parseBody(r *http.Request) (url.Values, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		if len(bytes.TrimSpace(body)) == 0 {
			return url.Values{}, nil
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("malformed JSON body")
		}
		if m == nil {
			return nil, fmt.Errorf("JSON body must be an object")
		}
		out := url.Values{}
		for k, v := range m {
			switch x := v.(type) {
			case string:
				out.Set(k, x)
			case json.Number:
				out.Set(k, x.String())
			case bool:
				out.Set(k, strconv.FormatBool(x))
			case nil:
			default:
				// Objects (e.g. CIBA login_hint) are passed on as JSON text.
				b, _ := json.Marshal(x)
				out.Set(k, string(b))
			}
		}
		return out, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("malformed form body")
	}
	if err := noDuplicates(form); err != nil {
		return nil, err
	}
	return form, nil
}

// allowPOST answers 405 invalid_request unless r is a POST, and says whether
// the handler may go on.
func allowPOST(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed: use POST")
		return false
	}
	return true
}

// readForm parses r's body (parseBody) and answers 400 invalid_request when it
// is malformed.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	form, err := parseBody(r)
	if err != nil {
		invalidRequest(err.Error()).write(w)
		return nil, false
	}
	return form, true
}

// readClientForm parses r's body and authenticates the client of the
// back-channel request, answering the error itself when either fails.
func (t *Tenant) readClientForm(w http.ResponseWriter, r *http.Request) (url.Values, *Application, bool) {
	form, ok := readForm(w, r)
	if !ok {
		return nil, nil, false
	}
	app, oe := t.authenticateClient(r, form)
	if oe != nil {
		oe.write(w)
		return nil, nil, false
	}
	return form, app, true
}
