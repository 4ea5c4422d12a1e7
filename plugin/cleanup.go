package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/cleanup"
	"nri-memqos/pkg/config"
	"nri-memqos/pkg/ocihook"
	"nri-memqos/pkg/state"
)

// stateFileName is the plugin's state file under -state-dir.
const stateFileName = ocihook.StateFileName

const cleanupUsage = `Usage: nri-memqos cleanup [flags]

Withdraws what nri-memqos set on this node, for an uninstall: run it once
the plugin is stopped for good (a restart or an upgrade keeps protection:
do not run it then). From the plugin's state file it

  - lowers every ancestor memory.min / memory.low the plugin raised back to
    its baseline (what kubelet or anyone else had set there);
  - resets every container file the plugin set to what the container would
    hold without the plugin: on cgroup v2 kubelet's own unified value where
    kubelet set the key, else the kernel's default (memory.min and
    memory.low 0, memory.high max, memory.swap.max max, memory.oom.group
    0); on cgroup v1 the value found before the plugin's first write, else
    the kernel's default (soft limit and memsw limit unlimited, swappiness
    60).

A file is written only while it still holds the plugin's value: a value
someone else changed since is theirs and stays (reported as "kept"). One
line per file, then a summary. After a cleanup without failures the state
file is removed, so that a plugin started later starts clean.

The cgroup mount is the one the state file was written for; -config (the
plugin's configuration: cgroupRoot, cgroupVersion) must agree with it, and
-cgroup-root names where that mount is seen from here when elsewhere.

Flags:
`

const cleanupExit = `
Exit status: 0 done (or nothing to do); 1 some file could not be written
(the state file is kept: run it again); 2 bad flags or input (nothing
written).
`

// runCleanup is `nri-memqos cleanup`. It returns the exit status.
func runCleanup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cleanup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		stateDir   = fs.String("state-dir", "/run/nri-memqos", "`DIR` holding the plugin's state file ("+stateFileName+"), as the plugin's -state-dir")
		configFile = fs.String("config", "", "the plugin's configuration `FILE` (YAML), for cgroupRoot and cgroupVersion; default: the mount the state file names")
		cgroupRoot = fs.String("cgroup-root", "", "where the cgroup filesystem is mounted (`DIR`); default: -config's cgroupRoot, else the state file's")
		cgroupVer  = fs.String("cgroup-version", "", "cgroup `VERSION`: auto, 1 or 2; default: -config's cgroupVersion, else the state file's")
		dryRun     = fs.Bool("dry-run", false, "print what would be written, write nothing, keep the state file")
	)
	usage := func(w io.Writer) {
		fmt.Fprint(w, cleanupUsage)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		fmt.Fprint(w, cleanupExit)
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "nri-memqos cleanup: "+format+"\n", a...)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		return fail("%v; allowed flags: -state-dir DIR, -config FILE, -cgroup-root DIR, -cgroup-version auto|1|2, -dry-run (-h for help)", err)
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q; cleanup takes flags only (-h for help)", fs.Arg(0))
	}
	if *stateDir == "" {
		return fail("-state-dir \"\": without the plugin's state file nothing tells what it set")
	}
	switch *cgroupVer {
	case "", "auto", "1", "2":
	default:
		return fail("-cgroup-version %q; allowed: auto, 1, 2", *cgroupVer)
	}

	stateFile := filepath.Join(*stateDir, stateFileName)
	st, err := state.Read(stateFile)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stdout, "no state file %s: the plugin left nothing recorded here (never ran with this -state-dir, ran without one, or was cleaned up already); nothing to do\n", stateFile)
		return 0
	}
	if err != nil {
		return fail("%v", err)
	}

	// The mount: the state file's, then the configuration's, then the flags.
	scopeRoot, scopeVersion, scopeOK := state.ParseScope(st.Scope)
	root, version := scopeRoot, ""
	if scopeOK {
		version = fmt.Sprint(scopeVersion)
	}
	if *configFile != "" {
		cfg, err := config.Load(*configFile)
		if err != nil {
			return fail("-config: %v", err)
		}
		if scopeOK && filepath.Clean(cfg.CgroupRoot) != filepath.Clean(scopeRoot) && *cgroupRoot == "" {
			return fail("the state file %s was written for the cgroup mount %s, -config %s names cgroupRoot %s: "+
				"give the state dir of the plugin that used this configuration, or -cgroup-root to say where that mount is seen from here",
				stateFile, scopeRoot, *configFile, cfg.CgroupRoot)
		}
		root, version = cfg.CgroupRoot, string(cfg.CgroupVersion)
	}
	if *cgroupRoot != "" {
		root = *cgroupRoot
	}
	if *cgroupVer != "" {
		version = *cgroupVer
	}
	if root == "" {
		return fail("the state file %s names no cgroup mount (scope %q): give -config or -cgroup-root and -cgroup-version", stateFile, st.Scope)
	}
	cg, err := cgroupfs.Detect(root, version)
	if err != nil {
		return fail("%v", err)
	}
	if scopeOK && cg.Version != scopeVersion {
		return fail("the state file %s was written for cgroup v%d, the mount at %s is cgroup v%d: nothing written", stateFile, scopeVersion, cg.Root, cg.Version)
	}
	if err := cleanup.Validate(st, cg.Version); err != nil {
		return fail("state file %s: %v; nothing written", stateFile, err)
	}

	mode := ""
	if *dryRun {
		mode = " (dry run: nothing is written)"
	}
	fmt.Fprintf(stdout, "cleanup of %s, cgroup v%d at %s%s: %d containers, %d ancestor values\n",
		stateFile, cg.Version, cg.Root, mode, len(st.Containers), len(st.Ancestors))
	sum := cleanup.Run(cg, cg.Version, st, cleanup.Options{DryRun: *dryRun, Out: stdout})
	reset := "reset"
	if *dryRun {
		reset = "would be reset"
	}
	fmt.Fprintf(stdout, "summary: %d %s, %d unchanged, %d kept (changed by someone else), %d gone, %d failed\n",
		sum.Reset, reset, sum.Unchanged, sum.Kept, sum.Gone, sum.Failed)
	switch {
	case sum.Failed > 0:
		fmt.Fprintf(stdout, "state file %s kept: run nri-memqos cleanup again once the failures above are fixed\n", stateFile)
		return 1
	case *dryRun:
		fmt.Fprintf(stdout, "dry run: nothing written, state file %s kept\n", stateFile)
		return 0
	}
	if err := state.Remove(stateFile); err != nil {
		fmt.Fprintf(stderr, "nri-memqos cleanup: every value is reset, but the state file stays: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "state file %s removed\n", stateFile)
	return 0
}
