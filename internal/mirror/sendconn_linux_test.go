package mirror

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// sendPair is a loopback TCP connection: the server end accepted by
// Listener, and the client end.
func sendPair(t *testing.T) (*sendConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = Listener(ln)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sc, ok := c.(*sendConn)
	if !ok {
		t.Fatalf("Listener accepted a %T, want *sendConn", c)
	}
	return sc, client
}

// TestSendConn_ReadFrom: a section of a file goes out by sendfile from its
// offset (the file's own offset untouched), from where the section was
// read up to; other readers take the usual path; a file shorter than the
// section is an error, not a hang.
func TestSendConn_ReadFrom(t *testing.T) {
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		reader  func(f *os.File) io.Reader
		want    []byte
		wantErr error
	}{
		{"section", func(f *os.File) io.Reader { return io.NewSectionReader(f, 1000, 100<<10) }, data[1000 : 1000+100<<10], nil},
		{"whole file", func(f *os.File) io.Reader { return io.NewSectionReader(f, 0, int64(len(data))) }, data, nil},
		{"section partly read", func(f *os.File) io.Reader {
			sr := io.NewSectionReader(f, 10, 1000)
			io.CopyN(io.Discard, sr, 100)
			return sr
		}, data[110:1010], nil},
		{"limited reader", func(f *os.File) io.Reader {
			f.Seek(5, io.SeekStart)
			return io.LimitReader(f, 70<<10)
		}, data[5 : 5+70<<10], nil},
		{"a chunk of a section", func(f *os.File) io.Reader {
			return &io.LimitedReader{R: io.NewSectionReader(f, 1000, 100<<10), N: 30 << 10}
		}, data[1000 : 1000+30<<10], nil},
		{"a chunk longer than the section", func(f *os.File) io.Reader {
			return &io.LimitedReader{R: io.NewSectionReader(f, 1000, 10<<10), N: 300 << 10}
		}, data[1000 : 1000+10<<10], nil},
		{"past the end of the file", func(f *os.File) io.Reader { return io.NewSectionReader(f, int64(len(data))-10, 100) }, data[len(data)-10:], io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sc, client := sendPair(t)
			r := tt.reader(f)
			before, _ := f.Seek(0, io.SeekCurrent)
			got := make(chan []byte)
			go func() {
				b, _ := io.ReadAll(client)
				got <- b
			}()
			n, err := sc.ReadFrom(r)
			sc.Close()
			body := <-got
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ReadFrom error = %v, want %v", err, tt.wantErr)
			}
			if n != int64(len(tt.want)) || !bytes.Equal(body, tt.want) {
				t.Errorf("ReadFrom = %d, received %d bytes (right ones: %v); want %d", n, len(body), bytes.Equal(body, tt.want), len(tt.want))
			}
			if lr, ok := r.(*io.LimitedReader); ok {
				if sr, ok := lr.R.(*io.SectionReader); ok {
					if pos, _ := sr.Seek(0, io.SeekCurrent); pos != int64(len(tt.want)) {
						t.Errorf("section left at %d, want %d", pos, len(tt.want))
					}
					if lr.N < 0 || lr.N > 300<<10 {
						t.Errorf("limit left at %d", lr.N)
					}
				}
			}
			if sr, ok := r.(*io.SectionReader); ok {
				after, _ := f.Seek(0, io.SeekCurrent)
				if after != before {
					t.Errorf("file offset moved from %d to %d", before, after)
				}
				_, _, size := sr.Outer()
				if pos, _ := sr.Seek(0, io.SeekCurrent); pos != size && tt.wantErr == nil {
					t.Errorf("section left at %d of %d", pos, size)
				}
			}
		})
	}
}

// TestSendConn_WriteMore: headers written with more set arrive with what
// follows, and the mark lasts one Write only.
func TestSendConn_WriteMore(t *testing.T) {
	sc, client := sendPair(t)
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	sc.more = true
	if n, err := sc.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")); n != 19 || err != nil {
		t.Fatalf("Write with more = %d, %v", n, err)
	}
	if sc.more {
		t.Error("more still set after the Write")
	}
	if _, err := sc.Write([]byte("body")); err != nil {
		t.Fatal(err)
	}
	sc.Close()
	if b := <-got; string(b) != "HTTP/1.1 200 OK\r\n\r\nbody" {
		t.Errorf("received %q", b)
	}
}
