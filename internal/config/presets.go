package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"time"
)

type presetSpec struct {
	ready       Probe
	hook        *Hook
	lifetime    Lifetime
	restartFile string   // relative to the service's dir
	env         []string // KEY=VALUE unless the user sets KEY
}

// preset returns the defaults of a named preset; port 0 means its usual one.
// Keys the user sets override these.
func preset(name string, port int) (presetSpec, error) {
	switch name {
	case "":
		return presetSpec{}, nil
	case "a1111", "forge":
		// Stable Diffusion WebUI (AUTOMATIC1111) and Forge: the API answers
		// once models are loaded, and the server prints its URL; both must
		// hold. It has an endpoint that stops it cleanly, but only when
		// started with --api-server-stop (see Service.HookFor).
		if port == 0 {
			port = 7860
		}
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		return presetSpec{
			ready: Probe{
				HTTP:     base + "/sdapi/v1/options",
				Log:      regexp.MustCompile(`Running on local URL`),
				Timeout:  10 * time.Minute, // first start downloads and loads models
				Interval: 500 * time.Millisecond,
			},
			hook: &Hook{Method: "POST", URL: base + "/sdapi/v1/server-stop", RequiresArg: "--api-server-stop"},
			// "Apply and restart UI": shown only with SD_WEBUI_RESTART set;
			// the UI touches tmp/restart and exits 0, and its launcher
			// starts it again (webui.sh loops on the file; webui.bat does
			// not, so corral does it).
			env:         []string{"SD_WEBUI_RESTART=1"},
			restartFile: filepath.Join("tmp", "restart"),
		}, nil
	case "comfyui":
		if port == 0 {
			port = 8188
		}
		return presetSpec{
			// ComfyUI-Manager's restart re-executes python: on Windows
			// os.execv starts the successor and the old process exits 0.
			lifetime: LifetimeHandover,
			ready: Probe{
				HTTP:     fmt.Sprintf("http://127.0.0.1:%d/system_stats", port),
				Timeout:  5 * time.Minute,
				Interval: 500 * time.Millisecond,
			},
		}, nil
	}
	return presetSpec{}, fmt.Errorf("unknown preset %q (known: a1111, forge, comfyui)", name)
}
