package config

import "errors"

// What Windows cannot do, said where a configuration asks for it (kept
// here, beside each other, so that tests on every platform read them).
var errRunAsWindows = errors.New("not supported on Windows: a service runs as the user of corral's daemon there (Windows has no setuid); run the daemon as that user (as that user: corral service install --user) and remove user and group")

const umaskRefusedWindows = "not supported on Windows: files there get the permissions (ACLs) of their directory, not a umask; remove umask"
