package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestDefaultValidates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	want := []string{ClassBestEffort, ClassBurstable, ClassLatencySensitive}
	if got := Default().ClassNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("ClassNames = %v, want %v", got, want)
	}
}

// TestParseDoesNotShareDefaults checks that parsing cannot mutate the
// built-in classes seen by later callers.
func TestParseDoesNotShareDefaults(t *testing.T) {
	if _, err := Parse([]byte("classes:\n  burstable:\n    low: 0.5\nnamespaceClasses:\n  x: burstable\n")); err != nil {
		t.Fatal(err)
	}
	c := Default()
	if got := *c.Classes[ClassBurstable].Low; got != 1.0 {
		t.Errorf("Default burstable low = %v after Parse, want 1", got)
	}
	if len(c.NamespaceClasses) != 0 {
		t.Errorf("Default namespaceClasses = %v after Parse, want empty", c.NamespaceClasses)
	}
	a, b := BuiltinClasses(), BuiltinClasses()
	*a[ClassLatencySensitive].Min = 0.1
	a[ClassBurstable].Reclaim.Priority = 1
	if *b[ClassLatencySensitive].Min != 1.0 || b[ClassBurstable].Reclaim.Priority != 50 {
		t.Errorf("BuiltinClasses returns shared pointers")
	}
}

// TestShippedConfigIsDefault checks that the documented configuration file
// matches Default() exactly.
func TestShippedConfigIsDefault(t *testing.T) {
	path := filepath.Join("..", "..", "config", "nri-memqos.yaml")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s does not exist yet", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	want := Default()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s does not parse to Default()\n got: %s\nwant: %s", path, dump(got), dump(want))
		// Narrow down which part differs.
		for _, n := range want.ClassNames() {
			if !reflect.DeepEqual(got.Classes[n], want.Classes[n]) {
				t.Errorf("class %s: got %s, want %s", n, dumpClass(got.Classes[n]), dumpClass(want.Classes[n]))
			}
		}
		for _, n := range got.ClassNames() {
			if _, ok := want.Classes[n]; !ok {
				t.Errorf("extra class %s: %s", n, dumpClass(got.Classes[n]))
			}
		}
	}
}
