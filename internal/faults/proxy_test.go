package faults

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// proxy is a TCP proxy on loopback in front of the fleet remote, so a test can take
// the remote away in the two ways networks do: a black hole (connections are
// accepted and then nothing ever comes back, in either direction, including on
// connections already open) and a refusal (nothing listens: connect fails at once).
type proxy struct {
	addr   string
	target string

	mode atomic.Int32 // modePass, modeBlackHole or modeRefuse

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

const (
	modePass int32 = iota
	modeBlackHole
	modeRefuse
)

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), target: target, ln: ln}
	p.serve(ln)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			go p.handle(c)
		}
	}()
}

func (p *proxy) handle(c net.Conn) {
	if p.mode.Load() == modeBlackHole {
		p.swallow(c)
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, up)
	p.mu.Unlock()
	var lost atomic.Bool // once in the black hole, this pair of connections stays there
	go p.pipe(up, c, &lost)
	p.pipe(c, up, &lost)
}

// pipe copies from src to dst while the proxy passes traffic; in a black hole what
// arrives is read and dropped, so the sender sees its bytes taken and never an
// answer, and neither side sees the connection end.
func (p *proxy) pipe(dst, src net.Conn, lost *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.mode.Load() == modeBlackHole {
			lost.Store(true)
		}
		if n > 0 && !lost.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !lost.Load() {
				dst.Close()
			}
			return
		}
	}
}

func (p *proxy) swallow(c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// blackHole stops every byte, on new connections and on open ones.
func (p *proxy) blackHole() { p.mode.Store(modeBlackHole) }

// refuse stops listening, so a connect is refused; open connections are reset.
func (p *proxy) refuse(t *testing.T) {
	t.Helper()
	p.mode.Store(modeRefuse)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
	p.conns = nil
}

// heal passes traffic again, listening on the same address if it had stopped.
// Connections that went into the black hole stay there: the data they lost cannot
// come back, and the process must not depend on them ever ending.
func (p *proxy) heal(t *testing.T) {
	t.Helper()
	if p.mode.Load() == modeRefuse {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
		}
		p.mu.Lock()
		p.ln = ln
		p.mu.Unlock()
		p.serve(ln)
	}
	p.mode.Store(modePass)
}

func (p *proxy) close() {
	p.mu.Lock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
