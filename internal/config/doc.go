// Package config owns corral.toml: its schema, presets for common servers,
// and validation. Every error names the file, line and column of the key at
// fault and says what would be accepted; a file with any error yields no
// configuration at all, so nothing starts on a bad config.
package config
