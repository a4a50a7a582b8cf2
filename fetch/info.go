package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// source is one URL to download, checked and classified.
type source struct {
	url      string // as given to go-getter
	redacted string // for logs and errors
	archive  string // archive type, "" for a plain file
	local    string // the path, for file sources
}

// fileName names the downloaded file inside the staging folder. The name
// matters only to go-getter's checksum files, which are looked up by it.
func (s source) fileName() string {
	u, err := url.Parse(s.url)
	if err == nil {
		if b := path.Base(u.Path); b != "." && b != "/" && b != "" {
			return b
		}
	}
	return "download"
}

// archiveTypes are the suffixes (and ?archive= values) cosmovisor unpacks;
// the longest matching suffix wins.
var archiveTypes = []string{
	"zip", "tar", "tar.gz", "tgz", "tar.bz2", "tbz2", "tar.xz", "txz", "tar.zst", "tzst",
	"gz", "bz2", "xz", "zst",
}

// parseSource checks a URL from a plan (or an absolute path) and decides how
// it is downloaded. Errors are permanent: the URL will not get better.
func parseSource(raw string, mustChecksum bool) (source, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return source{}, errors.New("empty URL")
	}
	if strings.Contains(raw, "::") {
		return source{}, fmt.Errorf("URL %q forces a go-getter protocol; vigil downloads only over http, https and file", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return source{}, fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	s := source{}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return source{}, fmt.Errorf("URL %q has no host", raw)
		}
	case "file":
		if u.Opaque != "" || !filepath.IsAbs(u.Path) || (u.Host != "" && u.Host != "localhost") {
			return source{}, fmt.Errorf("file URL %q does not name an absolute local path (file:///path)", raw)
		}
		s.local = u.Path
	case "":
		if !filepath.IsAbs(u.Path) {
			return source{}, fmt.Errorf("%q is neither a URL nor an absolute path", raw)
		}
		s.local = u.Path
		u.Scheme = "file"
	default:
		return source{}, fmt.Errorf("unsupported URL scheme %q in %q: vigil downloads only over http, https and file", u.Scheme, raw)
	}
	q := u.Query()
	if mustChecksum && q.Get("checksum") == "" {
		return source{}, fmt.Errorf("URL %s has no checksum query parameter and DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM is on", u.Redacted())
	}
	if a := q.Get("archive"); a != "" {
		if b, err := strconv.ParseBool(a); err == nil && !b {
			a = ""
		} else if !slices.Contains(archiveTypes, a) {
			return source{}, fmt.Errorf("URL %s: unknown archive type %q", u.Redacted(), a)
		}
		s.archive = a
	} else {
		for _, t := range archiveTypes {
			if strings.HasSuffix(u.Path, "."+t) && len(t) > len(s.archive) {
				s.archive = t
			}
		}
	}
	s.url, s.redacted = u.String(), u.Redacted()
	return s, nil
}

// resolve turns the plan's info into the URL of this host's binary,
// downloading an indirection document if info is one.
func (j *job) resolve(ctx context.Context) (source, error) {
	info := strings.TrimSpace(j.plan.Info)
	if info == "" {
		return source{}, permanent(errors.New("the plan's info is empty: it names no binary to download"))
	}
	doc := info
	if !strings.HasPrefix(info, "{") {
		// cosmovisor: a request URI (absolute URL or absolute path) is an
		// indirection; anything else must be the JSON itself.
		if _, err := url.ParseRequestURI(info); err == nil {
			src, err := parseSource(info, j.f.cfg.MustHaveChecksum)
			if err != nil {
				return source{}, permanent(fmt.Errorf("plan info: %w", err))
			}
			j.f.log.Info("reading upgrade info document", "plan", j.plan, "url", src.redacted)
			dst := filepath.Join(j.work, "info", "info.json")
			if err := j.download(ctx, src, dst, maxInfoDocument, false); err != nil {
				return source{}, fmt.Errorf("upgrade info document: %w", err)
			}
			b, err := os.ReadFile(dst)
			if err != nil {
				return source{}, err
			}
			doc = strings.TrimSpace(string(b))
			if doc == "" {
				return source{}, permanent(fmt.Errorf("upgrade info document %s is empty", src.redacted))
			}
			raw, err := pickBinary(doc)
			if err != nil {
				return source{}, permanent(fmt.Errorf("upgrade info document %s: %w", src.redacted, err))
			}
			return j.checkPicked(raw)
		}
	}
	raw, err := pickBinary(doc)
	if err != nil {
		return source{}, permanent(fmt.Errorf("plan info: %w", err))
	}
	return j.checkPicked(raw)
}

func (j *job) checkPicked(raw string) (source, error) {
	src, err := parseSource(raw, j.f.cfg.MustHaveChecksum)
	if err != nil {
		return source{}, permanent(fmt.Errorf("binary for %s: %w", platform(), err))
	}
	return src, nil
}

func platform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// pickBinary returns this host's URL from a {"binaries": {...}} document.
func pickBinary(doc string) (string, error) {
	var v struct {
		Binaries map[string]string `json:"binaries"`
	}
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return "", fmt.Errorf(`not a {"binaries": {...}} document: %w (starts %q)`, err, head(doc, 60))
	}
	if len(v.Binaries) == 0 {
		return "", errors.New(`no "binaries" entries`)
	}
	for _, k := range []string{platform(), "any"} {
		if u, ok := v.Binaries[k]; ok {
			return u, nil
		}
	}
	keys := make([]string, 0, len(v.Binaries))
	for k := range v.Binaries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return "", fmt.Errorf("no binary for this machine: neither %s nor any among %s", platform(), strings.Join(keys, ", "))
}

func head(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
