package ocihook

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/node"
	"nri-memqos/pkg/state"
)

// StateFileName is the state file under the state directory, the NRI
// plugin's and the hooks' alike.
const StateFileName = "ancestors.json"

// DefaultStateDir is the state directory of the plugin and the hooks.
const DefaultStateDir = "/run/nri-memqos"

// Main runs the hook: prog names it in messages, args are its flags, stdin
// carries the OCI state. It returns the exit status: 0 when done or when
// there is nothing to do, 1 with one line on stderr when the container must
// not start (a bad label, annotation or configuration; its values could not
// be written), 2 for bad flags.
func Main(prog string, args []string, stdin io.Reader, stderr io.Writer) int {
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configFile = fs.String("config", "", "configuration `FILE` (YAML), as the plugin's -config; none: the built-in defaults")
		stateDir   = fs.String("state-dir", DefaultStateDir, "`DIR` of the state shared with the NRI plugin and the other hooks")
		logLevel   = fs.String("log-level", "off", "log level of the core's messages to stderr: off, debug, info, warn, error (runtimes show a hook's stderr only when it fails, where the error is its last line)")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s [flags] < OCI state\n\nRun by the OCI runtime as a createRuntime or prestart hook (the container's\nstate is \"creating\": decide and write its memory QoS) and as a poststop\nhook (\"stopped\": withdraw its ancestors' protection).\n\n", prog)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q: the OCI state comes on stdin\n", prog, fs.Arg(0))
		return 2
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	if *logLevel != "off" {
		lvl, err := logrus.ParseLevel(*logLevel)
		if err != nil {
			fmt.Fprintf(stderr, "%s: -log-level %q: not a level; allowed: off, debug, info, warn, error\n", prog, *logLevel)
			return 2
		}
		log.SetOutput(stderr)
		log.SetLevel(lvl)
	}
	if err := run(log, *configFile, *stateDir, stdin); err != nil {
		// One line: errors joined (several files that could not be
		// written) go on it one after the other.
		fmt.Fprintf(stderr, "%s: %s\n", prog, strings.ReplaceAll(err.Error(), "\n", "; "))
		return 1
	}
	return 0
}

func run(log *logrus.Logger, configFile, stateDir string, stdin io.Reader) error {
	var st specs.State
	if err := json.NewDecoder(stdin).Decode(&st); err != nil {
		return fmt.Errorf("reading the OCI state from stdin: %w", err)
	}
	if st.ID == "" {
		return errors.New("the OCI state on stdin has no container id")
	}
	var c node.Container
	switch st.Status {
	case specs.StateCreating, specs.StateCreated:
		spec, err := ReadSpec(&st)
		if err != nil {
			return err
		}
		labels, err := CRIOPodLabels(&st, spec)
		if err != nil {
			log.Warnf("container %s: %v", st.ID, err)
		}
		var ok bool
		if c, ok = Facts(&st, spec, labels); !ok {
			return nil
		}
	case specs.StateStopped:
		var ok bool
		if c, ok = Facts(&st, nil, nil); !ok {
			return nil
		}
	default:
		return fmt.Errorf("container %s is %q: run this hook at createRuntime or prestart (creating) and poststop (stopped)", st.ID, st.Status)
	}
	var cfg *config.Config
	if configFile != "" {
		var err error
		if cfg, err = config.Load(configFile); err != nil {
			return err
		}
	}
	host, err := node.ReadHost()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	stateFile := filepath.Join(stateDir, StateFileName)
	lock, err := state.LockHook(stateFile)
	if errors.Is(err, state.ErrPluginRunning) {
		log.Infof("container %s: the NRI plugin runs on %s and manages it: nothing to do", st.ID, stateDir)
		return nil
	}
	if err != nil {
		return err
	}
	defer lock.Release() //nolint:errcheck // closing lock files: the kernel drops the locks anyway
	core := node.New(node.Options{Log: log, Host: host, FileConfig: cfg, StateFile: stateFile, OneShot: true})
	if err := core.Configure(""); err != nil {
		return err
	}
	if st.Status == specs.StateStopped {
		core.RemoveNow(c)
	} else if _, err = core.CreateNow(c); err != nil {
		_ = core.Close()
		return fmt.Errorf("container %.12s: %w", c.ID, err)
	}
	return core.Close()
}
