package plan

import (
	"slices"
	"testing"
)

func TestSkipHeights(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []int64
	}{
		// cosmovisor's own cases (TestUpgradeSkipHeights)
		{nil, nil},
		{[]string{"appb", "start"}, nil},
		{[]string{"appb", "start", "--unsafe-skip-upgrades"}, nil},
		{[]string{"appb", "start", "--unsafe-skip-upgrades", "--abcd"}, nil},
		{[]string{"appb", "start", "--unsafe-skip-upgrades", "10", "--abcd"}, []int64{10}},
		{[]string{"appb", "start", "--unsafe-skip-upgrades", "10", "20", "--abcd"}, []int64{10, 20}},
		{[]string{"appb", "start", "--unsafe-skip-upgrades", "10", "20", "--abcd", "34"}, []int64{10, 20}},
		{[]string{"appb", "start", "--unsafe-skip-upgrades", "10", "as", "20", "--abcd"}, []int64{10, 20}},
		// the SDK's int slice, which cosmovisor does not read
		{[]string{"start", "--unsafe-skip-upgrades=100"}, []int64{100}},
		{[]string{"start", "--unsafe-skip-upgrades=10,20", "--home", "/h"}, []int64{10, 20}},
		{[]string{"start", "--unsafe-skip-upgrades", "10,20"}, []int64{10, 20}},
		{[]string{"start", "--unsafe-skip-upgrades=5", "--unsafe-skip-upgrades", "6"}, []int64{5, 6}},
		// not heights
		{[]string{"start", "--unsafe-skip-upgrades=-1,0,x"}, nil},
		{[]string{"start", "--", "--unsafe-skip-upgrades=7"}, nil},
		{[]string{"start", "--unsafe-skip-upgrades-x=7"}, nil},
	} {
		if got := SkipHeights(tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("SkipHeights(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestHaltHeight(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		want  int64
		given bool
		err   bool
	}{
		{nil, 0, false, false},
		{[]string{"start", "--home", "/h"}, 0, false, false},
		{[]string{"start", "--halt-height", "100"}, 100, true, false},
		{[]string{"start", "--halt-height=100", "--home", "/h"}, 100, true, false},
		{[]string{"start", "--halt-height=100", "--halt-height", "50"}, 50, true, false},
		{[]string{"start", "--halt-height=0"}, 0, true, false},
		{[]string{"start", "--", "--halt-height=7"}, 0, false, false},
		{[]string{"start", "--halt-height-x=7"}, 0, false, false},
		{[]string{"start", "--halt-height"}, 0, false, true},
		{[]string{"start", "--halt-height=-5"}, 0, false, true},
		{[]string{"start", "--halt-height", "ten"}, 0, false, true},
	} {
		got, given, err := HaltHeight(tc.args)
		if got != tc.want || given != tc.given || (err != nil) != tc.err {
			t.Errorf("HaltHeight(%q) = %d, %v, %v; want %d, %v, error %v", tc.args, got, given, err, tc.want, tc.given, tc.err)
		}
	}
}
