//go:build !linux

package config

// memoryLimit is unknown outside Linux; the caller falls back to a fixed
// default.
func memoryLimit() int64 { return 0 }
