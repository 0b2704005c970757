package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// events posts client events to a mirror's POST /v1/events in batches
// from several concurrent clients and prints the accepted rate. Each
// client sends batches of the four outcomes of a few releases, with its
// own pseudonymous id; times are now.
func events(args []string) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	base := fs.String("url", "", "mirror base URL")
	total := fs.Int("events", 200_000, "events to send in all")
	batch := fs.Int("batch", 500, "events per request")
	conc := fs.Int("clients", 8, "concurrent clients")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *base == "" || *batch <= 0 || *conc <= 0 {
		return errors.New("-url, a positive -batch and -clients are required")
	}
	rels := []string{catalog.NewID(catalog.PrefixRelease), catalog.NewID(catalog.PrefixRelease), catalog.NewID(catalog.PrefixRelease)}
	types := []string{"check", "download_ok", "install_ok", "install_failed"}
	body := func(client int) []byte {
		type ev struct {
			Type       string    `json:"type"`
			ClientID   string    `json:"client_id"`
			ReleaseID  string    `json:"release_id,omitempty"`
			ToVersion  string    `json:"to_version,omitempty"`
			ErrorCode  string    `json:"error_code,omitempty"`
			DurationMS int64     `json:"duration_ms"`
			Time       time.Time `json:"time"`
		}
		evs := make([]ev, *batch)
		now := time.Now().UTC()
		for i := range evs {
			t := types[i%len(types)]
			e := ev{Type: t, ClientID: fmt.Sprintf("bench-client-%06d", client*(*batch)+i), DurationMS: int64(i % 5000), Time: now}
			if t != "check" {
				e.ReleaseID, e.ToVersion = rels[i%len(rels)], "1.1.0"
			}
			if t == "install_failed" {
				e.ErrorCode = fmt.Sprintf("E_%d", i%7)
			}
			evs[i] = e
		}
		b, _ := json.Marshal(map[string]any{"events": evs})
		return b
	}
	requests := (*total + *batch - 1) / *batch
	var next, accepted atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, *conc)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc}}
	start := time.Now()
	for c := range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := body(c)
			for next.Add(1) <= int64(requests) {
				resp, err := hc.Post(*base+"/v1/events", "application/json", bytes.NewReader(payload))
				if err != nil {
					errc <- err
					return
				}
				var res struct {
					Accepted int64 `json:"accepted"`
				}
				err = json.NewDecoder(resp.Body).Decode(&res)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || err != nil {
					errc <- fmt.Errorf("POST /v1/events: status %d (%v)", resp.StatusCode, err)
					return
				}
				accepted.Add(res.Accepted)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	select {
	case err := <-errc:
		return err
	default:
	}
	fmt.Printf("events_accepted %d\nrequests %d\nseconds %.3f\nevents_per_s %.0f\n", accepted.Load(), requests, secs, float64(accepted.Load())/secs)
	return nil
}
