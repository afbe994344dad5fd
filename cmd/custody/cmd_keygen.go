package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/custody-ml/custody/internal/oms"
	"github.com/spf13/cobra"
)

func init() { register(newKeygenCommand) }

type keygenOptions struct {
	Algo string
	Out  string
}

func (o *keygenOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.Algo, "algo", oms.AlgoECDSAP256, "key algorithm: ecdsa-p256, ecdsa-p384 or ed25519")
	cmd.Flags().StringVar(&o.Out, "out", "", "write PREFIX.key (private) and PREFIX.pub (public)")
}

func newKeygenCommand() *cobra.Command {
	var opts keygenOptions
	cmd := &cobra.Command{
		Use:   "keygen --out PREFIX [--algo ecdsa-p256|ecdsa-p384|ed25519]",
		Short: "Generate a signing key pair",
		Long: `Generate a key pair for 'custody sign --key'.

PREFIX.key is the private key in PKCS#8 PEM, file mode 0600. When
CUSTODY_PASSWORD is set it is encrypted ("ENCRYPTED PRIVATE KEY": PBES2 with
scrypt N=2^14 r=8 p=1 and AES-256-CBC, the format of 'openssl pkcs8 -scrypt';
see docs/signing.md). PREFIX.pub is the public key in PKIX PEM, for
'custody verify --key' and 'cosign verify-blob-attestation --key'.

Existing files are never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runKeygen(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

func runKeygen(_ context.Context, stdout io.Writer, opts keygenOptions) error {
	if opts.Out == "" {
		return usagef("--out PREFIX is required")
	}
	switch opts.Algo {
	case oms.AlgoECDSAP256, oms.AlgoECDSAP384, oms.AlgoEd25519:
	default:
		return usagef("--algo %q: want ecdsa-p256, ecdsa-p384 or ed25519", opts.Algo)
	}
	key, err := oms.GenerateKey(opts.Algo)
	if err != nil {
		return err
	}
	pass := os.Getenv(envPassword)
	priv, err := oms.MarshalPrivateKeyPEM(key, []byte(pass))
	if err != nil {
		return err
	}
	pub, err := oms.MarshalPublicKeyPEM(key.Public())
	if err != nil {
		return err
	}
	keyPath, pubPath := opts.Out+".key", opts.Out+".pub"
	if _, err := os.Lstat(pubPath); err == nil {
		return fmt.Errorf("%s already exists; refusing to overwrite it", pubPath)
	}
	if err := writeNewFileDurable(keyPath, priv, 0o600); err != nil {
		return err
	}
	if err := writeNewFileDurable(pubPath, pub, 0o644); err != nil {
		return err
	}
	id, err := oms.KeyID(key.Public())
	if err != nil {
		return err
	}
	state := "encrypted with " + envPassword
	if pass == "" {
		state = "unencrypted; set " + envPassword + " to encrypt it"
	}
	_, err = fmt.Fprintf(stdout, "private key: %s (%s, %s)\npublic key:  %s\nkey id:      %s\n", keyPath, opts.Algo, state, pubPath, id)
	return err
}
