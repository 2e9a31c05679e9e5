package postgres

import (
	"context"
	"testing"

	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		cfg := newDatabase(t)
		return func(ctx context.Context) (store.Store, error) {
			return Open(ctx, cfg)
		}
	})
}
