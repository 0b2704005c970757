package httpapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/httpapi"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/bolt"
	"github.com/outpost/outpost/internal/store/postgres"
)

// gatedStore holds the first CreateTenant until gate is closed, so a
// request is caught in the middle of its work.
type gatedStore struct {
	store.Store
	entered chan struct{}
	gate    chan struct{}
	first   bool
}

func (g *gatedStore) CreateTenant(ctx context.Context, t *catalog.Tenant) error {
	if !g.first {
		g.first = true
		close(g.entered)
		<-g.gate
	}
	return g.Store.CreateTenant(ctx, t)
}

// instance is one control plane process: its own App and Server (so its
// own in-process key lock) over the shared store.
func instance(t *testing.T, st store.Store, dir string, key ed25519.PrivateKey, dek []byte) *httptest.Server {
	t.Helper()
	blobs, err := disk.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := controlplane.NewSealer(dek)
	if err != nil {
		t.Fatal(err)
	}
	app := controlplane.New(controlplane.Options{Store: st, Blobs: blobs, Keys: &staticKeys{keys: []ed25519.PrivateKey{key}}, Secrets: sealer})
	srv := &httpapi.Server{App: app}
	srv.SetReady(true)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}

func TestIdempotency_TwoInstancesOneDatabase(t *testing.T) {
	stores := map[string]func(t *testing.T) (store.Store, store.Store){
		"bbolt": func(t *testing.T) (store.Store, store.Store) {
			db, err := bolt.Open(filepath.Join(t.TempDir(), "cp.db"), bolt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db, db
		},
		"postgres": func(t *testing.T) (store.Store, store.Store) {
			url := os.Getenv("OUTPOST_TEST_POSTGRES_URL")
			if url == "" {
				t.Skip("OUTPOST_TEST_POSTGRES_URL is not set (scripts/postgres.sh)")
			}
			var b [6]byte
			rand.Read(b[:])
			schema := "outpost_idem_" + hex.EncodeToString(b[:])
			ctx := context.Background()
			open := func() *postgres.DB {
				db, err := postgres.Open(ctx, url, postgres.Options{Schema: schema, MaxConns: 4})
				if err != nil {
					t.Fatal(err)
				}
				return db
			}
			a, b2 := open(), open() // two pools: two processes' connections
			t.Cleanup(func() {
				a.Close()
				b2.Close()
				conn, err := pgx.Connect(ctx, url)
				if err != nil {
					t.Errorf("drop schema: %v", err)
					return
				}
				defer conn.Close(ctx)
				conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			})
			return a, b2
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			stA, stB := open(t)
			_, key, _ := ed25519.GenerateKey(rand.Reader)
			dek := make([]byte, 32)
			rand.Read(dek)
			gated := &gatedStore{Store: stA, entered: make(chan struct{}), gate: make(chan struct{})}
			dir := t.TempDir()
			a := instance(t, gated, filepath.Join(dir, "a"), key, dek)
			b := instance(t, stB, filepath.Join(dir, "b"), key, dek)
			ctx := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
			sealer, _ := controlplane.NewSealer(dek)
			tok, err := controlplane.New(controlplane.Options{Store: stB, Keys: &staticKeys{keys: []ed25519.PrivateKey{key}}, Secrets: sealer}).
				CreateToken(ctx, controlplane.TokenInput{Role: catalog.RoleAdmin, Name: "test"})
			if err != nil {
				t.Fatal(err)
			}
			post := func(base string) (int, string) {
				req, _ := http.NewRequest("POST", base+"/v1/tenants", strings.NewReader(`{"name":"twice"}`))
				req.Header.Set("Authorization", "Bearer "+tok.Secret)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Idempotency-Key", "same-key")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("POST %s: %v", base, err)
					return 0, ""
				}
				defer resp.Body.Close()
				var sb strings.Builder
				buf := make([]byte, 4096)
				for {
					n, err := resp.Body.Read(buf)
					sb.Write(buf[:n])
					if err != nil {
						break
					}
				}
				return resp.StatusCode, sb.String()
			}

			type answer struct {
				status int
				body   string
			}
			first := make(chan answer, 1)
			go func() {
				s, b := post(a.URL)
				first <- answer{s, b}
			}()
			<-gated.entered // A holds the key and is inside its work

			status, body := post(b.URL)
			if status != http.StatusConflict || !strings.Contains(body, "in progress") {
				t.Errorf("same key on instance B while A runs = %d %s, want 409 in progress", status, body)
			}
			close(gated.gate)
			got := <-first
			if got.status != http.StatusCreated {
				t.Fatalf("instance A = %d %s, want 201", got.status, got.body)
			}
			status, body = post(b.URL)
			if status != http.StatusCreated || body != got.body {
				t.Errorf("retry on B after A answered = %d %s, want A's answer 201 %s", status, body, got.body)
			}
			tenants, _, err := stB.Tenants(context.Background(), store.Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, tn := range tenants {
				if tn.Name == "twice" {
					n++
				}
			}
			if n != 1 {
				t.Errorf("tenants named twice = %d, want 1", n)
			}
		})
	}
}
