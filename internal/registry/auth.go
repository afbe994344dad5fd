package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/custody-ml/custody/internal/store"
)

// Role is what a token may do. Roles are not ordered: each has an explicit
// set of permissions (see [Role.Can]); admin has all of them.
type Role string

const (
	RoleViewer    Role = "viewer"    // read everything
	RolePublisher Role = "publisher" // read; register models, versions, datasets
	RoleApprover  Role = "approver"  // read; approve versions, move aliases
	RoleDeployer  Role = "deployer"  // read; report deployments (serving processes)
	RoleAdmin     Role = "admin"     // everything, including tokens
	RoleIngester  Role = "ingester"  // log predictions and labels, nothing else
)

// Roles lists every role.
var Roles = []Role{RoleViewer, RolePublisher, RoleApprover, RoleDeployer, RoleAdmin, RoleIngester}

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", invalidf("unknown role %q (want viewer, publisher, approver, deployer, admin or ingester)", truncate(s))
}

// Permission is an action a role may be granted.
type Permission string

const (
	PermRead     Permission = "read"
	PermPublish  Permission = "publish" // models, versions, datasets
	PermAlias    Permission = "alias"   // set and remove aliases, promote, roll back
	PermApprove  Permission = "approve" // approve versions
	PermAdminTok Permission = "tokens"  // create tokens
	PermDeploy   Permission = "deploy"  // report deployments
	PermIngest   Permission = "ingest"  // log predictions and labels
)

var grants = map[Role][]Permission{
	RoleViewer:    {PermRead},
	RolePublisher: {PermRead, PermPublish},
	RoleApprover:  {PermRead, PermAlias, PermApprove},
	RoleDeployer:  {PermRead, PermDeploy},
	RoleAdmin:     {PermRead, PermPublish, PermAlias, PermApprove, PermAdminTok, PermDeploy, PermIngest},
	// An ingester cannot read the registry: resolving a record's digest
	// to a version happens inside the server.
	RoleIngester: {PermIngest},
}

// Can reports whether the role grants p.
func (r Role) Can(p Permission) bool {
	for _, g := range grants[r] {
		if g == p {
			return true
		}
	}
	return false
}

// Actor is who performs an action: recorded as created_by and in the
// journal.
type Actor struct {
	// Name identifies the actor in records, e.g. "token:3f9a2c1b7d4e".
	Name string
	Role Role
}

// Require returns an error wrapping ErrForbidden unless the actor's role
// grants p.
func (a Actor) Require(p Permission) error {
	if !a.Role.Can(p) {
		return fmt.Errorf("%w: role %q may not %s", ErrForbidden, a.Role, p)
	}
	return nil
}

// Token strings look like "cst_<12 hex id>_<43 base64url secret>". Only
// the SHA-256 of the whole string is stored; the id lets the server find
// the row without comparing secrets in a database index.
const tokenPrefix = "cst_"

// CreateToken creates a token with the given role and returns the token
// string, which is never stored and cannot be recovered.
func (s *Service) CreateToken(ctx context.Context, actor Actor, role Role, name string) (string, *store.Token, error) {
	if err := actor.Require(PermAdminTok); err != nil {
		return "", nil, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return "", nil, err
	}
	if err := checkText("token name", name, MaxTokenNameLen); err != nil {
		return "", nil, err
	}
	var idb [6]byte
	var secret [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", nil, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", nil, err
	}
	id := hex.EncodeToString(idb[:])
	plain := tokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	tok := &store.Token{ID: id, Hash: sha256.Sum256([]byte(plain)), Role: string(role), Name: name, CreatedBy: actor.Name, CreatedAt: s.now()}
	err := s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateToken(ctx, tok); err != nil {
			return err
		}
		return s.record(ctx, tx, actor, "token.create", "token:"+id, map[string]any{"id": id, "role": role, "name": name})
	})
	if err != nil {
		return "", nil, err
	}
	return plain, tok, nil
}

// Authenticate checks a token string and returns the actor it stands for.
// Every failure is ErrUnauthenticated, without saying which part was
// wrong; the secret is compared in constant time.
func (s *Service) Authenticate(ctx context.Context, token string) (Actor, error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok || len(rest) != 12+1+43 || rest[12] != '_' {
		return Actor{}, ErrUnauthenticated
	}
	id := rest[:12]
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return Actor{}, ErrUnauthenticated
	}
	tok, err := s.st.GetToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Actor{}, ErrUnauthenticated
	}
	if err != nil {
		return Actor{}, err
	}
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], tok.Hash[:]) != 1 {
		return Actor{}, ErrUnauthenticated
	}
	role, err := ParseRole(tok.Role)
	if err != nil {
		return Actor{}, fmt.Errorf("token %s has a corrupt role: %w", id, err)
	}
	return Actor{Name: "token:" + id, Role: role}, nil
}
