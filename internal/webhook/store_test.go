package webhook_test

import (
	"testing"

	"github.com/outpost/outpost/internal/webhook"
	"github.com/outpost/outpost/internal/webhook/storetest"
)

func TestMemStore_Contract(t *testing.T) {
	storetest.Run(t, storetest.Factory{New: func(t *testing.T) webhook.Store { return webhook.NewMemStore() }})
}
