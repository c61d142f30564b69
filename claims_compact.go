package stepup

import "time"

// decodeCompactClaims is decodeClaims' fast path, for claim sets as Auth0
// writes them: compact JSON (no white space at all) whose names and strings
// hold only ASCII bytes from ' ' on, without quotes inside or escapes, and
// whose values are strings, arrays of strings, integers of at most 15 digits
// (up to 1e11 for a NumericDate), or, for members not read, true or false.
// It decodes such a payload into c and arena, through the same setters as
// decodeClaimsJSON, and reports true; on anything else it reports false,
// having perhaps written to both, and decodeClaims starts over on the
// general decoder, which decodes the payload or says what is wrong with it.
// So this path decides nothing the general decoder would not: it only
// declines to decide. TestCompactClaimsRandom and FuzzCompactClaims check
// that what it accepts, decodeClaimsJSON accepts with the same result.
//
// It exists for speed: one loop over the payload, instead of the general
// decoder's calls per member and per value, runs fewer instructions and
// touches less code, which counts when a verification runs with cold caches
// (BENCHMARKS.md: about 0.7% of an uncached access-token verification with
// the peers in the loop).
func decodeCompactClaims(p string, c *registeredClaims, arena *[]string, ns *claimNames) bool {
	n := len(p)
	if n < 2 || p[0] != '{' || p[n-1] != '}' {
		return false
	}
	if n == 2 {
		return true // {}
	}
	var seen uint32
	// The names of the members not read, for the repeated-name check; a
	// claim set with more of them takes the general path.
	var others [8]string
	nOthers := 0
	i := 1
	for {
		k, j, ok := scanString(p, i)
		if !ok || j >= n || p[j] != ':' {
			return false
		}
		i = j + 1
		slot := claimSlot(k)
		if slot < 0 && ns != nil && ns.acr != "" {
			switch k {
			case ns.acr:
				slot = slotNSACR
			case ns.amr:
				slot = slotNSAMR
			case ns.authTime:
				slot = slotNSAuthTime
			}
		}
		if slot >= 0 {
			if seen&(1<<slot) != 0 {
				return false
			}
			seen |= 1 << slot
		} else {
			for _, o := range others[:nOthers] {
				if o == k {
					return false
				}
			}
			if nOthers == len(others) {
				return false
			}
			others[nOthers] = k
			nOthers++
		}
		if i >= n-1 {
			return false
		}
		switch b := p[i]; {
		case b == '"':
			v, j, ok := scanString(p, i)
			if !ok || (slot >= 0 && !c.setString(slot, v, arena)) {
				return false
			}
			i = j
		case b == '[':
			if slot < 0 {
				if _, i, ok = scanStrings(p, i, nil); !ok {
					return false
				}
				break
			}
			var l []string
			if l, i, ok = scanStrings(p, i, arena); !ok || !c.setStrings(slot, l) {
				return false
			}
		case b >= '0' && b <= '9':
			x, j, ok := scanInt(p, i)
			if !ok || (slot >= 0 && (x > 1e11 || !c.setTime(slot, numericDate{t: time.Unix(x, 0), ok: true}))) {
				return false
			}
			i = j
		case b == 't' || b == 'f':
			// Only for members not read (email_verified, say): every claim
			// we read is something else.
			if slot >= 0 {
				return false
			}
			switch {
			case n-i >= 4 && p[i:i+4] == "true":
				i += 4
			case n-i >= 5 && p[i:i+5] == "false":
				i += 5
			default:
				return false
			}
		default:
			return false
		}
		// Each value above ends at n-1 at the latest (the '}' there is
		// not part of any), so p[i] is in range.
		if p[i] != ',' {
			return p[i] == '}' && i == n-1
		}
		i++
	}
}

// scanString returns the string that opens at p[i] (a quote) and the index
// after its closing quote; false when p[i] is not a quote or the string
// holds a byte that needs the general decoder (a control byte, a backslash
// or a non-ASCII byte) before its closing quote.
func scanString(p string, i int) (string, int, bool) {
	if i >= len(p) || p[i] != '"' {
		return "", 0, false
	}
	j := plainPrefix(p, i+1)
	if j >= len(p) || p[j] != '"' {
		return "", 0, false
	}
	return p[i+1 : j], j + 1, true
}

// scanStrings returns the array of strings that opens at p[i] (a '['),
// appended to arena (an empty array is []string{}, as claimStrings gives),
// and the index after it. With a nil arena it only finds the array's end.
func scanStrings(p string, i int, arena *[]string) ([]string, int, bool) {
	i++ // '['
	if i < len(p) && p[i] == ']' {
		return []string{}, i + 1, true
	}
	start := 0
	if arena != nil {
		start = len(*arena)
	}
	for {
		s, j, ok := scanString(p, i)
		if !ok || j >= len(p) {
			return nil, 0, false
		}
		if arena != nil {
			*arena = append(*arena, s)
		}
		switch p[j] {
		case ',':
			i = j + 1
		case ']':
			if arena == nil {
				return nil, j + 1, true
			}
			return (*arena)[start:len(*arena):len(*arena)], j + 1, true
		default:
			return nil, 0, false
		}
	}
}

// scanInt returns the integer at p[i] (a digit): 0, or up to 15 digits
// without a leading zero (which also keeps it from overflowing). Whatever
// follows it is the caller's to check: a '.' or an 'e' is neither the ','
// nor the '}' it needs.
func scanInt(p string, i int) (int64, int, bool) {
	if p[i] == '0' {
		return 0, i + 1, true
	}
	start := i
	var x int64
	for i < len(p) && p[i] >= '0' && p[i] <= '9' && i-start < 16 {
		x = x*10 + int64(p[i]-'0')
		i++
	}
	if i-start > 15 {
		return 0, 0, false
	}
	return x, i, true
}
