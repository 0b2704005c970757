package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/wire"
)

// Front is the mirror's own HTTP/1.1 loop in front of net/http, for the
// requests that dominate a site's traffic: update checks and artifact
// downloads. net/http's fixed work per request (the parser, a header
// map, a goroutine handoff, a response writer) is most of what a small
// answer costs, and nginx, the reference the mirror is held to, does none
// of it.
//
// Front accepts every connection and reads its requests itself. It
// answers a request only when it is sure net/http would give the same
// answer: a plain GET in HTTP/1.1 with one simple Host, no body, no
// hop-by-hop headers but "Connection: keep-alive" and a valid client
// token when the mirror has some; then an update check whose query passes
// the strict check (answered with the engine's rendered document or the
// query's 400 or 404), or an artifact by id with at most one byte range
// and no precondition. At the first request it is not sure of, before
// writing anything, it hands the connection to net/http (Accept) with the
// bytes it has read, and never sees that connection again: every other
// route and every odd request takes the net/http path, and TLS does not
// use Front at all. TestFront_SameAnswers compares the answers of both
// paths; FuzzParseFront holds Front's reading of a head to net/http's.
type Front struct {
	ln      net.Listener
	s       *Server
	o       FrontOptions
	handoff chan net.Conn
	done    chan struct{} // closed when the accept loop ends
	err     error         // why it ended, once done is closed
	start   gosync.Once
	// closeOnce closes ln once (Close).
	closeOnce gosync.Once

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
	StreamIdleTimeout time.Duration // per write of an artifact's bytes
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
	if o.StreamIdleTimeout <= 0 {
		o.StreamIdleTimeout = DefaultStreamIdle
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
// end with Shutdown. Only the first call closes: http.Server.Shutdown
// closes its listener too and reports an error of a second close as its
// own, which a graceful stop would log as cut short.
func (f *Front) Close() error {
	err := net.ErrClosed
	f.closeOnce.Do(func() { err = f.ln.Close() })
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Addr implements net.Listener.
func (f *Front) Addr() net.Addr { return f.ln.Addr() }

// Shutdown closes the listener and the idle connections Front serves,
// lets the busy ones finish their answer, and waits for them until ctx
// ends; then it cuts the rest.
func (f *Front) Shutdown(ctx context.Context) error {
	f.closing.Store(true)
	_ = f.Close()
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
		rep, ok := f.s.frontReply(buf[start:head])
		if !ok || len(rep.body) > maxFrontAnswer {
			f.handOver(fc, buf[start:end])
			return
		}
		var err error
		if rep.file != nil {
			out, err = f.sendBlob(c, out, &rep)
		} else {
			now := time.Now()
			out = appendAnswer(out[:0], now, rep.status, rep.body)
			_ = c.SetWriteDeadline(now.Add(f.o.WriteTimeout))
			f.answered.Add(1) // before the client can have it
			_, err = c.Write(out)
		}
		if err != nil {
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

// appendAnswer appends the response net/http writes for update.Handle's
// answer body with status: the same status line and headers, in its
// order (an error's too: wire.WriteJSON sets the same two).
func appendAnswer(b []byte, now time.Time, status int, body []byte) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nCache-Control: no-store\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nContent-Type: application/json\r\nDate: "...)
	b = append(b, httpDate.get(now)[0]...)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// reply is what Front answers a request with: an update-check answer
// (status and body: the rendered document, or the query's error), or a
// byte range of a served artifact (file).
type reply struct {
	status int // of body
	body   []byte
	file   *cache.File // held from the pool: released by sendBlob
	a      snapshot.Artifact
	// start and n are the range of the artifact sent; partial: 206.
	start, n int64
	partial  bool
}

// frontReply is the answer to the request whose head (request line and
// headers, up to the blank line) is head, when it is a request net/http
// would route to the update check and answer from a rendered answer or
// with the query's 400 or 404, or route to an artifact download by id and
// answer 200 or 206 from the cache; false when Front is not sure.
func (s *Server) frontReply(head []byte) (reply, bool) {
	target, h, ok := parseFront(head)
	if !ok {
		return reply{}, false
	}
	if len(s.tokens) > 0 {
		tok, ok := bytes.CutPrefix(h.authz, []byte("Bearer "))
		if !ok {
			return reply{}, false
		}
		if _, ok := s.matchToken(tok); !ok {
			return reply{}, false
		}
	}
	v := s.cur.Load()
	if v.held == nil || (!s.o.ServeExpired && s.expired(v.held)) {
		return reply{}, false
	}
	if q, ok := bytes.CutPrefix(target, []byte("/v1/updates/check")); ok {
		if len(q) == 0 || q[0] != '?' || v.rendered == nil {
			return reply{}, false
		}
		raw := string(q[1:])
		if wire.CheckRawQuery(raw) != nil {
			return reply{}, false // a repeated or garbled parameter: net/http's 400
		}
		body, err := v.rendered(raw)
		switch {
		case err != nil:
			// The query's own error (400 or 404), as wire.WriteError
			// answers it; anything else is net/http's to answer and log.
			status, eb := wire.Body(err)
			var ra interface{ RetryAfter() time.Duration }
			if status >= 500 || errors.As(err, &ra) {
				return reply{}, false
			}
			b, err := json.Marshal(eb)
			if err != nil {
				return reply{}, false
			}
			return reply{status: status, body: append(b, '\n')}, true
		case body == nil:
			return reply{}, false // rendered per request: net/http's
		}
		return reply{status: http.StatusOK, body: body}, true
	}
	id, ok := bytes.CutPrefix(target, []byte(artifactsPrefix))
	if !ok || len(id) == 0 || h.conditional || h.ranges > 1 {
		return reply{}, false
	}
	for _, b := range id {
		// An id, and nothing net/http would clean, redirect or route
		// elsewhere ('/', '?', dots).
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
			return reply{}, false
		}
	}
	a, ok := v.byID[string(id)]
	if !ok {
		return reply{}, false
	}
	rep := reply{a: a, n: a.SizeBytes}
	if h.ranges == 1 {
		if rep.start, rep.n, ok = byteRange(string(h.rng), a.SizeBytes); !ok {
			return reply{}, false
		}
		rep.partial = true
	}
	f, err := s.files.Acquire(a.SHA256, a.SizeBytes)
	if err != nil {
		return reply{}, false // net/http says why
	}
	rep.file = f
	return rep, true
}

// head is what Front needs of a request's headers.
type head struct {
	host        []byte
	authz       []byte
	rng         []byte
	ranges      int
	conditional bool // a precondition header: net/http's
}

// parseFront reads a request head (the request line and the headers, up
// to and with the blank line): a plain GET in HTTP/1.1, its target and
// the headers Front needs. False when Front is not sure how net/http
// would take it (FuzzParseFront holds it to net/http's reading).
func parseFront(b []byte) (target []byte, h head, ok bool) {
	line, rest, ok := cutCRLF(b)
	if !ok || !bytes.HasPrefix(line, []byte("GET /")) {
		return nil, h, false
	}
	line = line[len("GET "):]
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 || string(line[sp:]) != " HTTP/1.1" {
		return nil, h, false
	}
	target = line[:sp]
	for _, c := range target {
		// Printable ASCII, and no '#' (ParseRequestURI keeps it in the
		// query). Escapes in the query stay as they are: it is checked
		// and parsed raw, as net/http hands it on.
		if c <= ' ' || c >= 0x7f || c == '#' {
			return nil, h, false
		}
	}
	if path, _, _ := bytes.Cut(target, []byte("?")); bytes.IndexByte(path, '%') >= 0 {
		// An escape in the path: net/http unescapes it (or refuses it).
		return nil, h, false
	}
	h, ok = parseHeaders(rest)
	return target, h, ok
}

// parseHeaders reads the header lines of a request head (after the
// request line, up to the blank line); false when Front is not sure
// how net/http would take them.
func parseHeaders(rest []byte) (head, bool) {
	var h head
	hosts, auths := 0, 0
	for {
		line, r, ok := cutCRLF(rest)
		if !ok {
			return h, false
		}
		rest = r
		if len(line) == 0 {
			break // the blank line
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return h, false
		}
		name, val := line[:colon], trimOWS(line[colon+1:])
		for _, b := range name {
			if !isTokenByte(b) {
				return h, false
			}
		}
		for _, b := range val {
			if (b < ' ' && b != '\t') || b == 0x7f {
				return h, false
			}
		}
		switch {
		case asciiEqualFold(name, "host"):
			hosts++
			h.host = val
			if !plainHost(val) {
				return h, false
			}
		case asciiEqualFold(name, "authorization"):
			auths++
			h.authz = val
		case asciiEqualFold(name, "range"):
			h.ranges++
			h.rng = val
		case asciiEqualFold(name, "connection"):
			if !asciiEqualFold(val, "keep-alive") {
				return h, false
			}
		case asciiEqualFold(name, "if-match"), asciiEqualFold(name, "if-none-match"), asciiEqualFold(name, "if-modified-since"),
			asciiEqualFold(name, "if-unmodified-since"), asciiEqualFold(name, "if-range"):
			h.conditional = true
		case asciiEqualFold(name, "content-length"), asciiEqualFold(name, "transfer-encoding"),
			asciiEqualFold(name, "expect"), asciiEqualFold(name, "upgrade"), asciiEqualFold(name, "te"),
			asciiEqualFold(name, "trailer"), asciiEqualFold(name, "keep-alive"):
			return h, false
		}
	}
	return h, hosts == 1 && auths <= 1 && len(rest) == 0
}

// sendBlob writes rep's headers (as serveBlob's plain path) and its byte
// range, by sendfile on a connection of Listener; out is the header
// buffer, returned for reuse.
func (f *Front) sendBlob(c net.Conn, out []byte, rep *reply) ([]byte, error) {
	defer f.s.files.Release(rep.file)
	out = appendBlobHeaders(out[:0], rep)
	extend := func() { _ = c.SetWriteDeadline(time.Now().Add(f.o.StreamIdleTimeout)) }
	extend()
	f.answered.Add(1)
	sc, _ := c.(*sendConn)
	if sc != nil && rep.n > 0 {
		sc.more = true // the headers go with the body's first bytes
	}
	if _, err := c.Write(out); err != nil || rep.n == 0 {
		return out, err
	}
	var sent int64
	var err error
	if sc != nil {
		var sec *io.SectionReader
		if sec, err = rep.file.Section(rep.start, rep.n); err == nil {
			sent, err = wire.ReadFromInChunks(sc, sec, extend)
		}
	} else {
		sent, err = rep.file.CopyRange(&idleConn{c: c, extend: extend}, rep.start, rep.n)
	}
	f.s.metrics.served.Add(float64(sent))
	if err == nil && sent != rep.n {
		err = io.ErrShortWrite
	}
	return out, err
}

// idleConn pushes the write deadline on before each write.
type idleConn struct {
	c      net.Conn
	extend func()
}

func (w *idleConn) Write(p []byte) (int, error) {
	w.extend()
	return w.c.Write(p)
}

// appendBlobHeaders appends the status line and headers serveBlob's
// plain path has net/http write for rep.
func appendBlobHeaders(b []byte, rep *reply) []byte {
	if rep.partial {
		b = append(b, "HTTP/1.1 206 Partial Content\r\n"...)
	} else {
		b = append(b, "HTTP/1.1 200 OK\r\n"...)
	}
	b = append(b, "Accept-Ranges: bytes\r\nCache-Control: "...)
	b = append(b, headerImmutable[0]...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, rep.n, 10)
	if rep.partial {
		b = append(b, "\r\nContent-Range: "...)
		b = appendContentRange(b, rep.start, rep.n, rep.a.SizeBytes)
	}
	b = append(b, "\r\nContent-Type: application/octet-stream\r\nDate: "...)
	b = append(b, httpDate.get(time.Now())[0]...)
	b = append(b, "\r\nEtag: \""...)
	b = append(b, rep.a.SHA256...)
	b = append(b, "\"\r\n"...)
	b = append(b, wire.HeaderChecksum...)
	b = append(b, ": "...)
	b = append(b, rep.a.SHA256...)
	return append(b, "\r\n\r\n"...)
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
