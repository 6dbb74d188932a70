package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReleaseRecovery: the recovery is given to the first claimant, or
// released unclaimed; either way only once.
func TestReleaseRecovery(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	req, ids := request(t, []int{1, 2}, 2, 0)
	require.True(t, s.AppendSpans(ids, req))
	require.True(t, s.AppendDecision(ids[0], Decision{Policy: "p", Reason: "quiet"}))
	require.NoError(t, s.Sync(context.Background()))
	require.NoError(t, s.Close())

	t.Run("unclaimed", func(t *testing.T) {
		s := openStore(t, dir, nil)
		defer func() { require.NoError(t, s.Close()) }()
		undecided, decided := s.ReleaseRecovery()
		assert.Equal(t, [2]int{1, 1}, [2]int{undecided, decided})
		assert.Equal(t, &Recovery{}, s.Claim(), "nothing to claim once released")
		undecided, decided = s.ReleaseRecovery()
		assert.Zero(t, undecided+decided)
	})
	t.Run("claimed", func(t *testing.T) {
		s := openStore(t, dir, nil)
		defer func() { require.NoError(t, s.Close()) }()
		r := s.Claim()
		assert.Len(t, r.Undecided, 1)
		assert.Len(t, r.Decided, 1)
		undecided, decided := s.ReleaseRecovery()
		assert.Zero(t, undecided+decided, "claimed: nothing released")
	})
}
