package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestWatchedCoversEveryHandler: the stub sees watched, which embeds the
// plugin. A handler added to the plugin but not to watched would still
// run (promoted), yet its event would escape the liveness check: every
// exported method of the plugin must be redefined on watched.
func TestWatchedCoversEveryHandler(t *testing.T) {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	methods := map[string][]string{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || len(fn.Recv.List) != 1 || !fn.Name.IsExported() {
				continue
			}
			typ := fn.Recv.List[0].Type
			if star, ok := typ.(*ast.StarExpr); ok {
				typ = star.X
			}
			if id, ok := typ.(*ast.Ident); ok {
				methods[id.Name] = append(methods[id.Name], fn.Name.Name)
			}
		}
	}
	slices.Sort(methods["plugin"])
	slices.Sort(methods["watched"])
	if len(methods["plugin"]) < 8 || !slices.Equal(methods["plugin"], methods["watched"]) {
		t.Errorf("plugin's handlers %v, watched's %v: want the same", methods["plugin"], methods["watched"])
	}
}
