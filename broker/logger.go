package broker

import (
	"fmt"

	"github.com/rs/zerolog"
)

// coreLogger adapts zerolog to the raftlog core's printf-style logger.
type coreLogger struct{ log zerolog.Logger }

// Debugf formats only when debug logging is on: the core logs at debug
// level on hot paths.
func (l coreLogger) Debugf(format string, args ...any) {
	if e := l.log.Debug(); e.Enabled() {
		e.Msg(fmt.Sprintf(format, args...))
	}
}
func (l coreLogger) Infof(format string, args ...any) { l.log.Info().Msg(fmt.Sprintf(format, args...)) }
func (l coreLogger) Warnf(format string, args ...any) { l.log.Warn().Msg(fmt.Sprintf(format, args...)) }
