package fetch

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// FuzzPickBinary feeds arbitrary info documents: whatever is picked must be
// one of the document's own entries, for this platform or "any".
func FuzzPickBinary(f *testing.F) {
	f.Add(`{"binaries":{"` + platform() + `":"https://example.com/appd"}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		got, err := pickBinary(doc)
		if err != nil {
			return
		}
		var v struct {
			Binaries map[string]string `json:"binaries"`
		}
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatalf("picked %q from a document that does not parse: %v", got, err)
		}
		if u, ok := v.Binaries[platform()]; ok {
			if got != u {
				t.Fatalf("picked %q, want this platform's %q", got, u)
			}
			return
		}
		if got != v.Binaries["any"] {
			t.Fatalf("picked %q, want the \"any\" entry %q", got, v.Binaries["any"])
		}
	})
}

// FuzzParseSource feeds arbitrary URLs: an accepted one downloads only over
// http(s) or from an absolute local path, carries a checksum when one is
// required, and names a known archive type or none.
func FuzzParseSource(f *testing.F) {
	f.Add("https://example.com/appd?checksum=sha256:00", true)
	f.Fuzz(func(t *testing.T, raw string, mustChecksum bool) {
		s, err := parseSource(raw, mustChecksum)
		if err != nil {
			return
		}
		u, err := url.Parse(s.url)
		if err != nil {
			t.Fatalf("accepted %q as %q, which does not parse: %v", raw, s.url, err)
		}
		switch u.Scheme {
		case "http", "https":
			if u.Host == "" || s.local != "" {
				t.Fatalf("accepted %q: http URL %q without host or with a local path %q", raw, s.url, s.local)
			}
		case "file":
			if !strings.HasPrefix(s.local, "/") {
				t.Fatalf("accepted %q: local path %q is not absolute", raw, s.local)
			}
		default:
			t.Fatalf("accepted %q with scheme %q", raw, u.Scheme)
		}
		if mustChecksum && u.Query().Get("checksum") == "" {
			t.Fatalf("accepted %q without a checksum although one is required", raw)
		}
		if s.archive != "" && !strings.Contains(strings.Join(archiveTypes, " ")+" ", s.archive+" ") {
			t.Fatalf("accepted %q with unknown archive type %q", raw, s.archive)
		}
		if strings.Contains(s.redacted, "::") {
			t.Fatalf("accepted %q that forces a go-getter protocol", raw)
		}
	})
}
