package main

import (
	"runtime/debug"
	"testing"
)

func TestSetGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	for _, tc := range []struct {
		name string
		env  map[string]string
		want int
	}{
		{name: "GOGC unset: the plugin's default", env: map[string]string{}, want: gcPercent},
		{name: "GOGC set: the runtime's reading of it stays", env: map[string]string{"GOGC": "200"}, want: 100},
		{name: "GOGC=off stays off", env: map[string]string{"GOGC": "off"}, want: 100},
		{name: "only GOMEMLIMIT set: the plugin's GOGC", env: map[string]string{"GOMEMLIMIT": "64MiB"}, want: gcPercent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100) // as the runtime would have set from the environment
			setGC(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if got := debug.SetGCPercent(100); got != tc.want {
				t.Errorf("GC percent = %d; want %d", got, tc.want)
			}
		})
	}
}
