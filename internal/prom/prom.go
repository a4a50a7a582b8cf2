// Package prom is the little of the Prometheus client vigil needs: counters,
// gauges and histograms, the Go runtime and process metrics, and a /metrics
// handler writing the text exposition format 0.0.4. It replaces
// github.com/prometheus/client_golang, whose protobuf, expfmt and procfs
// dependencies cost about 3 MiB of binary for fourteen metrics; its output is
// byte for byte what client_golang wrote for the same values.
package prom

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Metric types, as written on # TYPE lines.
const (
	counterType   = "counter"
	gaugeType     = "gauge"
	histogramType = "histogram"
	summaryType   = "summary"
)

// Family is one metric name with its samples, ready to write.
type Family struct {
	Name, Help, Type string
	Samples          []Sample
}

// Sample is one line: the family's name plus Suffix (_bucket, _sum...).
type Sample struct {
	Suffix string
	Labels []Label // in the order written
	Value  float64
}

// Label is a name="value" pair.
type Label struct{ Name, Value string }

// Collector yields families at scrape time.
type Collector interface {
	Collect() ([]Family, error)
}

// Registry holds collectors; Gather sorts their families by name, as
// client_golang did, so the output order does not depend on registration.
type Registry struct {
	mu   sync.Mutex
	cols []Collector
}

// Register adds collectors.
func (r *Registry) Register(cs ...Collector) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cols = append(r.cols, cs...)
}

// Gather collects every family, sorted by name. On errors it returns what
// it could collect with the first error.
func (r *Registry) Gather() ([]Family, error) {
	r.mu.Lock()
	cols := append([]Collector(nil), r.cols...)
	r.mu.Unlock()
	var (
		out      []Family
		firstErr error
	)
	for _, c := range cols {
		fs, err := c.Collect()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		out = append(out, fs...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, firstErr
}

// value is a float64 updated atomically: events come from several goroutines.
type value struct{ bits atomic.Uint64 }

func (v *value) get() float64  { return math.Float64frombits(v.bits.Load()) }
func (v *value) set(f float64) { v.bits.Store(math.Float64bits(f)) }
func (v *value) add(d float64) {
	for {
		old := v.bits.Load()
		if v.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// Counter only goes up.
type Counter struct {
	name, help string
	labels     []Label // constant labels
	v          value
}

// NewCounter returns a counter at 0.
func NewCounter(name, help string) *Counter { return &Counter{name: name, help: help} }

// Inc adds 1.
func (c *Counter) Inc() { c.v.add(1) }

// Collect implements Collector.
func (c *Counter) Collect() ([]Family, error) {
	return []Family{{c.name, c.help, counterType, []Sample{{Labels: c.labels, Value: c.v.get()}}}}, nil
}

// Gauge is set to any value.
type Gauge struct {
	name, help string
	labels     []Label // constant labels
	v          value
}

// NewGauge returns a gauge at 0; constLabels are name, value pairs, written
// sorted by name as client_golang does.
func NewGauge(name, help string, constLabels ...string) *Gauge {
	g := &Gauge{name: name, help: help}
	for i := 0; i+1 < len(constLabels); i += 2 {
		g.labels = append(g.labels, Label{constLabels[i], constLabels[i+1]})
	}
	sort.Slice(g.labels, func(i, j int) bool { return g.labels[i].Name < g.labels[j].Name })
	return g
}

// Set sets the value.
func (g *Gauge) Set(f float64) { g.v.set(f) }

// Collect implements Collector.
func (g *Gauge) Collect() ([]Family, error) {
	return []Family{{g.name, g.help, gaugeType, []Sample{{Labels: g.labels, Value: g.v.get()}}}}, nil
}

// Vec is a counter or gauge with one variable label. A family with no
// children is not written, as in client_golang.
type Vec struct {
	name, help, typ, label string

	mu       sync.Mutex
	children map[string]*value
}

// NewCounterVec returns a counter family keyed by label.
func NewCounterVec(name, help, label string) *Vec {
	return &Vec{name: name, help: help, typ: counterType, label: label, children: map[string]*value{}}
}

// NewGaugeVec returns a gauge family keyed by label.
func NewGaugeVec(name, help, label string) *Vec {
	return &Vec{name: name, help: help, typ: gaugeType, label: label, children: map[string]*value{}}
}

func (v *Vec) child(lv string) *value {
	v.mu.Lock()
	defer v.mu.Unlock()
	c := v.children[lv]
	if c == nil {
		c = new(value)
		v.children[lv] = c
	}
	return c
}

// Touch makes the child for lv exist (at 0) so it is written before its
// first update.
func (v *Vec) Touch(lv string) { v.child(lv) }

// Inc adds 1 to the child for lv (counters).
func (v *Vec) Inc(lv string) { v.child(lv).add(1) }

// Set sets the child for lv (gauges).
func (v *Vec) Set(lv string, f float64) { v.child(lv).set(f) }

// Delete removes the child for lv.
func (v *Vec) Delete(lv string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.children, lv)
}

// Collect implements Collector; samples are sorted by label value.
func (v *Vec) Collect() ([]Family, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.children) == 0 {
		return nil, nil
	}
	f := Family{Name: v.name, Help: v.help, Type: v.typ}
	for lv, c := range v.children {
		f.Samples = append(f.Samples, Sample{Labels: []Label{{v.label, lv}}, Value: c.get()})
	}
	sort.Slice(f.Samples, func(i, j int) bool { return f.Samples[i].Labels[0].Value < f.Samples[j].Labels[0].Value })
	return []Family{f}, nil
}

// Histogram counts observations in cumulative buckets.
type Histogram struct {
	name, help string
	upper      []float64 // sorted bucket upper bounds, without +Inf

	mu     sync.Mutex // one lock: a scrape sees count, sum and buckets of the same observations
	counts []uint64   // per bucket, not cumulative; last is +Inf
	sum    float64
}

// NewHistogram returns an empty histogram with the given upper bounds.
func NewHistogram(name, help string, buckets []float64) *Histogram {
	return &Histogram{name: name, help: help, upper: buckets, counts: make([]uint64, len(buckets)+1)}
}

// Observe records f: it counts in the first bucket whose bound is >= f.
func (h *Histogram) Observe(f float64) {
	i := sort.SearchFloat64s(h.upper, f)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[i]++
	h.sum += f
}

// Collect implements Collector.
func (h *Histogram) Collect() ([]Family, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := Family{Name: h.name, Help: h.help, Type: histogramType}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		le := math.Inf(1)
		if i < len(h.upper) {
			le = h.upper[i]
		}
		f.Samples = append(f.Samples, Sample{Suffix: "_bucket", Labels: []Label{{"le", formatFloat(le)}}, Value: float64(cum)})
	}
	f.Samples = append(f.Samples,
		Sample{Suffix: "_sum", Value: h.sum},
		Sample{Suffix: "_count", Value: float64(cum)})
	return []Family{f}, nil
}

// CollectorFunc adapts a function to Collector.
type CollectorFunc func() ([]Family, error)

// Collect implements Collector.
func (f CollectorFunc) Collect() ([]Family, error) { return f() }

// WriteText appends f in the text format 0.0.4.
func WriteText(b *strings.Builder, f Family) {
	b.WriteString("# HELP ")
	b.WriteString(f.Name)
	b.WriteByte(' ')
	helpEscaper.WriteString(b, f.Help)
	b.WriteString("\n# TYPE ")
	b.WriteString(f.Name)
	b.WriteByte(' ')
	b.WriteString(f.Type)
	b.WriteByte('\n')
	for _, s := range f.Samples {
		b.WriteString(f.Name)
		b.WriteString(s.Suffix)
		for i, l := range s.Labels {
			if i == 0 {
				b.WriteByte('{')
			} else {
				b.WriteByte(',')
			}
			b.WriteString(l.Name)
			b.WriteString(`="`)
			labelEscaper.WriteString(b, l.Value)
			b.WriteByte('"')
		}
		if len(s.Labels) > 0 {
			b.WriteByte('}')
		}
		b.WriteByte(' ')
		b.WriteString(formatFloat(s.Value))
		b.WriteByte('\n')
	}
}

// The exposition escapes \ and newline in HELP, and " too in label values.
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// formatFloat writes f as Prometheus' expfmt does: shortest 'g' form, so
// 1234567 is 1.234567e+06, and +Inf, -Inf, NaN spelled out.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
