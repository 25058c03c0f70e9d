package broker

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// formatCounter counts how often it is formatted.
type formatCounter struct{ n *int }

func (f formatCounter) String() string { *f.n++; return "x" }

// TestCoreLoggerFormatsOnlyEnabledLevels: the core logs at debug level on
// hot paths, so with debug off its arguments are never formatted.
func TestCoreLoggerFormatsOnlyEnabledLevels(t *testing.T) {
	var buf bytes.Buffer
	formatted := 0
	arg := formatCounter{&formatted}
	l := coreLogger{zerolog.New(&buf).Level(zerolog.InfoLevel)}
	l.Debugf("quiet %v", arg)
	if formatted != 0 || buf.Len() != 0 {
		t.Fatalf("debug off: formatted %d times, wrote %q", formatted, buf.String())
	}
	l.Infof("loud %v", arg)
	if formatted != 1 || !strings.Contains(buf.String(), "loud x") {
		t.Fatalf("info on: formatted %d times, wrote %q", formatted, buf.String())
	}
	l = coreLogger{zerolog.New(&buf).Level(zerolog.DebugLevel)}
	l.Debugf("now %v", arg)
	if formatted != 2 || !strings.Contains(buf.String(), "now x") {
		t.Fatalf("debug on: formatted %d times, wrote %q", formatted, buf.String())
	}
}
