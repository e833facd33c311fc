package browsertest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"testing"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromium drives Debian's chromium through the DevTools protocol (chromedp). Its
// elements are backend DOM node ids, which the accessibility tree reports.
type chromium struct {
	// ctx is the browser's: the browser lives as long as the context of its first
	// action, so it carries no deadline; each call joins it with the caller's.
	ctx context.Context
}

func startChromium(t testing.TB) *chromium {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("chromium is not installed: the dashboard's browser tests need Debian's chromium package (make deps installs it: mk/dashboard.mk)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(Width, Height), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium (%s): %v", path, err)
	}
	return &chromium{ctx: ctx}
}

// with is the browser's context bounded by the caller's.
func (c *chromium) with(ctx context.Context) (context.Context, context.CancelFunc) {
	out, cancel := context.WithCancel(c.ctx)
	stop := context.AfterFunc(ctx, cancel)
	return out, func() { stop(); cancel() }
}

func (c *chromium) Open(ctx context.Context, url string) error {
	cctx, done := c.with(ctx)
	defer done()
	return chromedp.Do(cctx, chromedp.Navigate(url))
}

// Find asks Chromium's accessibility tree: the role and name a screen reader gets.
func (c *chromium) Find(ctx context.Context, role, name string) ([]Element, error) {
	cctx, done := c.with(ctx)
	defer done()
	doc, err := chromedp.Call(cctx, dom.GetDocument, dom.GetDocumentParams{})
	if err != nil {
		return nil, err
	}
	res, err := chromedp.Call(cctx, accessibility.QueryAXTree, accessibility.QueryAXTreeParams{
		NodeID: doc.Root.NodeID, Role: role, AccessibleName: name})
	if err != nil {
		return nil, err
	}
	var out []Element
	for _, n := range res.Nodes {
		if !n.Ignored {
			out = append(out, Element{ref: strconv.FormatInt(int64(n.BackendDOMNodeID), 10)})
		}
	}
	return out, nil
}

func (c *chromium) Call(ctx context.Context, el Element, fn string, args ...any) (string, error) {
	cctx, done := c.with(ctx)
	defer done()
	id, err := strconv.ParseInt(el.ref, 10, 64)
	if err != nil {
		return "", fmt.Errorf("not a chromium element: %q", el.ref)
	}
	obj, err := chromedp.Call(cctx, dom.ResolveNode, dom.ResolveNodeParams{BackendNodeID: cdp.BackendNodeID(id)})
	if err != nil {
		return "", err
	}
	on := func(p *runtime.CallFunctionOnParams) {
		p.ObjectID = obj.Object.ObjectID
		p.AwaitPromise = ptrTrue()
	}
	return chromedp.Run(cctx, chromedp.CallFunctionOn[string](stringResult(fn), on, args...))
}

func (c *chromium) Eval(ctx context.Context, expr string) (string, error) {
	cctx, done := c.with(ctx)
	defer done()
	return chromedp.Run(cctx, chromedp.Evaluate[string](`Promise.resolve(`+expr+`).then((r) => r === undefined || r === null ? "" : String(r))`, chromedp.EvalAwaitPromise))
}

func (c *chromium) Type(ctx context.Context, text string) error {
	cctx, done := c.with(ctx)
	defer done()
	return chromedp.Do(cctx, chromedp.KeyEvent(text))
}

func (c *chromium) Screenshot(ctx context.Context) ([]byte, error) {
	cctx, done := c.with(ctx)
	defer done()
	return chromedp.Run(cctx, chromedp.CaptureScreenshot())
}

// stringResult wraps fn so that its result, awaited, comes back as a string: one
// shape for both drivers' Call.
func stringResult(fn string) string {
	return `async function(...a) { const r = await (` + fn + `).apply(this, a); return r === undefined || r === null ? "" : String(r); }`
}

func ptrTrue() *bool { t := true; return &t }
