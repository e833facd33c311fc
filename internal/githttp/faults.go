package githttp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
)

// Fault is how a Proxy treats the connections it accepts.
type Fault int

const (
	// Forward passes connections through to the server.
	Forward Fault = iota
	// BlackHole accepts connections and reads what they send, and never answers nor
	// passes anything on: a remote whose packets vanish. A connection held so is
	// never forwarded later, whatever mode follows.
	BlackHole
	// Status answers every request with Proxy.Status without
	// passing it on (a remote that says no).
	Status
	// LoseAnswers passes each request to the server but never returns its answer:
	// the request is applied and the client never hears so.
	LoseAnswers
)

// Proxy is a TCP proxy on loopback in front of a server, with a fault to inject.
// Closing its listener (Down) makes the port refuse connections; Up listens on the
// same port again.
type Proxy struct {
	target string

	mu     sync.Mutex
	addr   string
	ln     net.Listener
	fault  Fault
	status int
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

// NewProxy starts a proxy on a free loopback port in front of target (host:port).
func NewProxy(target string) (*Proxy, error) {
	p := &Proxy{target: target, conns: map[net.Conn]bool{}}
	if err := p.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Set changes the fault; with Status, code is the status answered. Open connections
// are dropped (a client's kept-alive connection would otherwise dodge the fault), and
// what a black hole held is never passed on.
func (p *Proxy) Set(f Fault, code int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault, p.status = f, code
	for c := range p.conns {
		c.Close()
	}
}

// Down closes the listener, so connections are refused, and drops every open one.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// Up listens again on the same port.
func (p *Proxy) Up() error {
	p.mu.Lock()
	addr := p.addr
	up := p.ln != nil
	p.mu.Unlock()
	if up {
		return nil
	}
	return p.listen(addr)
}

// Close stops the proxy and drops every connection.
func (p *Proxy) Close() {
	p.Down()
	p.wg.Wait()
}

func (p *Proxy) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("githttp: proxy listen %s: %w", addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			f, code := p.fault, p.status
			p.conns[c] = true
			p.mu.Unlock()
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer func() {
					p.mu.Lock()
					delete(p.conns, c)
					p.mu.Unlock()
					c.Close()
				}()
				p.serve(c, f, code)
			}()
		}
	}()
	return nil
}

func (p *Proxy) serve(c net.Conn, f Fault, code int) {
	switch f {
	case BlackHole:
		_, _ = io.Copy(io.Discard, c)
	case Status:
		rd := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(rd)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			req.Body.Close()
			if _, err := fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n\r\n", code, http.StatusText(code)); err != nil {
				return
			}
		}
	default:
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			return
		}
		defer s.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(s, c)
			// The client is gone: so is the connection on its behalf.
			s.Close()
		}()
		if f == LoseAnswers {
			_, _ = io.Copy(io.Discard, s)
		} else {
			_, _ = io.Copy(c, s)
		}
		c.Close()
		<-done
	}
}
