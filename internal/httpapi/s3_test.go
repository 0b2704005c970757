package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/testenv"
)

// TestAPI_S3Artifacts runs uploads and mirror downloads against a real S3
// server (versitygw on loopback).
func TestAPI_S3Artifacts(t *testing.T) {
	cfg := testenv.S3(t)
	st, err := s3.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{controlplane.DeliveryProxy, controlplane.DeliveryRedirect} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, func(o *controlplane.Options) { o.Blobs = st; o.Config.ArtifactDelivery = mode })
			data := bytes.Repeat([]byte("s3 artifact "), 200_000) // 2.4 MB
			t.Run("mismatch leaves no object", func(t *testing.T) {
				r := h.raw("POST", "/v1/artifacts?sha256="+sha([]byte("x")), h.admin, "application/octet-stream", bytes.NewReader(data), nil)
				if r.status != 400 {
					t.Fatalf("got %d", r.status)
				}
			})
			tenant := h.tenant("a")
			prod := h.product("p", "open")
			_, art := h.release(prod, "stable", "1.0.0", data)
			a := h.must(200, h.do("GET", "/v1/artifacts/"+art, h.admin, nil))
			if _, err := st.Stat(context.Background(), a["storage_path"].(string)); err != nil {
				t.Fatalf("object not in the bucket: %v", err)
			}
			_, cred, _ := h.mirror(tenant, "stable")
			h.snapshot(tenant)
			r := h.do("GET", "/v1/mirror/artifacts/"+art, cred, nil)
			switch mode {
			case controlplane.DeliveryProxy:
				if r.status != 200 || !bytes.Equal(r.body, data) {
					t.Fatalf("proxy: got %d, %d bytes", r.status, len(r.body))
				}
			case controlplane.DeliveryRedirect:
				loc := r.header.Get("Location")
				if r.status != 302 || loc == "" {
					t.Fatalf("redirect: got %d %q", r.status, loc)
				}
				res, err := h.client.Get(loc)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				var got bytes.Buffer
				got.ReadFrom(res.Body)
				if res.StatusCode != 200 || !bytes.Equal(got.Bytes(), data) {
					t.Fatalf("presigned GET: %d, %d bytes", res.StatusCode, got.Len())
				}
				if bytes.Contains([]byte(fmt.Sprint(res.Request.Header)), []byte(cred)) {
					t.Fatal("credential sent to S3")
				}
			}
			if v := h.must(200, h.do("POST", "/v1/artifacts/"+art+"/verify", h.admin, nil)); v["status"] != "VERIFIED" {
				t.Fatalf("re-verify from S3: %v", v)
			}
		})
	}
}
