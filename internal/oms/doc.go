// Package oms implements OpenSSF Model Signing (OMS) v1.0 signatures: the
// in-toto Statement v1 with the predicate https://model_signing/signature/v1.0,
// its DSSE envelope, and the Sigstore bundle v0.3 JSON that carries both,
// together with the keys, certificate chains and Sigstore keyless material
// that verify them. It also verifies cosign "sign-blob" signatures over single
// files, in the old and the bundle form.
//
// [SignModel] and [VerifyModel] tie it to the model on disk: they hash it
// with package digest (for verification, with the serialization each
// signature records) and compare the signed resources with the files.
//
// # Layers
//
//   - [Statement]: the OMS in-toto statement. [NewStatement] builds it,
//     [ParseStatement] parses payloads strictly but accepts the forms the
//     Python reference writes (key order, integral floats, the deprecated
//     v0.1 predicate of model_signing 0.2.0).
//   - [Bundle]: the Sigstore bundle JSON. [ParseBundle] rejects duplicate
//     keys, unknown fields, trailing data and anything over [MaxBundleSize].
//   - [Sign] produces a key or certificate bundle; [VerifyKeys],
//     [VerifyCertChain] and [VerifyKeyless] check one and return the signed
//     statement.
//
// # Errors
//
// Every error returned by a Verify function means "the signature does not
// hold" unless errors.Is(err, [ErrUnsupported]), which means the signature
// uses something custody cannot check (for example a blake3 manifest).
// [VerifyModel] wraps the former in [ErrNotVerified]; its other errors come
// from reading or hashing the model (package digest's sentinels).
package oms
