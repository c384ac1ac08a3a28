// Package config loads and validates wsgate's TOML configuration file.
//
// Load and Parse return either a fully defaulted, validated *Config or an
// Errors value listing every problem found in the file, each as
// "FILE:LINE: key: what is wrong". The rest of wsgate reads only the plain
// fields of Config and never needs to re-check them: every range, cross
// reference (a route naming a pool) and uniqueness rule is enforced here, so
// `wsgate check` and `wsgate run` agree on what is valid.
//
// Decoding is strict: a key wsgate does not know is an error, because a
// misspelt key silently falling back to its default is the kind of mistake
// that only shows up in production.
//
// REFERENCE.md in this directory documents every key.
package config
