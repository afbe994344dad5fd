package serving

import (
	"context"
	"os"
	"time"

	"github.com/custody-ml/custody/internal/api"
	"github.com/custody-ml/custody/internal/client"
	"github.com/custody-ml/custody/internal/store"
)

// Report tells the registry that process pid on this host started serving
// t (POST /api/v1/deployments; the registry logs it as a "deployment"
// entry).
func Report(ctx context.Context, c *client.Client, t *Target, pid int, started time.Time) (*store.Deployment, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return c.ReportDeployment(ctx, &api.DeploymentBody{
		Model: t.Model, Alias: t.Alias, Version: t.Version, Digest: t.Digest,
		AliasLogIndex: t.LogIndex, Host: host, PID: int64(pid), StartedAt: started.UTC(),
	})
}
