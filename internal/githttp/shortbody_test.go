package githttp

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gitChildren lists this process' child processes running git-http-backend.
func gitChildren(t *testing.T) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	self := strconv.Itoa(os.Getpid())
	var out []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) > 1 && fields[1] == self && strings.HasPrefix(s[open+1:close], "git-http-backe") {
			out = append(out, strings.TrimSpace(s[:open]))
		}
	}
	return out
}

// A client that dies in the middle of a push (gitops-api SIGKILLed while pushing)
// must not leave git-http-backend behind: git 2.39 spins on a body shorter than its
// Content-Length for ever.
func TestShortBodyStartsNoGit(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Fatalf("this test reads child processes from /proc: %v", err)
	}
	srv := startFleet(t)
	// Without the fix git spins until killed: never leave it behind, pass or fail.
	t.Cleanup(func() { killAll(gitChildren(t)) })

	// The client goes away with 99,996 bytes unsent.
	if got := rawPost(t, srv.URL(), 100000, "0000"); got != http.StatusBadRequest {
		t.Errorf("short body answered %d, want 400", got)
	}
	// git, had it started, would still be running: give it time to show up.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if kids := gitChildren(t); len(kids) > 0 {
			t.Fatalf("git-http-backend %v still runs after its client left mid-body", kids)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// An announced body over the limit is refused before it is read.
	if got := rawPost(t, srv.URL(), MaxBody+1, "0000"); got != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body answered %d, want 413", got)
	}
}

func killAll(pids []string) {
	for _, pid := range pids {
		if p, err := strconv.Atoi(pid); err == nil {
			if proc, err := os.FindProcess(p); err == nil {
				proc.Kill()
			}
		}
	}
}

// rawPost sends a receive-pack request announcing length bytes, sends body, stops
// writing and returns the response status.
func rawPost(t *testing.T, url string, length int, body string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = conn.Write([]byte("POST /fleet.git/git-receive-pack HTTP/1.1\r\nHost: fleet\r\n" +
		"Content-Type: application/x-git-receive-pack-request\r\nContent-Length: " + strconv.Itoa(length) + "\r\n\r\n" + body))
	if err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
