package platform

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// DataServices are the company's highly available data services (issue
// 27), named once: every component that keeps state uses them instead of
// starting a single-instance PostgreSQL or Redis of its own.
type DataServices struct {
	Postgres *Postgres `json:"postgres,omitempty"`
	Redis    *Redis    `json:"redis,omitempty"`
}

// Postgres is the company's PostgreSQL service and the database and
// account each component gets on it.
type Postgres struct {
	// Host is the service's address (its VIP or DNS name, not one node's).
	Host string `json:"host"`
	// Port defaults to 5432.
	Port int `json:"port,omitempty"`
	// SSLMode is disable, require, verify-ca or verify-full (libpq's).
	SSLMode string `json:"sslMode"`
	// CAFile is the CA of the server's certificate (verify-ca and
	// verify-full); it goes into a Secret, see SECRETS.txt.
	CAFile string `json:"caFile,omitempty"`
	// Databases by component (harbor, keycloak).
	Databases map[string]Database `json:"databases,omitempty"`
}

// Database is one component's database and account. The password comes
// from an environment variable or a file, never from platform.yaml.
type Database struct {
	Name         string `json:"name"`
	User         string `json:"user"`
	PasswordEnv  string `json:"passwordEnv,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
}

// Redis is the company's Redis service: one address, or Sentinels with
// the name of the master set.
type Redis struct {
	// Addr is host:port of a single endpoint (a proxy or VIP in front of
	// the replicas).
	Addr string `json:"addr,omitempty"`
	// Sentinels are host:port of the Sentinels; MasterSet names the set.
	Sentinels []string `json:"sentinels,omitempty"`
	MasterSet string   `json:"masterSet,omitempty"`
	// TLS to Redis.
	TLS bool `json:"tls,omitempty"`
	// Accounts by component (harbor).
	Accounts map[string]RedisAccount `json:"accounts,omitempty"`
}

// RedisAccount is one component's Redis login (an ACL user, or the
// default user when User is empty).
type RedisAccount struct {
	User         string `json:"user,omitempty"`
	PasswordEnv  string `json:"passwordEnv,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
}

// DefaultPostgresPort is PostgreSQL's port.
const DefaultPostgresPort = 5432

// Components that keep state, and what they need of the data services.
var (
	postgresUsers = []string{"harbor", "keycloak"}
	redisUsers    = []string{"harbor"}
	sslModes      = []string{"disable", "require", "verify-ca", "verify-full"}
	pgIdentifier  = regexp.MustCompile(`^[a-z_][a-z0-9_$]{0,62}$`)
)

// Secrets holding the data services' passwords, in each component's namespace.
const (
	HarborDBSecret       = "harbor-db"        // key password (Harbor's chart: database.external.existingSecret)
	HarborRedisSecret    = "harbor-redis"     // key REDIS_PASSWORD (redis.external.existingSecret)
	HarborCABundleSecret = "harbor-ca-bundle" // key ca.crt (caBundleSecretName)
	KeycloakDBSecret     = "keycloak-db"      // key password
)

func (d *DataServices) applyDefaults() {
	if d.Postgres != nil && d.Postgres.Port == 0 {
		d.Postgres.Port = DefaultPostgresPort
	}
}

// PostgresFor is a component's database, if platform.yaml gives one.
func (s *Spec) PostgresFor(component string) (Database, bool) {
	if s.DataServices.Postgres == nil {
		return Database{}, false
	}
	db, ok := s.DataServices.Postgres.Databases[component]
	return db, ok
}

// RedisFor is a component's Redis account, if platform.yaml gives one.
func (s *Spec) RedisFor(component string) (RedisAccount, bool) {
	if s.DataServices.Redis == nil {
		return RedisAccount{}, false
	}
	a, ok := s.DataServices.Redis.Accounts[component]
	return a, ok
}

func (v *validator) dataServices(s *Spec) {
	d := &s.DataServices
	if pg := d.Postgres; pg != nil {
		const p = "dataServices.postgres"
		v.serviceHost(p+".host", pg.Host)
		if pg.Port < 0 || pg.Port > 65535 {
			v.add(p+".port", "%d is not a TCP port", pg.Port)
		}
		if !slices.Contains(sslModes, pg.SSLMode) {
			v.add(p+".sslMode", "%q is not one of %s (verify-full checks the server's certificate and name)", pg.SSLMode, strings.Join(sslModes, ", "))
		}
		if pg.CAFile != "" && !filepath.IsAbs(pg.CAFile) {
			v.add(p+".caFile", "%q is not an absolute path", pg.CAFile)
		}
		for _, name := range slices.Sorted(maps.Keys(pg.Databases)) {
			dp := p + ".databases." + name
			if !slices.Contains(postgresUsers, name) {
				v.add(dp, "no component by that name uses PostgreSQL; known: %s", strings.Join(postgresUsers, ", "))
			}
			db := pg.Databases[name]
			if !pgIdentifier.MatchString(db.Name) {
				v.add(dp+".name", "%q is not a PostgreSQL database name (lower case letters, digits, _)", db.Name)
			}
			if !pgIdentifier.MatchString(db.User) {
				v.add(dp+".user", "%q is not a PostgreSQL role name (lower case letters, digits, _)", db.User)
			}
			v.passwordSource(dp, db.PasswordEnv, db.PasswordFile)
		}
	}
	if r := d.Redis; r != nil {
		const p = "dataServices.redis"
		switch {
		case r.Addr == "" && len(r.Sentinels) == 0:
			v.add(p, "give addr (host:port of one endpoint) or sentinels and masterSet")
		case r.Addr != "" && len(r.Sentinels) > 0:
			v.add(p, "both addr and sentinels are set; keep one")
		case r.Addr != "":
			v.hostPortField(p+".addr", r.Addr)
		default:
			for i, a := range r.Sentinels {
				v.hostPortField(fmt.Sprintf("%s.sentinels[%d]", p, i), a)
			}
			if r.MasterSet == "" {
				v.add(p+".masterSet", "missing; Sentinels need the name of the master set they watch")
			}
		}
		if r.MasterSet != "" && len(r.Sentinels) == 0 {
			v.add(p+".masterSet", "set without sentinels")
		}
		for _, name := range slices.Sorted(maps.Keys(r.Accounts)) {
			ap := p + ".accounts." + name
			if !slices.Contains(redisUsers, name) {
				v.add(ap, "no component by that name uses Redis; known: %s", strings.Join(redisUsers, ", "))
			}
			a := r.Accounts[name]
			if a.User != "" && strings.ContainsAny(a.User, " :@/") {
				v.add(ap+".user", "%q is not a Redis user name", a.User)
			}
			v.passwordSource(ap, a.PasswordEnv, a.PasswordFile)
		}
		if _, ok := r.Accounts["harbor"]; ok && r.TLS && s.Enabled("harbor") {
			// goharbor/harbor-helm values.yaml (redis.external: addr,
			// sentinelMasterSet, username, password, existingSecret) has no
			// TLS setting; its helper builds redis:// or redis+sentinel:// URLs.
			v.add(p+".tls", "Harbor's chart connects to Redis without TLS only (redis.external has no TLS setting); give Harbor a Redis endpoint inside the platform's network without TLS, or leave Harbor out of dataServices.redis.accounts")
		}
	}
	// Stateful components must use the data services (no internal
	// single-instance database or Redis).
	for _, name := range postgresUsers {
		if _, ok := s.PostgresFor(name); s.Enabled(name) && !ok {
			v.add("dataServices.postgres.databases."+name, "missing; %s keeps its state in PostgreSQL and would otherwise start a single-instance database of its own (ask the data team for a database and an account: docs/platform.md)", name)
		}
	}
	for _, name := range redisUsers {
		if _, ok := s.RedisFor(name); s.Enabled(name) && !ok {
			v.add("dataServices.redis.accounts."+name, "missing; %s needs Redis and would otherwise start a single-instance Redis of its own (ask the data team for an account: docs/platform.md)", name)
		}
	}
}

func (v *validator) passwordSource(path, env, file string) {
	switch {
	case env == "" && file == "":
		v.add(path, "no password source; set passwordEnv (an environment variable) or passwordFile")
	case env != "" && file != "":
		v.add(path, "both passwordEnv and passwordFile are set; keep one")
	case env != "" && !envVarName.MatchString(env):
		v.add(path+".passwordEnv", "%q is not an environment variable name", env)
	case file != "" && !filepath.IsAbs(file):
		v.add(path+".passwordFile", "%q is not an absolute path", file)
	}
}

func (v *validator) serviceHost(path, h string) {
	if h == "" {
		v.add(path, "missing; the service's address (its VIP or DNS name)")
	} else if _, err := netip.ParseAddr(h); err != nil && !dnsName.MatchString(h) {
		v.add(path, "%q is neither an IP address nor a DNS name (no scheme or port here)", h)
	}
}

func (v *validator) hostPortField(path, hp string) {
	h, port, err := net.SplitHostPort(hp)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n < 1 || n > 65535 {
		v.add(path, "%q is not host:port such as redis.tsys.lan:6379", hp)
		return
	}
	v.serviceHost(path, h)
}

// postgresView is a component's database as its values template needs it.
type postgresView struct {
	Host, Port, SSLMode, Database, User string
	PortNumber                          int
	// Secret holds the password under key password.
	Secret string
	// CASecret holds the server's CA under key ca.crt ("" without caFile).
	CASecret string
	// Verify is true for verify-ca and verify-full.
	Verify bool
}

// redisView is a component's Redis account as its values template needs it.
type redisView struct {
	// Addr is host:port, or the Sentinels' host:port joined by commas.
	Addr, MasterSet, User string
	Secret                string
}

func newPostgresView(spec *Spec, component string) *postgresView {
	db, ok := spec.PostgresFor(component)
	if !ok {
		return nil
	}
	pg := spec.DataServices.Postgres
	v := &postgresView{Host: pg.Host, Port: strconv.Itoa(pg.Port), PortNumber: pg.Port, SSLMode: pg.SSLMode,
		Database: db.Name, User: db.User, Secret: component + "-db",
		Verify: strings.HasPrefix(pg.SSLMode, "verify-")}
	if pg.CAFile != "" {
		v.CASecret = component + "-db-ca"
		if component == "harbor" {
			v.CASecret = HarborCABundleSecret
		}
	}
	return v
}

func newRedisView(spec *Spec, component string) *redisView {
	a, ok := spec.RedisFor(component)
	if !ok {
		return nil
	}
	r := spec.DataServices.Redis
	addr := r.Addr
	if addr == "" {
		addr = strings.Join(r.Sentinels, ",")
	}
	return &redisView{Addr: addr, MasterSet: r.MasterSet, User: a.User, Secret: component + "-redis"}
}

// dataSecrets are SECRETS.txt's lines for the data services.
func dataSecrets(spec *Spec, component string) []string {
	ns := spec.Components[component].Namespace
	var out []string
	if db, ok := spec.PostgresFor(component); ok {
		v := newPostgresView(spec, component)
		out = append(out, fmt.Sprintf("%-16s Secret %s/%s key password = %s (PostgreSQL role %s, database %s on %s:%s)",
			component, ns, v.Secret, passwordSource(Account{PasswordEnv: db.PasswordEnv, PasswordFile: db.PasswordFile}), db.User, db.Name, v.Host, v.Port))
		if v.CASecret != "" {
			out = append(out, fmt.Sprintf("%-16s Secret %s/%s key ca.crt = the PostgreSQL server's CA, file %s", component, ns, v.CASecret, spec.DataServices.Postgres.CAFile))
		}
	}
	if a, ok := spec.RedisFor(component); ok {
		key := "password"
		if component == "harbor" {
			key = "REDIS_PASSWORD" // harbor-helm: "If using existingSecret, the key must be REDIS_PASSWORD"
		}
		user := a.User
		if user == "" {
			user = "default"
		}
		out = append(out, fmt.Sprintf("%-16s Secret %s/%s key %s = %s (Redis user %s on %s)",
			component, ns, component+"-redis", key, passwordSource(Account{PasswordEnv: a.PasswordEnv, PasswordFile: a.PasswordFile}), user, newRedisView(spec, component).Addr))
	}
	return out
}
