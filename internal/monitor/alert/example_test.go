package alert_test

import (
	"fmt"
	"time"

	"github.com/custody-ml/custody/internal/monitor/alert"
)

// A receiver checks the X-Custody-Signature header of a delivery against
// the shared secret and the raw body.
func ExampleVerify() {
	secret := []byte("shared-secret")
	body := []byte(`{"event":"rollback","monitor":"churn-prod"}`)
	sent := time.Unix(1_795_154_400, 0)
	header := alert.Sign(secret, sent, body) // what custody sends

	fmt.Println(alert.Verify(secret, header, body, sent.Add(30*time.Second), 5*time.Minute))
	fmt.Println(alert.Verify(secret, header, []byte(`{"event":"breach"}`), sent, 5*time.Minute) != nil)
	// Output:
	// <nil>
	// true
}
