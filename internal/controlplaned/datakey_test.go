package controlplaned_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/keyshare"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/bolt"
	"github.com/outpost/outpost/internal/webhook"
)

// sealedWorld is a bbolt control plane holding one value of every kind
// sealed with the data-encryption key, and the plaintexts to expect.
type sealedWorld struct {
	cfg        controlplaned.Config
	st         *bolt.DB
	oldKey     []byte
	mirrorID   string
	credential string
	webhookID  string
	secret     string
	answer     []byte
}

func newSealedWorld(t *testing.T) *sealedWorld {
	t.Helper()
	dir := t.TempDir()
	cfg := controlplaned.Config{KeysDir: filepath.Join(dir, "keys"), DataKeyFile: filepath.Join(dir, "data-encryption.key")}
	if _, err := keyring.Generate(cfg.KeysDir); err != nil {
		t.Fatal(err)
	}
	w := &sealedWorld{cfg: cfg, oldKey: make([]byte, 32)}
	rand.Read(w.oldKey)
	if err := os.WriteFile(cfg.DataKeyFile, w.oldKey, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(dir, "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w.st = st
	app := w.app(t)
	ctx := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
	tn, err := app.CreateTenant(ctx, controlplane.TenantInput{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := app.CreateMirror(ctx, tn.TenantID, controlplane.MirrorInput{Name: "plant", AllowedChannels: []string{"stable"}})
	if err != nil {
		t.Fatal(err)
	}
	w.mirrorID, w.credential = m.Mirror.MirrorID, m.Credential
	hook, err := app.CreateWebhook(ctx, controlplane.WebhookInput{URL: "https://hooks.example/outpost", EventTypes: []string{webhook.ReleasePublished}})
	if err != nil {
		t.Fatal(err)
	}
	w.webhookID, w.secret = hook.ID, hook.Secret
	w.answer = []byte(`{"credential":"` + m.Credential + `"}`)
	if err := app.Remember(ctx, "tok:key-1", controlplane.Remembered{RequestHash: "h", Status: 201, Body: w.answer}); err != nil {
		t.Fatal(err)
	}
	return w
}

// app opens an App on the world's store with the data-encryption keys
// the files hold now (as the daemon does at start).
func (w *sealedWorld) app(t *testing.T) *controlplane.App {
	t.Helper()
	sealer, err := controlplaned.LoadDataKeys(w.cfg.DataKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return w.appWith(t, sealer)
}

func (w *sealedWorld) appWith(t *testing.T, sealer *controlplane.Sealer) *controlplane.App {
	t.Helper()
	blobs, err := disk.New(filepath.Join(filepath.Dir(w.cfg.DataKeyFile), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return controlplane.New(controlplane.Options{Store: w.st, Blobs: blobs, Keys: controlplaned.DirKeyring(w.cfg.KeysDir), Secrets: sealer})
}

// check opens every sealed value with sealer and compares it with what
// was sealed.
func (w *sealedWorld) check(t *testing.T, sealer *controlplane.Sealer) error {
	t.Helper()
	ctx := context.Background()
	m, err := w.st.Mirror(ctx, w.mirrorID)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := sealer.Open(w.mirrorID, m.CredentialEnc)
	if err != nil {
		return err
	}
	if string(cred) != w.credential {
		t.Fatalf("mirror credential = %q, want %q", cred, w.credential)
	}
	app := w.appWith(t, sealer)
	sub, err := app.WebhookStore().Subscription(ctx, w.webhookID)
	if err != nil {
		return err
	}
	if sub.Secret != w.secret {
		t.Fatalf("webhook secret = %q, want %q", sub.Secret, w.secret)
	}
	r, err := app.Remembered(ctx, "tok:key-1")
	if err != nil {
		return err
	}
	if !bytes.Equal(r.Body, w.answer) {
		t.Fatalf("remembered answer = %q, want %q", r.Body, w.answer)
	}
	return nil
}

// checkDone checks a finished rotation: the key file alone opens
// everything, the old key nothing, and no rotation file is left.
func (w *sealedWorld) checkDone(t *testing.T) {
	t.Helper()
	key, err := os.ReadFile(w.cfg.DataKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(key, w.oldKey) {
		t.Fatal("the data-encryption key file still holds the old key")
	}
	only, _ := controlplane.NewSealer(key)
	if err := w.check(t, only); err != nil {
		t.Fatalf("the new key alone: %v", err)
	}
	old, _ := controlplane.NewSealer(w.oldKey)
	m, _ := w.st.Mirror(context.Background(), w.mirrorID)
	if _, err := old.Open(w.mirrorID, m.CredentialEnc); !errors.Is(err, controlplane.ErrWrongKey) {
		t.Fatalf("the old key opens the re-sealed credential: err = %v, want ErrWrongKey", err)
	}
	for _, f := range []string{controlplaned.NextDataKeyFile(w.cfg.DataKeyFile), keyshare.PreviousDataKeyFile(w.cfg.DataKeyFile)} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left after the rotation (err %v)", f, err)
		}
	}
}

func TestRotateDataKey_ReSealsEverything(t *testing.T) {
	w := newSealedWorld(t)
	r, err := controlplaned.RotateDataKey(context.Background(), w.st, w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Resealed != 3 || r.Resumed || r.Shared {
		t.Fatalf("rotation = %+v, want 3 values re-sealed, not resumed, not shared", r)
	}
	w.checkDone(t)

	t.Run("the audit event names the key, never holds one", func(t *testing.T) {
		evs, _, err := w.st.AuditEvents(context.Background(), store.AuditFilter{EventType: controlplaned.EventDataKeyRotated}, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 {
			t.Fatalf("%d %s events, want 1", len(evs), controlplaned.EventDataKeyRotated)
		}
		newKey, _ := os.ReadFile(w.cfg.DataKeyFile)
		payload := string(evs[0].Payload)
		if !strings.Contains(payload, controlplane.KeyID(newKey)) || !strings.Contains(payload, `"resealed":3`) {
			t.Fatalf("payload %s lacks the key id %s or the count", payload, controlplane.KeyID(newKey))
		}
		assertNoKey(t, payload, w.oldKey, newKey)
	})
}

// assertNoKey fails if text holds any key, raw, hex or base64.
func assertNoKey(t *testing.T, text string, keys ...[]byte) {
	t.Helper()
	for _, k := range keys {
		for _, enc := range []string{string(k), hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k),
			base64.RawStdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k)} {
			if strings.Contains(text, enc) {
				t.Fatalf("%q holds a key", text)
			}
		}
	}
}

func TestRotateDataKey_CrashAtEveryStepIsRecoverable(t *testing.T) {
	for _, step := range []string{"next written", "committed", "key written"} {
		t.Run(step, func(t *testing.T) {
			w := newSealedWorld(t)
			crash := errors.New("crash")
			controlplaned.SetRotateStep(func(s string) error {
				if s == step {
					return crash
				}
				return nil
			})
			_, err := controlplaned.RotateDataKey(context.Background(), w.st, w.cfg)
			controlplaned.SetRotateStep(nil)
			if !errors.Is(err, crash) {
				t.Fatalf("err = %v, want the injected crash", err)
			}
			// What a restarted daemon loads opens every value.
			sealer, err := controlplaned.LoadDataKeys(w.cfg.DataKeyFile)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.check(t, sealer); err != nil {
				t.Fatalf("after a crash at %q: %v", step, err)
			}
			// A value the restarted daemon seals before the rotation is
			// finished is re-sealed by the finishing run.
			ctx := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
			tn, err := w.appWith(t, sealer).CreateTenant(ctx, controlplane.TenantInput{Name: "Later"})
			if err != nil {
				t.Fatal(err)
			}
			later, err := w.appWith(t, sealer).CreateMirror(ctx, tn.TenantID, controlplane.MirrorInput{Name: "later", AllowedChannels: []string{"stable"}})
			if err != nil {
				t.Fatal(err)
			}
			r, err := controlplaned.RotateDataKey(context.Background(), w.st, w.cfg)
			if err != nil {
				t.Fatalf("finishing the rotation: %v", err)
			}
			if !r.Resumed {
				t.Fatalf("rotation = %+v, want resumed", r)
			}
			w.checkDone(t)
			key, _ := os.ReadFile(w.cfg.DataKeyFile)
			only, _ := controlplane.NewSealer(key)
			m, _ := w.st.Mirror(context.Background(), later.Mirror.MirrorID)
			if got, err := only.Open(m.MirrorID, m.CredentialEnc); err != nil || string(got) != later.Credential {
				t.Fatalf("the mirror created mid-rotation: %q, %v", got, err)
			}
		})
	}
}

func TestRotateDataKey_AValueNoKeyOpensChangesNothing(t *testing.T) {
	w := newSealedWorld(t)
	foreign := make([]byte, 32)
	rand.Read(foreign)
	other, _ := controlplane.NewSealer(foreign)
	ctx := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
	tn, err := w.appWith(t, other).CreateTenant(ctx, controlplane.TenantInput{Name: "Foreign"})
	if err != nil {
		t.Fatal(err)
	}
	stray, err := w.appWith(t, other).CreateMirror(ctx, tn.TenantID, controlplane.MirrorInput{Name: "stray", AllowedChannels: []string{"stable"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = controlplaned.RotateDataKey(context.Background(), w.st, w.cfg)
	if !errors.Is(err, controlplane.ErrWrongKey) || !strings.Contains(err.Error(), stray.Mirror.MirrorID) {
		t.Fatalf("err = %v, want ErrWrongKey naming mirror %s", err, stray.Mirror.MirrorID)
	}
	key, _ := os.ReadFile(w.cfg.DataKeyFile)
	if !bytes.Equal(key, w.oldKey) {
		t.Fatal("the failed rotation replaced the key file")
	}
	old, _ := controlplane.NewSealer(w.oldKey)
	if err := w.check(t, old); err != nil {
		t.Fatalf("after the failed rotation the old key alone: %v (the transaction was not rolled back)", err)
	}
	evs, _, err := w.st.AuditEvents(context.Background(), store.AuditFilter{EventType: controlplaned.EventDataKeyRotated}, store.Page{})
	if err != nil || len(evs) != 0 {
		t.Fatalf("%d rotation events after a failed rotation (%v), want 0", len(evs), err)
	}
}
