package protocol

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Authentication plugins the proxy speaks.
const (
	PluginNative      = "mysql_native_password"
	PluginCachingSha2 = "caching_sha2_password"
)

// UserStore looks up users by name. It is called once per login and must be safe for
// concurrent use; a rules reload changes what it returns for later logins.
type UserStore interface {
	LookupUser(name string) (Credential, bool)
}

// Credential is a user's stored password hash; see ParseHash for the formats.
type Credential struct {
	Hash string
}

// ErrBadHash reports a password hash that is in none of the accepted formats.
var ErrBadHash = errors.New("protocol: unrecognised password hash")

const pbkdf2Prefix = "pbkdf2-sha256$"

// HashNative returns the mysql_native_password hash of password: "*" and 40 hex digits,
// the form MySQL keeps in mysql.user.
func HashNative(password string) string {
	s1 := sha1.Sum([]byte(password))
	s2 := sha1.Sum(s1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(s2[:]))
}

// HashSha2 returns a caching_sha2_password hash of password: a salted PBKDF2-HMAC-SHA256,
// "pbkdf2-sha256$ITERATIONS$SALT$HASH" with SALT and HASH in unpadded base64.
func HashSha2(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	const iter = 10000
	key, err := pbkdf2.Key(sha256.New, password, salt, iter, 32)
	if err != nil {
		return "", err
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("%s%d$%s$%s", pbkdf2Prefix, iter, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// verifier checks a client's proof of a password for one stored hash.
type verifier struct {
	plugin string
	native []byte // SHA1(SHA1(password)) for mysql_native_password
	iter   int    // PBKDF2 parameters for caching_sha2_password
	salt   []byte
	key    []byte
}

// ParseHash accepts "*HEX40" (mysql_native_password) or "pbkdf2-sha256$..."
// (caching_sha2_password) and says which plugin the user authenticates with.
func ParseHash(h string) (plugin string, err error) {
	v, err := parseVerifier(h)
	if err != nil {
		return "", err
	}
	return v.plugin, nil
}

func parseVerifier(h string) (verifier, error) {
	switch {
	case strings.HasPrefix(h, "*") && len(h) == 41:
		b, err := hex.DecodeString(h[1:])
		if err != nil {
			return verifier{}, fmt.Errorf("%w: %v", ErrBadHash, err)
		}
		return verifier{plugin: PluginNative, native: b}, nil
	case strings.HasPrefix(h, pbkdf2Prefix):
		parts := strings.Split(strings.TrimPrefix(h, pbkdf2Prefix), "$")
		if len(parts) != 3 {
			return verifier{}, fmt.Errorf("%w: want pbkdf2-sha256$ITER$SALT$HASH", ErrBadHash)
		}
		iter, err := strconv.Atoi(parts[0])
		if err != nil || iter < 1 {
			return verifier{}, fmt.Errorf("%w: bad iteration count %q", ErrBadHash, parts[0])
		}
		enc := base64.RawStdEncoding
		salt, err1 := enc.DecodeString(parts[1])
		key, err2 := enc.DecodeString(parts[2])
		if err := errors.Join(err1, err2); err != nil {
			return verifier{}, fmt.Errorf("%w: %v", ErrBadHash, err)
		}
		return verifier{plugin: PluginCachingSha2, iter: iter, salt: salt, key: key}, nil
	}
	return verifier{}, fmt.Errorf("%w: want \"*\" and 40 hex digits or \"pbkdf2-sha256$...\"", ErrBadHash)
}

// checkNative verifies a mysql_native_password scramble.
func (v verifier) checkNative(scramble, reply []byte) bool {
	if len(reply) != sha1.Size || len(v.native) != sha1.Size {
		return false
	}
	h := sha1.New()
	h.Write(scramble)
	h.Write(v.native)
	stage1 := h.Sum(nil)
	for i := range stage1 {
		stage1[i] ^= reply[i]
	}
	cand := sha1.Sum(stage1)
	return subtle.ConstantTimeCompare(cand[:], v.native) == 1
}

// checkPlain verifies a cleartext password against a caching_sha2 hash.
func (v verifier) checkPlain(password []byte) bool {
	key, err := pbkdf2.Key(sha256.New, string(password), v.salt, v.iter, len(v.key))
	return err == nil && subtle.ConstantTimeCompare(key, v.key) == 1
}

// sha2Cache is caching_sha2_password's server-side cache: after a full authentication it
// keeps SHA256(SHA256(password)) per user and hash, so later logins take the fast path
// (one round trip, no TLS or RSA needed). An entry is tied to the stored hash: a changed
// password invalidates it.
type sha2Cache struct {
	mu sync.Mutex
	m  map[string][32]byte // user + "\x00" + stored hash → SHA256(SHA256(password))
}

func (c *sha2Cache) get(user, hash string) ([32]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[user+"\x00"+hash]
	return v, ok
}

func (c *sha2Cache) put(user, hash string, password []byte) {
	s1 := sha256.Sum256(password)
	s2 := sha256.Sum256(s1[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string][32]byte)
	}
	c.m[user+"\x00"+hash] = s2
}

// checkSha2Fast verifies a caching_sha2_password fast-path scramble:
// reply = SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) || nonce).
func checkSha2Fast(stage2 [32]byte, nonce, reply []byte) bool {
	if len(reply) != sha256.Size {
		return false
	}
	h := sha256.New()
	h.Write(stage2[:])
	h.Write(nonce)
	x := h.Sum(nil)
	for i := range x {
		x[i] ^= reply[i]
	}
	cand := sha256.Sum256(x)
	return subtle.ConstantTimeCompare(cand[:], stage2[:]) == 1
}

// rsaKey is the key pair clients use to send a password over plain TCP during a full
// caching_sha2_password authentication. Generated on first use.
type rsaKey struct {
	once sync.Once
	key  *rsa.PrivateKey
	pem  []byte
	err  error
}

func (k *rsaKey) get() (*rsa.PrivateKey, []byte, error) {
	k.once.Do(func() {
		k.key, k.err = rsa.GenerateKey(rand.Reader, 2048)
		if k.err != nil {
			return
		}
		der, err := x509.MarshalPKIXPublicKey(&k.key.PublicKey)
		if err != nil {
			k.err = err
			return
		}
		k.pem = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	})
	return k.key, k.pem, k.err
}

// decryptPassword undoes the client's RSA-OAEP(SHA1) encryption of (password\0 XOR nonce).
func decryptPassword(key *rsa.PrivateKey, nonce, cipher []byte) ([]byte, error) {
	plain, err := rsa.DecryptOAEP(sha1.New(), nil, key, cipher, nil)
	if err != nil {
		return nil, fmt.Errorf("protocol: decrypt password: %w", err)
	}
	for i := range plain {
		plain[i] ^= nonce[i%len(nonce)]
	}
	return bytes.TrimRight(plain, "\x00"), nil
}
