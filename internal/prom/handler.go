package prom

import (
	"compress/gzip"
	"fmt"
	"log"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// HandlerOpts mirrors the promhttp options vigil used.
type HandlerOpts struct {
	ErrorLog            *log.Logger // nil = none
	MaxRequestsInFlight int         // 0 = no limit
}

// Handler serves reg's families as promhttp.HandlerFor did with
// HTTPErrorOnError and a Registry: the same headers, gzip when asked,
// ?name[]= filtering, 503 beyond the in-flight limit, and
// promhttp_metric_handler_errors_total. Only the text format is offered:
// clients asking for protobuf or OpenMetrics get text, as Prometheus
// without native histograms always does.
func Handler(reg *Registry, opts HandlerOpts) http.Handler {
	errCnt := NewCounterVec("promhttp_metric_handler_errors_total",
		"Total number of internal errors encountered by the promhttp metric handler.", "cause")
	errCnt.Touch("gathering")
	errCnt.Touch("encoding")
	reg.Register(errCnt)
	var sem chan struct{}
	if opts.MaxRequestsInFlight > 0 {
		sem = make(chan struct{}, opts.MaxRequestsInFlight)
	}
	logf := func(v ...any) {
		if opts.ErrorLog != nil {
			opts.ErrorLog.Println(v...)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sem != nil {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			default:
				http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", opts.MaxRequestsInFlight),
					http.StatusServiceUnavailable)
				return
			}
		}
		fams, err := reg.Gather()
		if err != nil {
			logf("error gathering metrics:", err)
			errCnt.Inc("gathering")
			http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
			return
		}
		var filter map[string]bool
		if names := r.URL.Query()["name[]"]; len(names) > 0 {
			filter = map[string]bool{}
			for _, n := range names {
				filter[n] = true
			}
		}
		var b strings.Builder
		for _, f := range fams {
			if filter == nil || filter[f.Name] {
				WriteText(&b, f)
			}
		}
		h := w.Header()
		h.Add("Vary", "Accept")
		h.Add("Vary", "Accept-Encoding")
		h.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8; escaping="+escaping(r.Header.Get("Accept")))
		switch encoding(r.Header["Accept-Encoding"]) {
		case "gzip":
			h.Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			if _, err := gz.Write([]byte(b.String())); err == nil {
				err = gz.Close()
			}
		case "identity":
			_, err = w.Write([]byte(b.String()))
		default: // q=0 for both offers: promhttp logged it and sent identity
			logf("error getting writer", "content compression format not recognized")
			_, err = w.Write([]byte(b.String()))
		}
		if err != nil {
			logf("error encoding and sending metric family:", err)
			errCnt.Inc("encoding")
		}
	})
}

// escaping is the name escaping scheme echoed in the Content-Type, as
// expfmt.NegotiateAccept chose it: the last known escaping= parameter among
// the Accept clauses, by falling quality, up to the first one asking for
// text 0.0.4. vigil's names need no escaping, so only the header shows it.
func escaping(accept string) string {
	type clause struct {
		q      float64
		params map[string]string
		typ    string
	}
	var cs []clause
	for _, part := range strings.Split(accept, ",") {
		fields := strings.Split(part, ";")
		typ := strings.TrimSpace(fields[0])
		if typ == "" {
			continue
		}
		if typ == "*" {
			typ = "*/*"
		}
		if strings.Count(typ, "/") != 1 {
			continue
		}
		c := clause{q: 1, typ: typ, params: map[string]string{}}
		for _, p := range fields[1:] {
			k, v, ok := strings.Cut(p, "=")
			if !ok || strings.Contains(v, "=") {
				continue
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if k == "q" {
				q, _ := strconv.ParseFloat(v, 32)
				c.q = float64(float32(q))
			} else {
				c.params[k] = v
			}
		}
		cs = append(cs, c)
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].q > cs[j].q })
	scheme := "underscores"
	for _, c := range cs {
		switch e := c.params["escaping"]; e {
		case "allow-utf-8", "underscores", "dots", "values":
			scheme = e
		}
		v := c.params["version"]
		if v == "" && c.typ == "text/plain" {
			v = "0.0.4"
		}
		t, st, _ := strings.Cut(c.typ, "/")
		if (t == "*" || t == "text") && (st == "*" || st == "plain") && v == "0.0.4" {
			break
		}
	}
	return scheme
}

// encoding picks identity or gzip from Accept-Encoding the way promhttp's
// negotiation did: the highest quality wins, identity on ties, and "" when
// the best has q=0.
func encoding(headers []string) string {
	type spec struct {
		value string
		q     float64
	}
	var specs []spec
	for _, h := range headers {
		for _, part := range strings.Split(h, ",") {
			v, params, _ := strings.Cut(part, ";")
			v = strings.TrimSpace(v)
			if v == "" {
				break
			}
			s := spec{value: v, q: 1}
			if params != "" {
				p := strings.TrimSpace(params)
				q, ok := strings.CutPrefix(p, "q=")
				if !ok {
					break
				}
				f, err := strconv.ParseFloat(q, 64)
				if err != nil || f < 0 || f > 1 {
					break
				}
				s.q = f
			}
			specs = append(specs, s)
		}
	}
	best, bestQ := "identity", -1.0
	for _, offer := range []string{"identity", "gzip"} {
		for _, s := range specs {
			if s.q > bestQ && (s.value == "*" || s.value == offer) {
				best, bestQ = offer, s.q
			}
		}
	}
	if bestQ == 0 {
		return ""
	}
	return best
}
