package tailsiftprocessor

import (
	"testing"

	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"

	"github.com/tailsift/tailsift/processor/tailsiftprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	custom := tracebuftest.CustomConfig()
	bytesAsNumber := createDefaultConfig().(*Config)
	bytesAsNumber.Buffer.MaxBytes = 2 << 20

	tests := []struct {
		id       component.ID
		expected component.Config
	}{
		{id: component.NewID(metadata.Type), expected: createDefaultConfig()},
		{id: component.NewIDWithName(metadata.Type, "custom"), expected: &custom},
		{id: component.NewIDWithName(metadata.Type, "bytes_as_number"), expected: bytesAsNumber},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg, err := tracebuftest.LoadConfig(t, NewFactory(), tt.id)
			require.NoError(t, err)
			assert.Equal(t, tt.expected, cfg)
		})
	}
}

func TestInvalidConfig(t *testing.T) {
	for _, tt := range tracebuftest.InvalidConfigs() {
		t.Run(tt.Name, func(t *testing.T) {
			tt.AssertInvalid(t, createDefaultConfig())
		})
	}
}

func TestUnmarshalErrorsNameTheKey(t *testing.T) {
	for _, tt := range tracebuftest.UndecodableConfigs() {
		t.Run(tt.Name, func(t *testing.T) {
			tt.AssertUndecodable(t, createDefaultConfig())
		})
	}
}
