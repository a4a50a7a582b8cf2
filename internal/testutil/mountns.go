package testutil

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// InMountNamespace runs the calling test in a private mount namespace, where
// it may mount a tmpfs. Called first thing in a top-level test, it returns
// true in the copy of the test binary that runs there (env names the
// variable that marks it); otherwise it re-executes the binary with only this
// test under `unshare -m --propagation private`, fails unless that copy passed
// without skipping anything, and returns false. It skips unless run as root
// with unshare(1) installed.
func InMountNamespace(t *testing.T, env string) bool {
	t.Helper()
	if os.Getenv(env) == t.Name() {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare(1)")
	}
	cmd := exec.Command(unshare, "-m", "--propagation", "private", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child in a mount namespace: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) || strings.Contains(string(out), "SKIP") {
		t.Fatalf("child did not run the test:\n%s", out)
	}
	t.Logf("child:\n%s", out)
	return false
}
