package registry

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/custody-ml/custody/internal/store"
)

// MaxMonitorResultBytes caps the payload of a monitor.result event.
const MaxMonitorResultBytes = 16 << 10

// RecordMonitorResult appends a monitor.result event (subject
// "monitor:NAME") carrying result, a JSON object summarising one
// evaluated window of a production monitor (docs/monitoring.md), to the
// journal and so to the transparency log (whose canonical JSON admits
// integers only: send other numbers as strings). It changes no other state. The
// actor needs the alias permission: monitors that record results are the
// ones that may roll an alias back.
func (s *Service) RecordMonitorResult(ctx context.Context, actor Actor, monitor string, result json.RawMessage) error {
	if err := actor.Require(PermAlias); err != nil {
		return err
	}
	if err := CheckName(monitor); err != nil {
		return err
	}
	if len(result) > MaxMonitorResultBytes {
		return fmt.Errorf("%w: monitor result of %d bytes exceeds %d", ErrInvalid, len(result), MaxMonitorResultBytes)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(result, &obj); err != nil {
		return fmt.Errorf("%w: monitor result must be a JSON object: %v", ErrInvalid, err)
	}
	return s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return s.record(ctx, tx, actor, "monitor.result", "monitor:"+monitor, obj)
	})
}
