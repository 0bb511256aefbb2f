package metrics

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/service"
	"github.com/corral-sh/corral/internal/supervisor"
)

// Source is what a scrape reads: every service's status with its members.
type Source interface {
	List(withMembers bool) []supervisor.View
}

// Metrics is one daemon's metrics. Its vectors are safe for concurrent
// use (prometheus' own locking); it holds no other state.
type Metrics struct {
	src Source
	log *slog.Logger
	reg *prometheus.Registry

	restarts *prometheus.CounterVec
	runaways *prometheus.CounterVec
	leaks    *prometheus.CounterVec
	probes   *prometheus.HistogramVec
}

// New makes the metrics of src.
func New(src Source, log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		src: src, log: log, reg: prometheus.NewRegistry(),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corral_service_restarts_total",
			Help: "Restarts of a service by reason: the code of the failure the policy restarted after (exited, unhealthy, not_ready, runaway, ...), program (its restart_file) or requested (corral restart).",
		}, []string{"service", "reason"}),
		runaways: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corral_service_runaways_total",
			Help: "Limit breaches of a service's tree by the first limit breached (processes, memory, fork_rate).",
		}, []string{"service", "limit"}),
		leaks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corral_leaks_total",
			Help: "Leak alarms: processes of corral's found outside any live container (service \"\" when none could be named).",
		}, []string{"service"}),
		probes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "corral_service_probe_duration_seconds",
			Help:    "Duration of one readiness or liveness check of a service (probe ready or health; result ok or fail).",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"service", "probe", "result"}),
	}
	m.reg.MustRegister(m.restarts, m.runaways, m.leaks, m.probes, (*trees)(m),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the metrics are registered (for tests and for a
// caller that serves them in its own format).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' text format (or OpenMetrics,
// when asked for).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError})
}

// Observe counts what only an event tells. It is called for every event
// the daemon emits (journal.Bus.Tap), under the bus's lock: it must stay
// cheap and never block.
func (m *Metrics) Observe(e journal.Event) {
	switch e.Kind {
	case journal.Restart:
		reason := e.Fields["cause"]
		if e.Fields["by"] == "program" {
			reason = "program"
		}
		if reason == "" {
			reason = "unknown"
		}
		m.restarts.WithLabelValues(e.Service, reason).Inc()
	case journal.State:
		if e.Fields["to"] == string(service.Restarting) {
			m.restarts.WithLabelValues(e.Service, "requested").Inc()
		}
	case journal.Runaway:
		m.runaways.WithLabelValues(e.Service, e.Fields["kind"]).Inc()
	case journal.Leak:
		m.leaks.WithLabelValues(e.Service).Inc()
	}
}

// ObserveProbe records one check of a service's probe ("ready" or
// "health") that took d and failed with err (nil: passed).
func (m *Metrics) ObserveProbe(svc, probe string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "fail"
	}
	m.probes.WithLabelValues(svc, probe, result).Observe(d.Seconds())
}

// trees collects the figures read from the status at each scrape.
type trees Metrics

var (
	descState = prometheus.NewDesc("corral_service_state",
		"1 for the state the service is in, 0 for the others (docs/api.md lists the states).", []string{"service", "state"}, nil)
	descStarts = prometheus.NewDesc("corral_service_starts_total",
		"Instances started since the daemon started.", []string{"service"}, nil)
	descMembers = prometheus.NewDesc("corral_service_members",
		"Live processes in the service's tree.", []string{"service"}, nil)
	descRSS = prometheus.NewDesc("corral_service_rss_bytes",
		"Resident memory summed over the tree's members.", []string{"service"}, nil)
	descCPU = prometheus.NewDesc("corral_service_cpu_seconds",
		"Processor time of the tree's live members and of the children they waited for (a member's time leaves the figure when it exits, so this is a gauge).", []string{"service"}, nil)
	descGPU = prometheus.NewDesc("corral_service_gpu_memory_bytes",
		"GPU memory used by the tree's members (nvidia-smi's compute apps); absent without nvidia-smi.", []string{"service"}, nil)
	descGPUProcs = prometheus.NewDesc("corral_service_gpu_processes",
		"Members of the tree holding GPU memory.", []string{"service"}, nil)
	descLastStop = prometheus.NewDesc("corral_service_last_stop_processes",
		"The last stop of the service's tree: members that exited on the stop signal, were killed after the grace period, or survived (a stop that could not empty the tree).", []string{"service", "outcome"}, nil)
	descLastStopDur = prometheus.NewDesc("corral_service_last_stop_duration_seconds",
		"How long the last stop of the service's tree took.", []string{"service"}, nil)
	descUptime = prometheus.NewDesc("corral_service_instance_start_time_seconds",
		"When the running instance started (Unix time); absent with no instance.", []string{"service"}, nil)
)

func (t *trees) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descStarts, descMembers, descRSS, descCPU, descGPU, descGPUProcs, descLastStop, descLastStopDur, descUptime} {
		ch <- d
	}
}

func (t *trees) Collect(ch chan<- prometheus.Metric) {
	for _, v := range t.src.List(true) {
		n := v.Name
		for _, s := range service.States {
			val := 0.0
			if s == v.State {
				val = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, val, n, string(s))
		}
		ch <- prometheus.MustNewConstMetric(descStarts, prometheus.CounterValue, float64(v.Starts), n)
		ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(v.MemberCount), n)
		ch <- prometheus.MustNewConstMetric(descRSS, prometheus.GaugeValue, float64(v.RSS), n)
		ch <- prometheus.MustNewConstMetric(descCPU, prometheus.GaugeValue, v.CPUSeconds, n)
		if v.GPUMemory != nil {
			procs := 0
			for _, m := range v.Members {
				if m.GPUMemory != nil {
					procs++
				}
			}
			ch <- prometheus.MustNewConstMetric(descGPU, prometheus.GaugeValue, float64(*v.GPUMemory), n)
			ch <- prometheus.MustNewConstMetric(descGPUProcs, prometheus.GaugeValue, float64(procs), n)
		}
		if r := v.LastStop; r != nil {
			ch <- prometheus.MustNewConstMetric(descLastStop, prometheus.GaugeValue, float64(r.Exited), n, "exited_on_signal")
			ch <- prometheus.MustNewConstMetric(descLastStop, prometheus.GaugeValue, float64(r.Killed), n, "killed")
			ch <- prometheus.MustNewConstMetric(descLastStop, prometheus.GaugeValue, float64(len(r.Survivors)), n, "survivors")
			ch <- prometheus.MustNewConstMetric(descLastStopDur, prometheus.GaugeValue, r.Duration.Seconds(), n)
		}
		if v.Instance != "" && !v.StartedAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(descUptime, prometheus.GaugeValue, float64(v.StartedAt.UnixNano())/1e9, n)
		}
	}
}
