// Package importer owns the translation of other supervisors'
// configurations into corral.toml: supervisord's INI files (with their
// [include] files), Procfiles (with the .env beside them, as foreman and
// overmind read them) and PM2 ecosystem files (JSON, YAML, or JavaScript
// evaluated by node).
//
// Each format has its own file; every format fills the same model (Result:
// services, each with where it came from, groups, and findings), and one
// writer turns the model into a commented corral.toml. A Procfile's .env
// becomes the services' env_file where corral's own env-file reader
// (config.ReadEnv) reads it as foreman does; the variables it would read
// otherwise are also written in env. A setting is never dropped
// silently: one that corral cannot express, expresses only approximately, or
// does not need is a Finding, written both as a comment under its service
// and in the report. The importer only reads: it starts nothing, and a
// value from the environment of the import (supervisord's %(ENV_X)s, a
// dotenv reference to a variable the file does not set) is reported as
// expanded, because corral's env values are literal.
package importer
