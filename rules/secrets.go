package rules

// Secrets resolves the secrets a configuration names instead of holding them: a backend's
// password_env is the name of one. Implementations must be safe for concurrent use. The
// composition root supplies one (the process environment); rules never reads it itself.
type Secrets interface {
	// Secret returns the value of the secret called name, and whether it exists.
	Secret(name string) (string, bool)
}

// SecretsFunc adapts a lookup function (os.LookupEnv, a map's lookup) to Secrets.
type SecretsFunc func(name string) (string, bool)

// Secret calls f.
func (f SecretsFunc) Secret(name string) (string, bool) { return f(name) }

// SecretsMap is a fixed set of secrets, for tests and tools.
type SecretsMap map[string]string

// Secret returns m[name].
func (m SecretsMap) Secret(name string) (string, bool) { v, ok := m[name]; return v, ok }
