package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// errEmptyFile rejects a configuration file that holds no document: a file
// being written (truncated, or created and not yet filled) must not read as
// the defaults.
var errEmptyFile = errors.New(`invalid config: the file is empty (or only comments); allowed: a YAML mapping of configuration keys, "{}" for the built-in defaults`)

// Parse reads a YAML (or JSON) configuration over the defaults and validates it.
// Unknown keys are errors. Input without a document (empty, whitespace,
// comments only, a YAML null) yields the defaults: that is the runtime's
// "no configuration" for a pre-registered plugin. A file goes through Load,
// which rejects such input.
func Parse(data []byte) (*Config, error) {
	cfg, _, err := parse(data)
	return cfg, err
}

// Load reads and parses a configuration file. A file without a document
// is an error (errEmptyFile): "{}" asks for the defaults.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read config: %w", err)
	}
	return parseFile(path, data)
}

// parseFile parses data read from the configuration file path.
func parseFile(path string, data []byte) (*Config, error) {
	cfg, doc, err := parse(data)
	if err == nil && !doc {
		err = errEmptyFile
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// parse decodes data over the defaults and validates the result; doc tells
// whether data held a document at all.
func parse(data []byte) (cfg *Config, doc bool, err error) {
	cfg = Default()
	if len(bytes.TrimSpace(data)) > 0 {
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, false, fmt.Errorf("invalid config: %w", err)
		}
		if !bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
			doc = true
			dec := json.NewDecoder(bytes.NewReader(js))
			dec.DisallowUnknownFields()
			if err := dec.Decode(cfg); err != nil {
				return nil, false, fmt.Errorf("invalid config: %w", err)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, false, err
	}
	return cfg, doc, nil
}
