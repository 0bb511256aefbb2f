package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"testing"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/service"
	"github.com/corral-sh/corral/internal/supervisor"
)

// The status of every code (docs/api.md has the same table), and the code
// of the errors that carry none of the service's.
func TestClassify(t *testing.T) {
	svcErr := func(c service.Code) error {
		return fmt.Errorf("webui starts after db: %w", &service.Error{Code: c, Service: "db", Msg: "m"})
	}
	for _, tc := range []struct {
		err    error
		code   string
		status int
	}{
		{svcErr(service.CodeBadRequest), "bad_request", 400},
		{svcErr(service.CodeProfileMismatch), "profile_mismatch", 409},
		{svcErr(service.CodeExternal), "external", 409},
		{svcErr(service.CodeFrozen), "frozen", 409},
		{svcErr(service.CodeStopIncomplete), "stop_incomplete", 409},
		{svcErr(service.CodeLeftover), "leftover", 409},
		{svcErr(service.CodeStopped), "stopped", 409},
		{svcErr(service.CodePortInUse), "port_in_use", 409},
		{svcErr(service.CodeNotReady), "not_ready", 502},
		{svcErr(service.CodeUnhealthy), "unhealthy", 502},
		{svcErr(service.CodeExited), "exited", 502},
		{svcErr(service.CodeStartLimit), "start_limit", 502},
		{svcErr(service.CodeSpawnFailed), "spawn_failed", 502},
		{svcErr(service.CodeRunaway), "runaway", 502},
		{svcErr(service.CodeShuttingDown), "shutting_down", 503},
		{svcErr(service.CodeTimeout), "timeout", 504},
		{service.ErrShutdown, "shutting_down", 503},
		{fmt.Errorf("%w %q", supervisor.ErrUnknown, "x"), "unknown_service", 404},
		{fmt.Errorf("reload rejected: %w", &config.Error{File: "f", Line: 1, Col: 1, Msg: "m"}), "bad_config", 400},
		{badConfig{fmt.Errorf("config: %w", &fs.PathError{Op: "open", Path: "f", Err: fs.ErrNotExist})}, "bad_config", 400},
		{fmt.Errorf("%w: n=%q", errBadInput, "x"), "bad_request", 400},
		{fmt.Errorf("waiting: %w", context.DeadlineExceeded), "timeout", 504},
		// The service's code comes first, whatever the error wraps.
		{&service.Error{Code: service.CodeNotReady, Err: context.DeadlineExceeded}, "not_ready", 502},
		{errors.New("disk on fire"), "internal", 500},
	} {
		code, status := classify(tc.err)
		if code != tc.code || status != tc.status {
			t.Errorf("%v: %s %d, want %s %d", tc.err, code, status, tc.code, tc.status)
		}
	}
	for code, status := range httpStatus {
		if status < 400 || status == http.StatusInternalServerError && code != codeInternal {
			t.Errorf("code %s answers %d", code, status)
		}
	}
}
