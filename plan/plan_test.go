package plan

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		desc    string
		in      string
		want    Plan
		wantErr string
	}{
		{desc: "sdk file", in: `{"name":"v2","time":"0001-01-01T00:00:00Z","height":100,"info":"hello"}`, want: Plan{"v2", 100, "hello"}},
		{desc: "cosmovisor f1-good", in: `{"name": "upgrade1", "info": "some info", "height": 123}`, want: Plan{"upgrade1", 123, "some info"}},
		{desc: "keeps case (recase is the layout's job)", in: `{"name": "Upgrade2", "height": 125}`, want: Plan{"Upgrade2", 125, ""}},
		{desc: "numeric string height (jsonpb)", in: `{"name":"v2","height":"30"}`, want: Plan{"v2", 30, ""}},
		{desc: "unknown fields ignored", in: `{"name":"v2","height":7,"foo":[1,2]}`, want: Plan{"v2", 7, ""}},
		{desc: "surrounding whitespace", in: " \n{\"name\":\"v2\",\"height\":7}\n", want: Plan{"v2", 7, ""}},
		{desc: "empty file", in: "", wantErr: "empty upgrade-info.json"},
		{desc: "blank file", in: "  \n", wantErr: "empty upgrade-info.json"},
		{desc: "empty object", in: `{}`, wantErr: "name cannot be empty"},
		{desc: "missing height", in: `{"name": "upgrade2"}`, wantErr: "height must be greater than 0"},
		{desc: "height zero", in: `{"name": "v2", "height": 0}`, wantErr: "height must be greater than 0"},
		{desc: "negative height", in: `{"name": "v2", "height": -5}`, wantErr: "height must be greater than 0"},
		{desc: "fractional height", in: `{"name": "v2", "height": 1.5}`, wantErr: "height must be an integer"},
		{desc: "string height not numeric", in: `{"name": "v2", "height": "ten"}`, wantErr: "height must be an integer"},
		{desc: "missing name", in: `{"height": 1}`, wantErr: "name cannot be empty"},
		{desc: "info is a number", in: `{"name":"upgrade1","info":123,"height":123}`, wantErr: "info must be a string"},
		{desc: "time based", in: `{"name":"v2","height":5,"time":"2024-01-01T00:00:00Z"}`, wantErr: "deprecated"},
		{desc: "ibc client state", in: `{"name":"v2","height":5,"upgraded_client_state":{"a":1}}`, wantErr: "IBC"},
		{desc: "first half of a write", in: `{"name":"v2","hei`, wantErr: "invalid upgrade-info.json"},
		{desc: "not json", in: `hello world`, wantErr: "invalid upgrade-info.json"},
		{desc: "array", in: `[{"name":"v2","height":5}]`, wantErr: "invalid upgrade-info.json"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseEmptyIsSentinel(t *testing.T) {
	if _, err := Parse(nil); !errors.Is(err, ErrEmpty) {
		t.Fatalf("err = %v, want ErrEmpty", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	p := Plan{Name: "v2", Height: 100, Info: `{"binaries":{}}`}
	want := `{"name":"v2","time":"0001-01-01T00:00:00Z","height":100,"info":"{\"binaries\":{}}"}`
	if got := string(p.Marshal()); got != want {
		t.Fatalf("Marshal = %s\nwant %s", got, want)
	}
	back, err := Parse(p.Marshal())
	if err != nil || back != p {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	if got := string(Plan{Name: "v3", Height: 9}.Marshal()); strings.Contains(got, "info") {
		t.Fatalf("empty info must be omitted: %s", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"name":"v2","time":"0001-01-01T00:00:00Z","height":100,"info":"hello"}`,
		`{"name":"v2","height":"30"}`, `{}`, ``, `{"name":"v2","hei`, `{"height":1}`,
		`{"name":"a","height":9223372036854775807}`, `{"name":"a","height":"-1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		if strings.TrimSpace(p.Name) == "" || p.Height <= 0 {
			t.Fatalf("Parse accepted an invalid plan %+v from %q", p, data)
		}
		back, err := Parse(p.Marshal())
		if err != nil || back != p {
			t.Fatalf("round trip of %+v: %+v, %v", p, back, err)
		}
	})
}
