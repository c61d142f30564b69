// Package qr encodes short byte strings (an otpauth:// URI) as QR codes
// (ISO/IEC 18004), for the demo's "add an authenticator app" page: byte
// mode, error-correction level L, versions 1 to 9 (up to 230 bytes), one
// fixed mask. It is not cryptography and not a general QR library: no other
// mode, level or version, and no decoder (its test decodes with zbarimg).
package qr

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
)

// ErrTooLong: the data does not fit a version 9 code at level L.
var ErrTooLong = errors.New("qr: data longer than 230 bytes")

// Code is a QR code: Size×Size modules.
type Code struct {
	Size    int
	modules []bool // row-major, true = dark
}

// Dark reports whether the module at column x, row y is dark.
func (c *Code) Dark(x, y int) bool { return c.modules[y*c.Size+x] }

// level L, per version 1..9: total codewords, EC codewords per block, blocks.
var versions = [...]struct{ total, ec, blocks int }{
	{}, {26, 7, 1}, {44, 10, 1}, {70, 15, 1}, {100, 20, 1}, {134, 26, 1},
	{172, 18, 2}, {196, 20, 2}, {242, 24, 2}, {292, 30, 2},
}

// alignment pattern centres, per version.
var alignment = [...][]int{nil, nil, {6, 18}, {6, 22}, {6, 26}, {6, 30}, {6, 34},
	{6, 22, 38}, {6, 24, 42}, {6, 26, 46}}

// Encode returns the smallest code (version 1 to 9, level L) holding data.
func Encode(data []byte) (*Code, error) {
	ver := 0
	for v := 1; v < len(versions); v++ {
		dataCW := versions[v].total - versions[v].ec*versions[v].blocks
		if 4+8+8*len(data) <= dataCW*8 {
			ver = v
			break
		}
	}
	if ver == 0 {
		return nil, ErrTooLong
	}
	e := newEncoder(ver)
	e.drawFunctionPatterns()
	e.drawCodewords(e.codewords(data))
	e.applyMask()
	e.drawFormat()
	return &Code{Size: e.size, modules: e.dark}, nil
}

type encoder struct {
	ver, size int
	dark, fn  []bool // module colour; whether it is a function module
}

func newEncoder(ver int) *encoder {
	size := 17 + 4*ver
	return &encoder{ver: ver, size: size, dark: make([]bool, size*size), fn: make([]bool, size*size)}
}

func (e *encoder) set(x, y int, dark bool) {
	e.dark[y*e.size+x] = dark
	e.fn[y*e.size+x] = true
}

func (e *encoder) drawFunctionPatterns() {
	for i := range e.size { // timing patterns
		e.set(6, i, i%2 == 0)
		e.set(i, 6, i%2 == 0)
	}
	for _, c := range [][2]int{{3, 3}, {e.size - 4, 3}, {3, e.size - 4}} { // finders and separators
		for dy := -4; dy <= 4; dy++ {
			for dx := -4; dx <= 4; dx++ {
				x, y := c[0]+dx, c[1]+dy
				if x < 0 || y < 0 || x >= e.size || y >= e.size {
					continue
				}
				d := max(abs(dx), abs(dy))
				e.set(x, y, d != 2 && d != 4)
			}
		}
	}
	pos := alignment[e.ver]
	for i, cy := range pos {
		for j, cx := range pos {
			last := len(pos) - 1
			if (i == 0 && j == 0) || (i == 0 && j == last) || (i == last && j == 0) {
				continue // under a finder
			}
			for dy := -2; dy <= 2; dy++ {
				for dx := -2; dx <= 2; dx++ {
					e.set(cx+dx, cy+dy, max(abs(dx), abs(dy)) != 1)
				}
			}
		}
	}
	e.drawFormat() // reserves the format areas (drawn again after masking)
	if e.ver >= 7 {
		rem := e.ver
		for range 12 {
			rem = rem<<1 ^ (rem>>11)*0x1F25
		}
		bits := e.ver<<12 | rem
		for i := range 18 {
			dark := bits>>i&1 == 1
			a, b := e.size-11+i%3, i/3
			e.set(a, b, dark)
			e.set(b, a, dark)
		}
	}
}

// drawFormat draws the format information: level L (01), mask 0.
func (e *encoder) drawFormat() {
	const data = 1<<3 | 0
	rem := data
	for range 10 {
		rem = rem<<1 ^ (rem>>9)*0x537
	}
	bits := (data<<10 | rem) ^ 0x5412
	bit := func(i int) bool { return bits>>i&1 == 1 }
	for i := 0; i <= 5; i++ {
		e.set(8, i, bit(i))
	}
	e.set(8, 7, bit(6))
	e.set(8, 8, bit(7))
	e.set(7, 8, bit(8))
	for i := 9; i < 15; i++ {
		e.set(14-i, 8, bit(i))
	}
	for i := range 8 {
		e.set(e.size-1-i, 8, bit(i))
	}
	for i := 8; i < 15; i++ {
		e.set(8, e.size-15+i, bit(i))
	}
	e.set(8, e.size-8, true) // the dark module
}

// codewords returns the data and error-correction codewords, interleaved.
func (e *encoder) codewords(data []byte) []byte {
	v := versions[e.ver]
	dataCW := v.total - v.ec*v.blocks
	var bb bitBuffer
	bb.put(0b0100, 4)
	bb.put(len(data), 8)
	for _, b := range data {
		bb.put(int(b), 8)
	}
	bb.put(0, min(4, dataCW*8-bb.n))
	bb.put(0, (8-bb.n%8)%8)
	for pad := 0xEC; bb.n < dataCW*8; pad ^= 0xEC ^ 0x11 {
		bb.put(pad, 8)
	}
	msg := bb.b
	short := dataCW / v.blocks
	longs := dataCW % v.blocks
	gen := rsGenerator(v.ec)
	var blocks, ecs [][]byte
	for i, off := 0, 0; i < v.blocks; i++ {
		n := short
		if i >= v.blocks-longs {
			n++
		}
		blocks = append(blocks, msg[off:off+n])
		ecs = append(ecs, rsRemainder(msg[off:off+n], gen))
		off += n
	}
	out := make([]byte, 0, v.total)
	for i := 0; i <= short; i++ {
		for _, b := range blocks {
			if i < len(b) {
				out = append(out, b[i])
			}
		}
	}
	for i := range v.ec {
		for _, ec := range ecs {
			out = append(out, ec[i])
		}
	}
	return out
}

func (e *encoder) drawCodewords(cw []byte) {
	i := 0
	for right := e.size - 1; right >= 1; right -= 2 {
		if right == 6 {
			right = 5
		}
		for vert := range e.size {
			for j := range 2 {
				x := right - j
				y := vert
				if (right+1)&2 == 0 {
					y = e.size - 1 - vert
				}
				if !e.fn[y*e.size+x] && i < len(cw)*8 {
					e.dark[y*e.size+x] = cw[i>>3]>>(7-i&7)&1 == 1
					i++
				}
			}
		}
	}
}

// applyMask applies mask 0, (x+y) mod 2 == 0, to the data modules. Any
// mask decodes; a penalty-chosen one only reads more easily.
func (e *encoder) applyMask() {
	for y := range e.size {
		for x := range e.size {
			if !e.fn[y*e.size+x] && (x+y)%2 == 0 {
				e.dark[y*e.size+x] = !e.dark[y*e.size+x]
			}
		}
	}
}

type bitBuffer struct {
	b []byte
	n int
}

func (bb *bitBuffer) put(v, bits int) {
	for i := bits - 1; i >= 0; i-- {
		if bb.n%8 == 0 {
			bb.b = append(bb.b, 0)
		}
		if v>>i&1 == 1 {
			bb.b[bb.n/8] |= 0x80 >> (bb.n % 8)
		}
		bb.n++
	}
}

// gfMul multiplies in GF(256) with the QR polynomial x^8+x^4+x^3+x^2+1.
func gfMul(x, y byte) byte {
	var z int
	for i := 7; i >= 0; i-- {
		z = z<<1 ^ (z>>7)*0x11D
		z ^= int(y>>i&1) * int(x)
	}
	return byte(z)
}

// rsGenerator returns the coefficients (highest first, leading 1 dropped)
// of the product of (x - α^i), i < degree.
func rsGenerator(degree int) []byte {
	g := make([]byte, degree)
	g[degree-1] = 1
	root := byte(1)
	for range degree {
		for j := range degree {
			g[j] = gfMul(g[j], root)
			if j+1 < degree {
				g[j] ^= g[j+1]
			}
		}
		root = gfMul(root, 2)
	}
	return g
}

func rsRemainder(data, gen []byte) []byte {
	r := make([]byte, len(gen))
	for _, b := range data {
		f := b ^ r[0]
		copy(r, r[1:])
		r[len(r)-1] = 0
		for i := range r {
			r[i] ^= gfMul(gen[i], f)
		}
	}
	return r
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// PNG renders c with scale pixels per module and a 4-module quiet zone.
func (c *Code) PNG(scale int) ([]byte, error) {
	if scale < 1 || scale > 32 {
		return nil, errors.New("qr: scale must be 1 to 32")
	}
	n := (c.Size + 8) * scale
	img := image.NewGray(image.Rect(0, 0, n, n))
	for i := range img.Pix {
		img.Pix[i] = 0xFF
	}
	for y := range c.Size {
		for x := range c.Size {
			if !c.Dark(x, y) {
				continue
			}
			for dy := range scale {
				for dx := range scale {
					img.SetGray((x+4)*scale+dx, (y+4)*scale+dy, color.Gray{})
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
