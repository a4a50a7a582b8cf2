package plan

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestParseBatch(t *testing.T) {
	tests := []struct {
		desc    string
		in      string
		want    []Plan
		wantErr string
	}{
		{desc: "empty", in: ""},
		{desc: "blank", in: " \n"},
		{desc: "null", in: "null"},
		{desc: "empty array", in: "[]\n"},
		{desc: "cosmovisor v1.7 batch", in: `[{"name":"v2","time":"0001-01-01T00:00:00Z","height":100},{"name":"v3","time":"0001-01-01T00:00:00Z","height":"200","info":"x"}]`,
			want: []Plan{{"v2", 100, ""}, {"v3", 200, "x"}}},
		{desc: "sorted by height", in: `[{"name":"c","height":30},{"name":"a","height":10},{"name":"b","height":20}]`,
			want: []Plan{{"a", 10, ""}, {"b", 20, ""}, {"c", 30, ""}}},
		{desc: "an object, not an array", in: `{"name":"v2","height":100}`, wantErr: "want a JSON array"},
		{desc: "truncated", in: `[{"name":"v2","height":100},{"na`, wantErr: "want a JSON array"},
		{desc: "element validated as Parse does", in: `[{"name":"v2","height":100},{"name":"v3","height":0}]`, wantErr: "plan 1: invalid upgrade-info.json content: height must be greater than 0"},
		{desc: "time-based element", in: `[{"name":"v2","height":5,"time":"2024-01-01T00:00:00Z"}]`, wantErr: "deprecated"},
		{desc: "null element", in: `[null]`, wantErr: "plan 0"},
		{desc: "element not an object", in: `[1]`, wantErr: "plan 0"},
		{desc: "duplicate name", in: `[{"name":"v2","height":100},{"name":"v2","height":200}]`, wantErr: "upgrade v2 is scheduled twice, at heights 100 and 200"},
		{desc: "duplicate height", in: `[{"name":"v2","height":100},{"name":"v3","height":100}]`, wantErr: "upgrades v2 and v3 are both scheduled at height 100"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := ParseBatch([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), BatchFileName) {
					t.Fatalf("ParseBatch(%q) = %+v, %v; want an error naming %s containing %q", tt.in, got, err, BatchFileName, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseBatch(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestMarshalBatch(t *testing.T) {
	got := string(MarshalBatch([]Plan{{"v3", 200, "x"}, {"v2", 100, ""}}))
	want := `[
  {
    "name": "v2",
    "time": "0001-01-01T00:00:00Z",
    "height": 100
  },
  {
    "name": "v3",
    "time": "0001-01-01T00:00:00Z",
    "height": 200,
    "info": "x"
  }
]
`
	if got != want {
		t.Fatalf("MarshalBatch =\n%s\nwant\n%s", got, want)
	}
	if got := string(MarshalBatch(nil)); got != "[]\n" {
		t.Fatalf("MarshalBatch(nil) = %q, want \"[]\\n\"", got)
	}
	in := []Plan{{"b", 2, ""}, {"a", 1, ""}}
	MarshalBatch(in)
	if in[0].Name != "b" {
		t.Fatal("MarshalBatch sorted its argument in place")
	}
}

func TestReadBatch(t *testing.T) {
	dir := t.TempDir()
	if ps, err := ReadBatch(filepath.Join(dir, BatchFileName)); ps != nil || err != nil {
		t.Fatalf("missing file: %+v, %v; want nil, nil", ps, err)
	}
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, MarshalBatch([]Plan{{"v2", 100, ""}}), 0o600); err != nil {
		t.Fatal(err)
	}
	if ps, err := ReadBatch(good); err != nil || !reflect.DeepEqual(ps, []Plan{{"v2", 100, ""}}) {
		t.Fatalf("ReadBatch = %+v, %v", ps, err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte(`[{"name":"v2"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBatch(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("malformed file: %v; want an error naming %s", err, bad)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBatch(fifo); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("FIFO: %v; want ErrNotRegular (and no blocking)", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBatch(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized file: %v; want ErrTooLarge", err)
	}
}

func FuzzParseBatch(f *testing.F) {
	for _, s := range []string{
		`[{"name":"v2","time":"0001-01-01T00:00:00Z","height":100,"info":"hello"}]`,
		`[{"name":"v2","height":"30"},{"name":"v3","height":10}]`, `[]`, `null`, ``, `[{"name":"v2","hei`,
		`[{"name":"a","height":1},{"name":"a","height":2}]`, `[{"name":"a","height":1},{"name":"b","height":1}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := ParseBatch(data)
		if err != nil {
			return
		}
		names := map[string]bool{}
		for i, p := range ps {
			if strings.TrimSpace(p.Name) == "" || p.Height <= 0 {
				t.Fatalf("ParseBatch accepted an invalid plan %+v from %q", p, data)
			}
			if i > 0 && ps[i-1].Height >= p.Height {
				t.Fatalf("ParseBatch result not strictly sorted by height: %+v", ps)
			}
			if names[p.Name] {
				t.Fatalf("ParseBatch accepted name %q twice", p.Name)
			}
			names[p.Name] = true
		}
		back, err := ParseBatch(MarshalBatch(ps))
		if err != nil || !reflect.DeepEqual(back, ps) {
			t.Fatalf("round trip of %+v: %+v, %v", ps, back, err)
		}
	})
}
