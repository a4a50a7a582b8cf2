package testutil

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// ReturnTimeout bounds how long a test waits for a goroutine to return after
// its context was cancelled.
const ReturnTimeout = 10 * time.Second

// Returned waits (at most ReturnTimeout) for the error that a goroutine sends
// on done when it returns, and fails the test with "<what> did not return" if
// none comes.
func Returned(t testing.TB, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(ReturnTimeout):
		t.Fatalf("%s did not return within %v", what, ReturnTimeout)
		return nil
	}
}

// HTTPGet fetches url (10 s timeout) and returns the status code and the body;
// a failed request or read fails the test.
func HTTPGet(t testing.TB, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}
