package controlplaned_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/store/bolt"
)

// BenchmarkRotateDataKey re-seals 2,000 mirror credentials and 10,000
// remembered answers (bbolt, with fsync) per rotation.
func BenchmarkRotateDataKey(b *testing.B) {
	const mirrors, answers = 2000, 10000
	dir := b.TempDir()
	cfg := controlplaned.Config{KeysDir: filepath.Join(dir, "keys"), DataKeyFile: filepath.Join(dir, "data-encryption.key")}
	if _, err := keyring.Generate(cfg.KeysDir); err != nil {
		b.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(cfg.DataKeyFile, key, 0o600); err != nil {
		b.Fatal(err)
	}
	fill, err := bolt.Open(filepath.Join(dir, "cp.db"), bolt.Options{NoSync: true, NoWarm: true})
	if err != nil {
		b.Fatal(err)
	}
	sealer, _ := controlplaned.LoadDataKeys(cfg.DataKeyFile)
	app := controlplane.New(controlplane.Options{Store: fill, Keys: controlplaned.DirKeyring(cfg.KeysDir), Secrets: sealer})
	ctx := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "bench"})
	tn, err := app.CreateTenant(ctx, controlplane.TenantInput{Name: "Acme"})
	if err != nil {
		b.Fatal(err)
	}
	for i := range mirrors {
		if _, err := app.CreateMirror(ctx, tn.TenantID, controlplane.MirrorInput{Name: fmt.Sprintf("m%d", i), AllowedChannels: []string{"stable"}}); err != nil {
			b.Fatal(err)
		}
	}
	body := []byte(`{"token":"opt_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","id":"tok_01"}`)
	for i := range answers {
		if err := app.Remember(ctx, fmt.Sprintf("tok:%d", i), controlplane.Remembered{RequestHash: "h", Status: 201, Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	fill.Close()
	st, err := bolt.Open(filepath.Join(dir, "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ResetTimer()
	for b.Loop() {
		r, err := controlplaned.RotateDataKey(context.Background(), st, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if r.Resealed != mirrors+answers {
			b.Fatalf("re-sealed %d, want %d", r.Resealed, mirrors+answers)
		}
	}
}
