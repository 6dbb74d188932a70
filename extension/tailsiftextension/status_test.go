package tailsiftextension

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/statuspage"
)

func TestServesStatusPage(t *testing.T) {
	ext, base := startExtension(t, nil)
	require.EqualError(t, ext.Handle("GET /api/v1/status", http.NotFoundHandler()),
		`tailsift extension: route "GET /api/v1/status" is already mounted`, "the status page is built in")

	resp, err := http.Get(base + "/") // follows the redirect to /status/
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "/status/", resp.Request.URL.Path)
	assert.Contains(t, string(page), "<title>tailsift status</title>")

	resp, err = http.Get(base + "/api/v1/status")
	require.NoError(t, err)
	var s statuspage.Snapshot
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, int64(2000), s.RefreshMs)
	assert.NotNil(t, s.Components)
}
