package stepup

import (
	"math/bits"
	"strings"
	"time"
)

// decodeCompactClaims is decodeClaims' fast path, for claim sets as Auth0
// writes them: compact JSON (no white space at all), every name and string
// of printable ASCII without escapes, and every value a string, an array of
// strings, an integer of at most 15 digits, true or false. It decodes such a
// payload into c and arena (as decodeClaimsJSON would) and reports true; on
// anything else it reports false, having perhaps written to both, and
// decodeClaims starts over on the general decoder, which decodes it or says
// what is wrong with it. So this path decides nothing that decodeClaimsJSON
// would not: it only refuses to decide (FuzzDecodeClaims checks that what it
// accepts, decodeClaimsJSON accepts with the same result).
//
// It exists for speed: one loop over the payload, instead of the general
// decoder's calls per member and per value, runs fewer instructions and
// touches less code, which counts most when a verification runs with cold
// caches (BenchmarkDecodeClaims; BENCHMARKS.md for a whole verification).
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
		k, j, ok := compactString(p, i)
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
			v, j, ok := compactString(p, i)
			if !ok || !c.compactString(slot, v, arena) {
				return false
			}
			i = j
		case b == '[':
			var list []string
			var ok bool
			if slot < 0 {
				i, ok = skipCompactStrings(p, i)
			} else {
				list, i, ok = compactStrings(p, i, arena)
				ok = ok && c.compactStrings(slot, list)
			}
			if !ok {
				return false
			}
		case b >= '0' && b <= '9':
			x, j, ok := compactInt(p, i)
			if !ok || !c.compactTime(slot, x) {
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
			case len(p)-i >= 4 && p[i:i+4] == "true":
				i += 4
			case len(p)-i >= 5 && p[i:i+5] == "false":
				i += 5
			default:
				return false
			}
		default:
			return false
		}
		if i >= n {
			return false
		}
		if p[i] != ',' {
			return p[i] == '}' && i == n-1
		}
		i++
	}
}

// compactString returns the string that opens at p[i] (a quote) and the
// index after its closing quote; false when p[i] is not a quote or the
// string holds a byte that is not plain before its closing quote: a quote,
// a backslash, a control byte or a non-ASCII byte (special8's), eight bytes
// at a time as in jsonDecoder.str.
func compactString(p string, i int) (string, int, bool) {
	if i >= len(p) || p[i] != '"' {
		return "", 0, false
	}
	j := i + 1
	for {
		if j+8 <= len(p) {
			m := special8(load8(p, j))
			if m == 0 {
				j += 8
				continue
			}
			j += bits.TrailingZeros64(m) >> 3
		} else {
			for j < len(p) && p[j] >= ' ' && p[j] < 0x80 && p[j] != '"' && p[j] != '\\' {
				j++
			}
		}
		if j < len(p) && p[j] == '"' {
			return p[i+1 : j], j + 1, true
		}
		return "", 0, false
	}
}

// compactStrings decodes the array of strings that opens at p[i] into arena
// and returns it (an empty array is []string{}, as claimStrings gives) and
// the index after it.
func compactStrings(p string, i int, arena *[]string) ([]string, int, bool) {
	i++ // '['
	if i < len(p) && p[i] == ']' {
		return []string{}, i + 1, true
	}
	start := len(*arena)
	for {
		s, j, ok := compactString(p, i)
		if !ok || j >= len(p) {
			return nil, 0, false
		}
		*arena = append(*arena, s)
		switch p[j] {
		case ',':
			i = j + 1
		case ']':
			return (*arena)[start:len(*arena):len(*arena)], j + 1, true
		default:
			return nil, 0, false
		}
	}
}

// skipCompactStrings is compactStrings for a member not read.
func skipCompactStrings(p string, i int) (int, bool) {
	i++ // '['
	if i < len(p) && p[i] == ']' {
		return i + 1, true
	}
	for {
		_, j, ok := compactString(p, i)
		if !ok || j >= len(p) {
			return 0, false
		}
		switch p[j] {
		case ',':
			i = j + 1
		case ']':
			return j + 1, true
		default:
			return 0, false
		}
	}
}

// compactInt decodes the integer at p[i] (a digit): 0, or up to 15 digits
// without a leading zero. Whatever follows it is the caller's to check (a
// '.' or an 'e' is neither the ',' nor the '}' it needs).
func compactInt(p string, i int) (int64, int, bool) {
	if p[i] == '0' {
		return 0, i + 1, true
	}
	start := i
	var x int64
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		x = x*10 + int64(p[i]-'0')
		i++
	}
	if i-start > 15 {
		return 0, 0, false
	}
	return x, i, true
}

// compactString sets the claim in slot to the string v, as member does;
// false when the claim is not a string (member's error, or a value it
// ignores, which the general path then handles).
func (c *registeredClaims) compactString(slot int, v string, arena *[]string) bool {
	switch slot {
	case -1:
	case slotIss:
		c.iss = v
	case slotSub:
		c.sub = v
	case slotAzp:
		c.azp, c.hasAzp = v, true
	case slotClientID:
		c.clientID = v
	case slotNonce:
		c.nonce, c.hasNonce = v, true
	case slotSID:
		c.sid = v
	case slotACR:
		c.acr = v
	case slotOrgID:
		c.orgID = v
	case slotJTI:
		c.jti = v
	case slotAud:
		c.aud = appendArena(arena, v)
	case slotScope:
		c.scope, c.hasScope = v, true
		c.scopes = splitSpaces(v, arena)
	case slotEmail:
		c.email = v
	case slotName:
		c.name = v
	case slotNSACR:
		c.nsACR, c.hasNSACR = v, true
	default:
		return false
	}
	return true
}

// compactStrings sets the claim in slot to the list of strings l, as member
// does; false when the claim is not a list.
func (c *registeredClaims) compactStrings(slot int, l []string) bool {
	switch slot {
	case slotAud:
		c.aud = l
	case slotAMR:
		c.amr = l
	case slotPermissions:
		c.permissions = l
	case slotScope:
		c.scopes, c.hasScope = l, true
	case slotNSAMR:
		c.nsAMR, c.hasNSAMR = l, true
	default:
		return false
	}
	return true
}

// splitSpaces is splitScope for a plain string, whose only white space can
// be ' ': it splits at each ' ' with strings.IndexByte.
func splitSpaces(s string, arena *[]string) []string {
	start := len(*arena)
	for len(s) > 0 {
		j := strings.IndexByte(s, ' ')
		if j < 0 {
			*arena = append(*arena, s)
			break
		}
		if j > 0 {
			*arena = append(*arena, s[:j])
		}
		s = s[j+1:]
	}
	if len(*arena) == start {
		return nil
	}
	return (*arena)[start:len(*arena):len(*arena)]
}

// compactTime sets the NumericDate claim in slot to x seconds, as
// jsonDecoder.claimTime does; false when the claim is not a NumericDate or
// x is out of its range.
func (c *registeredClaims) compactTime(slot int, x int64) bool {
	if x > 1e11 {
		return false
	}
	d := numericDate{t: time.Unix(x, 0), ok: true}
	switch slot {
	case -1:
	case slotIat:
		c.iat = d
	case slotExp:
		c.exp = d
	case slotNbf:
		c.nbf = d
	case slotAuthTime:
		c.authTime = d
	case slotNSAuthTime:
		c.nsAuthTime, c.hasNSA = d, true
	default:
		return false
	}
	return true
}
