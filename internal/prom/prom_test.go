package prom

import (
	"math"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// The text format as client_golang wrote it (values captured from v1.25.0).
func TestWriteText(t *testing.T) {
	v := NewCounterVec("c_total", "Help with \\ and\nnewline and \"quotes\".", "l")
	v.Inc("we\\ird\"na\nme")
	v.Inc("a")
	h := NewHistogram("h_seconds", "H.", []float64{.001, 1, 30})
	for _, x := range []float64{.0015, 30, 1234567} {
		h.Observe(x)
	}
	g := NewGauge("g", "G.", "version", "v1", "goversion", "go1")
	g.Set(1234567890123)
	var r Registry
	r.Register(v, h, g)
	fams, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range fams {
		WriteText(&b, f)
	}
	want := `# HELP c_total Help with \\ and\nnewline and "quotes".
# TYPE c_total counter
c_total{l="a"} 1
c_total{l="we\\ird\"na\nme"} 1
# HELP g G.
# TYPE g gauge
g{goversion="go1",version="v1"} 1.234567890123e+12
# HELP h_seconds H.
# TYPE h_seconds histogram
h_seconds_bucket{le="0.001"} 0
h_seconds_bucket{le="1"} 1
h_seconds_bucket{le="30"} 2
h_seconds_bucket{le="+Inf"} 3
h_seconds_sum 1.2345970015e+06
h_seconds_count 3
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	for f, s := range map[float64]string{0: "0", 1: "1", -1: "-1", 0.25: "0.25", 100: "100", 1e21: "1e+21", math.Inf(1): "+Inf", math.NaN(): "NaN"} {
		if got := formatFloat(f); got != s {
			t.Errorf("formatFloat(%v) = %q, want %q", f, got, s)
		}
	}
}

func TestNegotiation(t *testing.T) {
	for in, want := range map[string]string{
		"": "identity", "gzip": "gzip", "*": "identity", "gzip, identity": "identity",
		"zstd;q=1.0, gzip;q=0.5": "gzip", "identity;q=0": "", "br": "identity",
	} {
		var hs []string
		if in != "" {
			hs = []string{in}
		}
		if got := encoding(hs); got != want {
			t.Errorf("encoding(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"": "underscores",
		"text/plain;version=1.0.0;escaping=allow-utf-8,text/plain;version=0.0.4;q=0.7": "allow-utf-8",
		"text/plain;version=0.0.4;escaping=values":                                     "values",
		"text/plain;version=0.0.4,text/plain;version=1.0.0;escaping=dots;q=0.5":        "underscores",
	} {
		if got := escaping(in); got != want {
			t.Errorf("escaping(%q) = %q, want %q", in, got, want)
		}
	}
}

// Updates from several goroutines while the handler scrapes: run with -race;
// the final scrape must count every update.
func TestConcurrentScrape(t *testing.T) {
	var r Registry
	c := NewCounterVec("c_total", "C.", "l")
	h := NewHistogram("h", "H.", []float64{1})
	r.Register(c, h)
	hd := Handler(&r, HandlerOpts{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				c.Inc("x")
				h.Observe(0.5)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			hd.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/metrics", nil))
		}
	})
	wg.Wait()
	rec := httptest.NewRecorder()
	hd.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range []string{`c_total{l="x"} 2000`, `h_bucket{le="1"} 2000`, `h_count 2000`, `h_sum 1000`} {
		if !strings.Contains(rec.Body.String(), line+"\n") {
			t.Errorf("no %q in\n%s", line, rec.Body.String())
		}
	}
}
