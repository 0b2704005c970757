package mirror

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	gosync "sync"
	"sync/atomic"
	"time"
)

// Front is the mirror's own HTTP/1.1 loop in front of net/http, for the
// one request that dominates a site's traffic and costs least to answer:
// an update check whose answer is already rendered. net/http's fixed work
// per request (the parser, a header map, a goroutine handoff, a response
// writer) is most of what such an answer costs, and nginx, the reference
// the mirror is held to, does none of it.
//
// Front accepts every connection and reads its requests itself. It
// answers a request only when it is sure net/http would give the same
// answer: a plain "GET /v1/updates/check?…" in HTTP/1.1, with one simple
// Host, no body, no hop-by-hop headers but "Connection: keep-alive", a
// valid client token when the mirror has some, a query that needs no
// unescaping, and a rendered answer for it. At the first request it is
// not sure of, before writing anything, it hands the connection to
// net/http (Accept) with the bytes it has read, and never sees that
// connection again: every error, every other route, TLS (Front is not
// used under it) and every odd request takes the net/http path, whose
// answers are the tested ones. TestFront_SameAnswers compares the two.
type Front struct {
	ln      net.Listener
	s       *Server
	o       FrontOptions
	handoff chan net.Conn
	done    chan struct{} // closed when the accept loop ends
	err     error         // why it ended, once done is closed
	start   gosync.Once

	mu       gosync.Mutex
	conns    map[*frontConn]struct{}
	closing  atomic.Bool
	wg       gosync.WaitGroup // serving goroutines
	answered atomic.Uint64
}

// Answered counts the answers Front wrote itself.
func (f *Front) Answered() uint64 { return f.answered.Load() }

// FrontOptions are a Front's timeouts, net/http's meanings.
type FrontOptions struct {
	ReadHeaderTimeout time.Duration // from a request's first byte to its last header
	IdleTimeout       time.Duration // between requests on a connection
	WriteTimeout      time.Duration // to write an answer
	Logger            interface{ Warn(string, ...any) }
}

// Connection states (frontConn.state).
const (
	connIdle int32 = iota
	connBusy
	connClosed
)

type frontConn struct {
	c     net.Conn
	state atomic.Int32
}

// frontBuf is the read buffer of a connection: a request head longer
// than it goes to net/http.
const frontBuf = 4096

// maxFrontAnswer bounds the answers Front writes itself.
const maxFrontAnswer = 64 << 10

// NewFront puts a Front over ln for s. Serve http.Server{Handler:
// s.Handler()}-like servers on the Front (it is their listener), and
// call Shutdown along with theirs.
func (s *Server) NewFront(ln net.Listener, o FrontOptions) *Front {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	return &Front{ln: ln, s: s, o: o, handoff: make(chan net.Conn), done: make(chan struct{}), conns: map[*frontConn]struct{}{}}
}

// Accept implements net.Listener: the connections Front handed over.
func (f *Front) Accept() (net.Conn, error) {
	f.start.Do(func() { go f.acceptLoop() })
	select {
	case c := <-f.handoff:
		return c, nil
	case <-f.done:
		return nil, f.err
	}
}

// Close implements net.Listener: no new connections. Those Front serves
// end with Shutdown.
func (f *Front) Close() error { return f.ln.Close() }

// Addr implements net.Listener.
func (f *Front) Addr() net.Addr { return f.ln.Addr() }

// Shutdown closes the listener and the idle connections Front serves,
// lets the busy ones finish their answer, and waits for them until ctx
// ends; then it cuts the rest.
func (f *Front) Shutdown(ctx context.Context) error {
	f.closing.Store(true)
	_ = f.ln.Close()
	f.mu.Lock()
	for fc := range f.conns {
		if fc.state.CompareAndSwap(connIdle, connClosed) {
			fc.c.Close()
		}
	}
	f.mu.Unlock()
	waited := make(chan struct{})
	go func() { f.wg.Wait(); close(waited) }()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
	}
	f.mu.Lock()
	for fc := range f.conns {
		fc.c.Close()
	}
	f.mu.Unlock()
	<-waited
	return ctx.Err()
}

func (f *Front) acceptLoop() {
	defer close(f.done)
	var backoff time.Duration
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || f.closing.Load() {
				f.err = err
				return
			}
			// Out of descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if f.o.Logger != nil {
				f.o.Logger.Warn("accept failed; retrying", "err", err, "in", backoff)
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		fc := &frontConn{c: c}
		f.mu.Lock()
		if f.closing.Load() {
			f.mu.Unlock()
			c.Close()
			continue
		}
		f.conns[fc] = struct{}{}
		f.wg.Add(1)
		f.mu.Unlock()
		go f.serve(fc)
	}
}

func (f *Front) forget(fc *frontConn) {
	f.mu.Lock()
	delete(f.conns, fc)
	f.mu.Unlock()
	f.wg.Done()
}

// handOver gives the connection to net/http, with the bytes read from it
// that are not answered yet.
func (f *Front) handOver(fc *frontConn, unread []byte) {
	f.forget(fc)
	c := withPrefix(fc.c, unread)
	// The deadlines are net/http's from here.
	_ = c.SetDeadline(time.Time{})
	select {
	case f.handoff <- c:
	case <-f.done:
		c.Close()
	}
}

var crlfcrlf = []byte("\r\n\r\n")

func (f *Front) serve(fc *frontConn) {
	c := fc.c
	buf := make([]byte, frontBuf)
	var out []byte
	start, end := 0, 0 // buf[start:end] is read and not answered
	for {
		// Read until a whole request head is buffered.
		head := -1
		for {
			if i := bytes.Index(buf[start:end], crlfcrlf); i >= 0 {
				head = start + i + len(crlfcrlf)
				break
			}
			if bareLF(buf[start:end]) {
				// Lines that end in LF alone: net/http's business, and
				// the head may already be complete.
				f.handOver(fc, buf[start:end])
				return
			}
			if end == len(buf) {
				if start == 0 {
					f.handOver(fc, buf[:end]) // a long head: net/http's
					return
				}
				end = copy(buf, buf[start:end])
				start = 0
			}
			if start == end {
				start, end = 0, 0
				_ = c.SetReadDeadline(time.Now().Add(f.o.IdleTimeout))
			}
			n, err := c.Read(buf[end:])
			if n > 0 && start == end {
				// A request begins: it has ReadHeaderTimeout to arrive.
				_ = c.SetReadDeadline(time.Now().Add(f.o.ReadHeaderTimeout))
			}
			end += n
			if err != nil {
				// EOF, a timeout or Shutdown: net/http too closes without
				// an answer.
				f.close(fc)
				return
			}
		}
		if !fc.state.CompareAndSwap(connIdle, connBusy) {
			f.close(fc) // Shutdown closed it while idle
			return
		}
		body, ok := f.s.frontAnswer(buf[start:head])
		if !ok || len(body) > maxFrontAnswer {
			f.handOver(fc, buf[start:end])
			return
		}
		out = appendAnswer(out[:0], body)
		_ = c.SetWriteDeadline(time.Now().Add(f.o.WriteTimeout))
		f.answered.Add(1) // before the client can have it
		if _, err := c.Write(out); err != nil {
			f.close(fc)
			return
		}
		start = head
		if start < end {
			// A pipelined request, begun already.
			_ = c.SetReadDeadline(time.Now().Add(f.o.ReadHeaderTimeout))
		}
		if !fc.state.CompareAndSwap(connBusy, connIdle) || (f.closing.Load() && fc.state.CompareAndSwap(connIdle, connClosed)) {
			f.close(fc)
			return
		}
	}
}

func (f *Front) close(fc *frontConn) {
	fc.state.Store(connClosed)
	fc.c.Close()
	f.forget(fc)
}

// appendAnswer appends the 200 response net/http writes for update.Handle's
// rendered answer body: the same status line and headers, in its order.
func appendAnswer(b, body []byte) []byte {
	b = append(b, "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nContent-Type: application/json\r\nDate: "...)
	b = append(b, httpDate.get(time.Now())[0]...)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// frontAnswer is the rendered answer to the request whose head (request
// line and headers, up to the blank line) is head, when the request is
// one net/http would route to the update check and answer 200 from a
// rendered answer; false when Front is not sure.
func (s *Server) frontAnswer(head []byte) ([]byte, bool) {
	const prefix = "GET /v1/updates/check"
	line, rest, ok := cutCRLF(head)
	if !ok || !bytes.HasPrefix(line, []byte(prefix)) {
		return nil, false
	}
	line = line[len(prefix):]
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 || string(line[sp:]) != " HTTP/1.1" {
		return nil, false
	}
	query := line[:sp]
	if len(query) > 0 {
		if query[0] != '?' {
			return nil, false // another path
		}
		query = query[1:]
	}
	for _, b := range query {
		// What the query parser takes as it is: no '#' (ParseRequestURI
		// keeps it in the query), no escapes or '+' (wire.PlainQuery).
		if b <= ' ' || b >= 0x7f || b == '#' || b == '%' || b == '+' || b == ';' {
			return nil, false
		}
	}
	hosts, auths := 0, 0
	var authz []byte
	for {
		line, rest, ok = cutCRLF(rest)
		if !ok {
			return nil, false
		}
		if len(line) == 0 {
			break // the blank line
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil, false
		}
		name, val := line[:colon], trimOWS(line[colon+1:])
		for _, b := range name {
			if !isTokenByte(b) {
				return nil, false
			}
		}
		for _, b := range val {
			if (b < ' ' && b != '\t') || b == 0x7f {
				return nil, false
			}
		}
		switch {
		case asciiEqualFold(name, "host"):
			hosts++
			if !plainHost(val) {
				return nil, false
			}
		case asciiEqualFold(name, "authorization"):
			auths++
			authz = val
		case asciiEqualFold(name, "connection"):
			if !asciiEqualFold(val, "keep-alive") {
				return nil, false
			}
		case asciiEqualFold(name, "content-length"), asciiEqualFold(name, "transfer-encoding"),
			asciiEqualFold(name, "expect"), asciiEqualFold(name, "upgrade"), asciiEqualFold(name, "te"),
			asciiEqualFold(name, "trailer"), asciiEqualFold(name, "keep-alive"):
			return nil, false
		}
	}
	if hosts != 1 || auths > 1 || len(rest) != 0 {
		return nil, false
	}
	if len(s.tokens) > 0 {
		tok, ok := bytes.CutPrefix(authz, []byte("Bearer "))
		if !ok {
			return nil, false
		}
		if _, ok := s.matchToken(tok); !ok {
			return nil, false
		}
	}
	v := s.cur.Load()
	if v.held == nil || v.rendered == nil || (!s.o.ServeExpired && s.expired(v.held)) {
		return nil, false
	}
	if !plainQueryKeys(query) {
		return nil, false
	}
	return v.rendered(string(query))
}

// plainQueryKeys is wire.PlainQuery on bytes already known to be
// printable ASCII without escapes.
func plainQueryKeys(q []byte) bool {
	var keys [16][]byte
	n := 0
	for len(q) > 0 {
		var kv []byte
		kv, q, _ = bytes.Cut(q, []byte("&"))
		if len(kv) == 0 {
			continue
		}
		k, _, _ := bytes.Cut(kv, []byte("="))
		if n == len(keys) {
			return false
		}
		for _, seen := range keys[:n] {
			if bytes.Equal(seen, k) {
				return false
			}
		}
		keys[n] = k
		n++
	}
	return true
}

// bareLF reports an LF in b without a CR before it.
func bareLF(b []byte) bool {
	for off := 0; ; {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return false
		}
		if off+i == 0 || b[off+i-1] != '\r' {
			return true
		}
		off += i + 1
	}
}

// cutCRLF cuts b at its first CRLF; false when there is none, or a bare
// CR or LF comes first (net/http's business).
func cutCRLF(b []byte) (line, rest []byte, ok bool) {
	for i, c := range b {
		switch c {
		case '\r':
			if i+1 < len(b) && b[i+1] == '\n' {
				return b[:i], b[i+2:], true
			}
			return nil, nil, false
		case '\n':
			return nil, nil, false
		}
	}
	return nil, nil, false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// isTokenByte reports a tchar of RFC 9110.
func isTokenByte(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), b) >= 0
}

// plainHost reports a Host value net/http surely accepts: a name or
// address, with a port or not.
func plainHost(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
