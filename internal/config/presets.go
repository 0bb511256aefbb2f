package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

type presetSpec struct {
	ready       Probe
	hook        *Hook
	lifetime    Lifetime
	restartFile string   // relative to the service's dir
	env         []string // KEY=VALUE unless the user sets KEY
	signal      string   // the stop signal, when not TERM
	grace       time.Duration
}

// presetNames are the known presets, for messages and completion.
var presetNames = []string{"a1111", "forge", "comfyui", "postgres", "redis", "ollama", "vllm", "llamacpp"}

// PresetNames returns the known presets.
func PresetNames() []string { return slices.Clone(presetNames) }

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
	case "postgres":
		// PostgreSQL's server (postgres -D DIR, or pg_ctl's child): ready
		// once pg_isready says it accepts connections (it exits 1 while
		// the server starts up or recovers, 2 with no answer). SIGTERM is
		// its "smart" shutdown, which waits for every client to
		// disconnect; SIGINT is "fast" (clients disconnected, work rolled
		// back, a clean checkpoint), what a service stop means.
		if port == 0 {
			port = 5432
		}
		return presetSpec{
			ready: Probe{
				Exec:     []string{"pg_isready", "-q", "-h", "127.0.0.1", "-p", fmt.Sprint(port)},
				Timeout:  5 * time.Minute, // crash recovery replays the WAL first
				Interval: 250 * time.Millisecond,
			},
			signal: "INT",
			grace:  time.Minute, // the shutdown checkpoint writes every dirty buffer
		}, nil
	case "redis":
		// redis-server in the foreground: ready once it answers PING
		// (redis-cli exits 1 on no connection and on an error reply such
		// as LOADING while it reads its dataset). SIGTERM saves (if
		// configured) and exits.
		if port == 0 {
			port = 6379
		}
		return presetSpec{
			ready: Probe{
				Exec:     []string{"redis-cli", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "PING"},
				Timeout:  5 * time.Minute, // a large dataset loads first
				Interval: 100 * time.Millisecond,
			},
			grace: 30 * time.Second,
		}, nil
	case "ollama":
		// ollama serve: GET / answers "Ollama is running" once it listens.
		// It listens where OLLAMA_HOST says (default 127.0.0.1:11434): a
		// port given here is passed on in OLLAMA_HOST unless env sets it.
		spec := presetSpec{}
		if port == 0 {
			port = 11434
		} else {
			spec.env = []string{fmt.Sprintf("OLLAMA_HOST=127.0.0.1:%d", port)}
		}
		spec.ready = Probe{
			HTTP:     fmt.Sprintf("http://127.0.0.1:%d/", port),
			Body:     regexp.MustCompile(`Ollama is running`),
			Timeout:  2 * time.Minute,
			Interval: 250 * time.Millisecond,
		}
		return spec, nil
	case "vllm":
		// vllm serve MODEL (the OpenAI-compatible server): /health answers
		// 200 once the engine is up; loading a model and capturing CUDA
		// graphs takes minutes.
		if port == 0 {
			port = 8000
		}
		return presetSpec{
			ready: Probe{
				HTTP:     fmt.Sprintf("http://127.0.0.1:%d/health", port),
				Timeout:  20 * time.Minute,
				Interval: 500 * time.Millisecond,
			},
			grace: 30 * time.Second, // frees GPU memory on the way out
		}, nil
	case "llamacpp":
		// llama.cpp's llama-server: /health is 503 ("loading model")
		// until the model is loaded, then 200.
		if port == 0 {
			port = 8080
		}
		return presetSpec{
			ready: Probe{
				HTTP:     fmt.Sprintf("http://127.0.0.1:%d/health", port),
				Timeout:  10 * time.Minute,
				Interval: 250 * time.Millisecond,
			},
		}, nil
	}
	return presetSpec{}, fmt.Errorf("unknown preset %q%s (known: %s)", name, DidYouMean(name, presetNames), strings.Join(presetNames, ", "))
}
