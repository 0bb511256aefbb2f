package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"testing"

	"github.com/corral-sh/corral/client"
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
		{fmt.Errorf("%w: service a is defined in corral.toml", config.ErrInFile), "defined_in_file", 409},
		{errors.New("disk on fire"), "internal", 500},
	} {
		code, status := classify(tc.err)
		if code != tc.code || status != tc.status {
			t.Errorf("%v: %s %d, want %s %d", tc.err, code, status, tc.code, tc.status)
		}
	}
	// The codes only the API sends have the client's constants too.
	for _, c := range [][2]string{
		{codeUnknownService, client.CodeUnknownService},
		{codeBadConfig, client.CodeBadConfig},
		{codeInternal, client.CodeInternal},
		{codeNotFound, client.CodeNotFound},
		{codeMethodNotAllowed, client.CodeMethodNotAllowed},
		{codeDefinedInFile, client.CodeDefinedInFile},
	} {
		if c[0] != c[1] {
			t.Errorf("api code %q is %q in the client", c[0], c[1])
		}
	}
	for code, status := range httpStatus {
		if status < 400 || status == http.StatusInternalServerError && code != codeInternal {
			t.Errorf("code %s answers %d", code, status)
		}
	}
}

// Every code the API answers with is in docs/openapi.json's ErrorCode
// enum (and so, by TestDocsListEveryKindStateAndCode, in docs/api.md), and
// the enum lists nothing else.
func TestOpenAPIErrorCodesAreTheAPIs(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas struct {
				ErrorCode struct {
					Enum []string `json:"enum"`
				} `json:"ErrorCode"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for c := range httpStatus {
		codes = append(codes, c)
	}
	documented := doc.Components.Schemas.ErrorCode.Enum
	slices.Sort(codes)
	slices.Sort(documented)
	if !slices.Equal(codes, documented) {
		t.Fatalf("the API answers with codes\n  %v\nthe document's ErrorCode lists\n  %v", codes, documented)
	}
}
