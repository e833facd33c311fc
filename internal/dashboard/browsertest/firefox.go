package browsertest

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// firefox drives Debian's firefox-esr through WebDriver BiDi (the W3C protocol
// Firefox serves itself when started with --remote-debugging-port): JSON commands
// and their answers over one WebSocket, matched by id. Only the few commands the
// tests need are here. Its elements are BiDi shared ids.
type firefox struct {
	ws *websocket.Conn
	// top is the browsing context (the tab) every command acts on.
	top string

	mu      sync.Mutex
	next    int
	waiting map[int]chan bidiAnswer
	// broken is why the connection ended, once it has.
	broken error
}

// bidiAnswer is a command's answer: a result, or an error with its message.
type bidiAnswer struct {
	ID      *int            `json:"id"`
	Type    string          `json:"type"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
}

// firefoxPrefs keep the browser on the machine: no updates, telemetry, remote
// settings, safe browsing or connectivity probes (tests reach loopback only), and
// every other address sent to a closed loopback port as its proxy.
var firefoxPrefs = map[string]any{
	"app.update.disabledForTesting":                   true,
	"browser.shell.checkDefaultBrowser":               false,
	"browser.startup.page":                            0,
	"browser.startup.homepage":                        "about:blank",
	"browser.newtabpage.enabled":                      false,
	"browser.safebrowsing.malware.enabled":            false,
	"browser.safebrowsing.phishing.enabled":           false,
	"browser.safebrowsing.downloads.enabled":          false,
	"browser.safebrowsing.blockedURIs.enabled":        false,
	"browser.search.update":                           false,
	"browser.region.update.enabled":                   false,
	"browser.region.network.url":                      "",
	"datareporting.policy.dataSubmissionEnabled":      false,
	"datareporting.healthreport.uploadEnabled":        false,
	"toolkit.telemetry.enabled":                       false,
	"toolkit.telemetry.server":                        "",
	"services.settings.server":                        "data:,#remote-settings-dummy/v1",
	"extensions.update.enabled":                       false,
	"extensions.getAddons.cache.enabled":              false,
	"extensions.blocklist.enabled":                    false,
	"geo.provider.network.url":                        "",
	"media.gmp-manager.url":                           "",
	"network.captive-portal-service.enabled":          false,
	"network.connectivity-service.enabled":            false,
	"network.dns.disablePrefetch":                     true,
	"network.prefetch-next":                           false,
	"network.http.speculative-parallel-limit":         0,
	"network.proxy.type":                              1,
	"network.proxy.http":                              "127.0.0.1",
	"network.proxy.http_port":                         9,
	"network.proxy.ssl":                               "127.0.0.1",
	"network.proxy.ssl_port":                          9,
	"network.proxy.no_proxies_on":                     "localhost, 127.0.0.1, [::1]",
	"network.proxy.allow_hijacking_localhost":         false,
	"privacy.trackingprotection.enabled":              false,
	"security.OCSP.enabled":                           0,
	"security.remote_settings.crlite_filters.enabled": false,
}

var listening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

func startFirefox(t testing.TB) *firefox {
	t.Helper()
	path := ""
	for _, name := range []string{"firefox-esr", "firefox"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("firefox is not installed: the dashboard's browser tests need Debian's firefox-esr package (make deps installs it: mk/dashboard.mk)")
	}
	profile := t.TempDir()
	var prefs strings.Builder
	for k, v := range firefoxPrefs {
		b, _ := json.Marshal(v)
		fmt.Fprintf(&prefs, "user_pref(%q, %s);\n", k, b)
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(prefs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// Port 0: Firefox picks a free one and says which on stderr.
	cmd := exec.Command(path, "--headless", "--no-remote", "--profile", profile, "--remote-debugging-port", "0",
		"--window-size", fmt.Sprintf("%d,%d", Width, Height), "about:blank")
	// HOME too: Firefox keeps caches and crash reports under it, and a test leaves
	// nothing behind in the user's.
	cmd.Env = append(os.Environ(), "MOZ_HEADLESS=1", "HOME="+profile)
	// Its own process group, so that the content processes it forks end with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting firefox (%s): %v", path, err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	// The address line, then the rest of stderr kept for the failure message.
	addr := make(chan string, 1)
	var logMu sync.Mutex
	var log []string
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
			logMu.Lock()
			if len(log) < 50 {
				log = append(log, sc.Text())
			}
			logMu.Unlock()
		}
		cmd.Wait()
		close(exited)
	}()
	var url string
	select {
	case url = <-addr:
	case <-exited:
	case <-time.After(60 * time.Second):
	}
	if url == "" {
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("firefox (%s) did not start WebDriver BiDi:\n%s", path, strings.Join(log, "\n"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url+"/session", nil)
	if err != nil {
		t.Fatalf("firefox: WebDriver BiDi at %s: %v", url, err)
	}
	// A screenshot is one message of a few megabytes.
	ws.SetReadLimit(64 << 20)
	f := &firefox{ws: ws, waiting: map[int]chan bidiAnswer{}}
	go f.read()
	t.Cleanup(func() { ws.CloseNow() })

	if _, err := f.do(ctx, "session.new", map[string]any{"capabilities": map[string]any{}}); err != nil {
		t.Fatalf("firefox: session.new: %v", err)
	}
	tree, err := f.do(ctx, "browsingContext.getTree", map[string]any{"maxDepth": 0})
	if err != nil {
		t.Fatalf("firefox: browsingContext.getTree: %v", err)
	}
	var got struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := json.Unmarshal(tree, &got); err != nil || len(got.Contexts) == 0 {
		t.Fatalf("firefox: no browsing context (%s, %v)", tree, err)
	}
	f.top = got.Contexts[0].Context
	if _, err := f.do(ctx, "browsingContext.setViewport", map[string]any{"context": f.top,
		"viewport": map[string]int{"width": Width, "height": Height}}); err != nil {
		t.Fatalf("firefox: browsingContext.setViewport: %v", err)
	}
	return f
}

// read hands each answer to the command waiting for it; events (no id) are not
// subscribed to, so none come.
func (f *firefox) read() {
	for {
		_, b, err := f.ws.Read(context.Background())
		if err != nil {
			f.mu.Lock()
			f.broken = err
			for id, ch := range f.waiting {
				close(ch)
				delete(f.waiting, id)
			}
			f.mu.Unlock()
			return
		}
		var a bidiAnswer
		if json.Unmarshal(b, &a) != nil || a.ID == nil {
			continue
		}
		f.mu.Lock()
		ch := f.waiting[*a.ID]
		delete(f.waiting, *a.ID)
		f.mu.Unlock()
		if ch != nil {
			ch <- a
		}
	}
}

// do sends a command and waits for its answer's result.
func (f *firefox) do(ctx context.Context, method string, params any) (json.RawMessage, error) {
	f.mu.Lock()
	if f.broken != nil {
		f.mu.Unlock()
		return nil, fmt.Errorf("connection to firefox lost: %w", f.broken)
	}
	f.next++
	id := f.next
	ch := make(chan bidiAnswer, 1)
	f.waiting[id] = ch
	f.mu.Unlock()
	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	// Not the caller's context: a write cut short by it would close the connection.
	if err := f.ws.Write(context.Background(), websocket.MessageText, msg); err != nil {
		return nil, err
	}
	select {
	case a, ok := <-ch:
		if !ok {
			return nil, errors.New("connection to firefox lost")
		}
		if a.Type == "error" {
			return nil, fmt.Errorf("%s: %s: %s", method, a.Error, a.Message)
		}
		return a.Result, nil
	case <-ctx.Done():
		f.mu.Lock()
		delete(f.waiting, id)
		f.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

func (f *firefox) Open(ctx context.Context, url string) error {
	_, err := f.do(ctx, "browsingContext.navigate", map[string]any{"context": f.top, "url": url, "wait": "complete"})
	return err
}

// Find uses BiDi's accessibility locator: Firefox's own accessibility tree, the
// role and name a screen reader gets.
func (f *firefox) Find(ctx context.Context, role, name string) ([]Element, error) {
	loc := map[string]string{"role": role}
	if name != "" {
		loc["name"] = name
	}
	res, err := f.do(ctx, "browsingContext.locateNodes", map[string]any{"context": f.top,
		"locator": map[string]any{"type": "accessibility", "value": loc}})
	if err != nil {
		return nil, err
	}
	var got struct {
		Nodes []struct {
			SharedID string `json:"sharedId"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(res, &got); err != nil {
		return nil, err
	}
	out := make([]Element, 0, len(got.Nodes))
	for _, n := range got.Nodes {
		out = append(out, Element{ref: n.SharedID})
	}
	return out, nil
}

// scriptResult reads script.callFunction's and script.evaluate's answer: a string,
// since the function is wrapped to return one, or the exception it threw.
func scriptResult(res json.RawMessage) (string, error) {
	var got struct {
		Type   string `json:"type"`
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &got); err != nil {
		return "", err
	}
	if got.Type == "exception" {
		return "", fmt.Errorf("exception: %s", got.ExceptionDetails.Text)
	}
	var s string
	if got.Result.Type != "string" || json.Unmarshal(got.Result.Value, &s) != nil {
		return "", fmt.Errorf("not a string: %s", res)
	}
	return s, nil
}

// localValue is a Go argument as BiDi's LocalValue.
func localValue(v any) (map[string]any, error) {
	switch x := v.(type) {
	case string:
		return map[string]any{"type": "string", "value": x}, nil
	case bool:
		return map[string]any{"type": "boolean", "value": x}, nil
	case int, int64, float64:
		return map[string]any{"type": "number", "value": x}, nil
	case nil:
		return map[string]any{"type": "null"}, nil
	}
	return nil, fmt.Errorf("argument %v (%T): only strings, numbers, booleans and nil pass to firefox", v, v)
}

func (f *firefox) Call(ctx context.Context, el Element, fn string, args ...any) (string, error) {
	vals := make([]any, 0, len(args))
	for _, a := range args {
		v, err := localValue(a)
		if err != nil {
			return "", err
		}
		vals = append(vals, v)
	}
	res, err := f.do(ctx, "script.callFunction", map[string]any{
		"functionDeclaration": stringResult(fn), "awaitPromise": true,
		"target": map[string]string{"context": f.top}, "this": map[string]string{"sharedId": el.ref},
		"arguments": vals})
	if err != nil {
		return "", err
	}
	return scriptResult(res)
}

func (f *firefox) Eval(ctx context.Context, expr string) (string, error) {
	res, err := f.do(ctx, "script.evaluate", map[string]any{
		"expression":   `Promise.resolve(` + expr + `).then((r) => r === undefined || r === null ? "" : String(r))`,
		"awaitPromise": true, "target": map[string]string{"context": f.top}})
	if err != nil {
		return "", err
	}
	return scriptResult(res)
}

// Type presses and releases each character's key in turn.
func (f *firefox) Type(ctx context.Context, text string) error {
	var keys []map[string]string
	for _, r := range text {
		keys = append(keys, map[string]string{"type": "keyDown", "value": string(r)}, map[string]string{"type": "keyUp", "value": string(r)})
	}
	_, err := f.do(ctx, "input.performActions", map[string]any{"context": f.top,
		"actions": []map[string]any{{"type": "key", "id": "keyboard", "actions": keys}}})
	return err
}

func (f *firefox) Screenshot(ctx context.Context) ([]byte, error) {
	res, err := f.do(ctx, "browsingContext.captureScreenshot", map[string]any{"context": f.top})
	if err != nil {
		return nil, err
	}
	var got struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(res, &got); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(got.Data)
}
