package stepup_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestREADMECompiles builds every Go code block of README.md, so a block
// that stops compiling (an API renamed, a signature changed) fails here.
// Each block becomes a package of its own, placed inside this module through
// `go build -overlay` (nothing is written to the tree), with //line
// directives so errors point at README.md's lines. A block is, by its
// shape:
//   - a whole file (it starts with "package"),
//   - top-level declarations (func main, a method, an Example...),
//   - statements, compiled as a function body,
//   - or fields of a stepup.Config literal.
//
// Names a block uses without declaring them (client, ctx, w, r, mux, ...)
// come from readmePreamble, each left out when the block declares it.
// Imports are those of the packages the block names (readmeImports).
func TestREADMECompiles(t *testing.T) {
	src, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeGoBlocks(string(src))
	if len(blocks) < 5 {
		t.Fatalf("found %d Go blocks in README.md; the extraction is broken", len(blocks))
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	overlay := map[string]string{}
	var pkgs []string
	for i, b := range blocks {
		if src, ok := strings.CutPrefix(b.code, "// examples/"); ok {
			// A copy from the examples module (its own go.mod: chi, gin,
			// echo, Prometheus), which scripts/test.sh compiles and tests:
			// here, each line of the block must stand in that file, in order.
			name, _, _ := strings.Cut(src, "\n")
			checkReadmeCopy(t, b, filepath.Join("examples", strings.TrimSpace(name)))
			continue
		}
		files, err := wrapReadmeBlock(b)
		if err != nil {
			t.Errorf("README.md:%d: %v", b.line, err)
			continue
		}
		dir := fmt.Sprintf("internal/readmeblock%02d", i)
		for name, content := range files {
			real := filepath.Join(tmp, fmt.Sprintf("%02d-%s", i, name))
			if err := os.WriteFile(real, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			overlay[filepath.Join(root, dir, name)] = real
		}
		pkgs = append(pkgs, "./"+dir)
	}
	ov, _ := json.Marshal(map[string]any{"Replace": overlay})
	ovPath := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, append([]string{"build", "-overlay", ovPath, "-o", os.DevNull}, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("a Go block of README.md does not compile (%d blocks):\n%s", len(blocks), out)
	}
	t.Logf("%d Go blocks of README.md compile", len(blocks))
}

type readmeBlock struct {
	line int // README.md line of the block's first code line
	code string
}

var fenceRe = regexp.MustCompile("(?m)^( *)```go\n")

// readmeGoBlocks returns the ```go blocks of md, unindented (blocks inside
// list items are indented).
func readmeGoBlocks(md string) []readmeBlock {
	var out []readmeBlock
	for _, m := range fenceRe.FindAllStringSubmatchIndex(md, -1) {
		indent := md[m[2]:m[3]]
		rest := md[m[1]:]
		end := strings.Index(rest, "\n"+indent+"```")
		if end < 0 {
			end = len(rest)
		}
		var lines []string
		for _, l := range strings.Split(rest[:end], "\n") {
			lines = append(lines, strings.TrimPrefix(l, indent))
		}
		out = append(out, readmeBlock{line: strings.Count(md[:m[1]], "\n") + 1, code: strings.Join(lines, "\n") + "\n"})
	}
	return out
}

// readmeImports are the packages README blocks may name, by their name.
var readmeImports = map[string]string{
	"context": "context", "errors": "errors", "fmt": "fmt", "html": "html", "io": "io", "log": "log",
	"os": "os", "strings": "strings", "time": "time", "slog": "log/slog", "json": "encoding/json",
	"http": "net/http", "httptest": "net/http/httptest", "url": "net/url", "testing": "testing",
	"redis":      "github.com/redis/go-redis/v9",
	"stepup":     "github.com/stepupauth/stepup",
	"auth0test":  "github.com/stepupauth/stepup/auth0test",
	"redisstore": "github.com/stepupauth/stepup/redisstore",
	"store":      "github.com/stepupauth/stepup/store",
	"storetest":  "github.com/stepupauth/stepup/store/storetest",
	"oauth2":     "golang.org/x/oauth2",
}

// readmePreamble declares what blocks use without declaring: the variables
// of the handler or start-up code a block belongs in.
var readmePreamble = []struct{ name, decl string }{
	{"ctx", "var ctx context.Context"},
	{"client", "var client *stepup.Client"},
	{"w", "var w http.ResponseWriter"},
	{"r", "var r *http.Request"},
	{"mux", "var mux *http.ServeMux"},
	{"sealingKey", "var sealingKey []byte"},
	{"listSalaries", "func listSalaries(http.ResponseWriter, *http.Request) {}"},
	{"app", "type app struct {\n\tclient *stepup.Client\n\tapi    *stepup.APIClient\n}"},
}

// wrapReadmeBlock turns a block into the files of a package main.
func wrapReadmeBlock(b readmeBlock) (map[string]string, error) {
	line := fmt.Sprintf("//line README.md:%d\n", b.line)
	first := strings.TrimSpace(b.code)
	if strings.HasPrefix(first, "package ") {
		return map[string]string{"block.go": line + b.code}, nil
	}
	fset := token.NewFileSet()
	var body string
	if f, err := parser.ParseFile(fset, "", "package main\n"+b.code, parser.SkipObjectResolution); err == nil {
		declared := topLevelNames(f)
		return readmeFiles(b.code, line+b.code, declared, !slices.Contains(declared, "main")), nil
	}
	fn := "package main\nfunc _() {\n" + b.code + "}\n"
	if f, err := parser.ParseFile(fset, "", fn, parser.SkipObjectResolution); err == nil {
		// A block's own := variables may be unused in the excerpt.
		var uses []string
		for _, st := range f.Decls[0].(*ast.FuncDecl).Body.List {
			if as, ok := st.(*ast.AssignStmt); ok && as.Tok == token.DEFINE {
				for _, l := range as.Lhs {
					if id, ok := l.(*ast.Ident); ok && id.Name != "_" {
						uses = append(uses, "_ = "+id.Name)
					}
				}
			}
		}
		body = "func _() {\n" + line + b.code + strings.Join(uses, "\n") + "\n}\n"
		return readmeFiles(b.code, body, nil, true), nil
	}
	cfg := "package main\nvar _ = stepup.Config{\n" + b.code + "}\n"
	if _, err := parser.ParseFile(fset, "", cfg, parser.SkipObjectResolution); err == nil {
		body = "var _ = stepup.Config{\n" + line + b.code + "}\n"
		return readmeFiles(b.code+"\nstepup.", body, nil, true), nil // the literal names stepup
	}
	return nil, fmt.Errorf("the block is neither a file, declarations, statements nor Config fields")
}

// readmeFiles writes the block's file (imports found from the packages it
// names) and the preamble's (what it does not declare itself), plus a main
// when the block has none.
func readmeFiles(code, body string, declared []string, addMain bool) map[string]string {
	var imp bytes.Buffer
	imp.WriteString("package main\n\nimport (\n")
	names := make([]string, 0, len(readmeImports))
	for n := range readmeImports {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if regexp.MustCompile(`(^|[^\w.])` + n + `\.`).MatchString(code) {
			fmt.Fprintf(&imp, "\t%q\n", readmeImports[n])
		}
	}
	imp.WriteString(")\n\n")
	pre := "package main\n\nimport (\n\t\"context\"\n\t\"net/http\"\n\n\t\"github.com/stepupauth/stepup\"\n)\n\n" +
		"var (\n\t_ context.Context\n\t_ http.Handler\n\t_ stepup.Policy\n)\n\n"
	for _, p := range readmePreamble {
		if !slices.Contains(declared, p.name) {
			pre += p.decl + "\n"
		}
	}
	if addMain {
		pre += "func main() {}\n"
	}
	return map[string]string{"block.go": imp.String() + body, "preamble.go": pre}
}

// topLevelNames lists the functions, types, variables and constants a file
// declares (methods excluded).
func topLevelNames(f *ast.File) []string {
	var out []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				out = append(out, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					out = append(out, s.Name.Name)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						out = append(out, n.Name)
					}
				}
			}
		}
	}
	return out
}

// checkReadmeCopy reports a line of block b (after its first, which names
// file) that does not stand in file after the line before it, blank lines
// and white space aside.
func checkReadmeCopy(t *testing.T, b readmeBlock, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Errorf("README.md:%d: the block names %s: %v", b.line, file, err)
		return
	}
	var have []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			have = append(have, l)
		}
	}
	at := 0
	for n, l := range strings.Split(b.code, "\n")[1:] {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		for at < len(have) && have[at] != l {
			at++
		}
		if at == len(have) {
			t.Errorf("README.md:%d: %q is not in %s (after the lines before it): the block is no longer a copy", b.line+1+n, l, file)
			return
		}
		at++
	}
}
