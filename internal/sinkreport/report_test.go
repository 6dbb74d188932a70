package sinkreport

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClass(t *testing.T) {
	var rep Report
	require.NoError(t, json.Unmarshal([]byte(`{"schema":"tailsift-sink/v1","classes":[
		{"class":"fast","traces_sent":10},{"class":"error","traces_sent":3,"adjusted":{"traces_true":3}}]}`), &rep))
	assert.Equal(t, SchemaVersion, rep.Schema)
	tests := []struct {
		name  string
		rep   *Report
		class string
		want  *ClassRow
	}{
		{"present", &rep, "error", &rep.Classes[1]},
		{"absent", &rep, "slow", nil},
		{"nil report", nil, "error", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Same(t, tt.want, tt.rep.Class(tt.class))
		})
	}
	assert.Equal(t, int64(3), rep.Class("error").Adjusted.TracesTrue)
}
