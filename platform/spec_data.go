package platform

import (
	"cmp"
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
	// TLS to Redis (rediss://; Harbor's redis.external.tlsOptions.enable).
	TLS bool `json:"tls,omitempty"`
	// CAFile is the CA of Redis's certificate, when TLS is on and a
	// company CA signed it; it goes into a Secret, see SECRETS.txt.
	CAFile string `json:"caFile,omitempty"`
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

// Secrets holding the data services' passwords and CAs, in each
// component's namespace. Harbor's names and keys are those its chart 1.18
// reads (goharbor/harbor-helm values.yaml and templates).
const (
	// HarborDBSecret: key password (database.external.existingSecret).
	HarborDBSecret = "harbor-db"
	// HarborRedisSecret: key REDIS_PASSWORD, and REDIS_USERNAME for an ACL
	// user (redis.external.existingSecret; with it the chart takes the
	// user from the Secret, not from redis.external.username).
	HarborRedisSecret = "harbor-redis"
	// HarborCABundleSecret: key ca.crt (caBundleSecretName), the CAs of
	// PostgreSQL and Redis in one PEM bundle.
	HarborCABundleSecret = "harbor-ca-bundle"
	// KeycloakDBSecret: key password (externalDatabase.existingSecret).
	KeycloakDBSecret = "keycloak-db"
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
		switch {
		case pg.CAFile != "" && !filepath.IsAbs(pg.CAFile):
			v.add(p+".caFile", "%q is not an absolute path", pg.CAFile)
		case pg.CAFile == "" && strings.HasPrefix(pg.SSLMode, "verify-"):
			v.add(p+".caFile", "missing; sslMode %s checks the server's certificate against this CA (the PEM file of the CA that signed it)", pg.SSLMode)
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
		switch {
		case r.CAFile != "" && !r.TLS:
			v.add(p+".caFile", "set without tls: true; a CA is only used over TLS")
		case r.CAFile != "" && !filepath.IsAbs(r.CAFile):
			v.add(p+".caFile", "%q is not an absolute path", r.CAFile)
		}
	}
	// Stateful components must use the data services (no internal
	// single-instance database or Redis).
	for _, name := range postgresUsers {
		if _, ok := s.PostgresFor(name); s.Enabled(name) && !ok {
			v.add("dataServices.postgres.databases."+name, "missing; %s keeps its state in PostgreSQL and would otherwise start a single-instance database of its own. Add %s: {name: %s, user: %s, passwordEnv: VARIABLE} under dataServices.postgres.databases%s (ask the data team for the database and role: docs/platform.md, \"What to ask the data team for\")",
				name, name, name, name, newSection(s.DataServices.Postgres == nil, "dataServices.postgres with host and sslMode"))
		}
	}
	for _, name := range redisUsers {
		if _, ok := s.RedisFor(name); s.Enabled(name) && !ok {
			v.add("dataServices.redis.accounts."+name, "missing; %s needs Redis and would otherwise start a single-instance Redis of its own. Add %s: {user: %s, passwordEnv: VARIABLE} under dataServices.redis.accounts%s (ask the data team for the user: docs/platform.md, \"What to ask the data team for\")",
				name, name, name, newSection(s.DataServices.Redis == nil, "dataServices.redis with addr, or sentinels and masterSet"))
		}
	}
}

// newSection says that a missing section has to be added too.
func newSection(missing bool, what string) string {
	if !missing {
		return ""
	}
	return ", in a new " + what
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
	// Harbor's is its CA bundle, shared with Redis's CA.
	CASecret string
}

// redisView is a component's Redis account as its values template needs it.
type redisView struct {
	// Addr is host:port, or the Sentinels' host:port joined by commas.
	Addr, MasterSet, User string
	TLS                   bool
	// Secret holds the password (and the user) under the keys the
	// component's chart reads.
	Secret string
	// CASecret holds Redis's CA under key ca.crt ("" without caFile).
	CASecret string
}

func newPostgresView(spec *Spec, component string) *postgresView {
	db, ok := spec.PostgresFor(component)
	if !ok {
		return nil
	}
	pg := spec.DataServices.Postgres
	v := &postgresView{Host: pg.Host, Port: strconv.Itoa(pg.Port), PortNumber: pg.Port, SSLMode: pg.SSLMode,
		Database: db.Name, User: db.User, Secret: component + "-db"}
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
	v := &redisView{Addr: addr, MasterSet: r.MasterSet, User: a.User, TLS: r.TLS, Secret: component + "-redis"}
	if r.CAFile != "" {
		v.CASecret = component + "-redis-ca"
		if component == "harbor" {
			v.CASecret = HarborCABundleSecret
		}
	}
	return v
}

// harborCAFiles are the CA files that go into Harbor's CA bundle (its
// chart takes one Secret, caBundleSecretName, for every server it calls).
func harborCAFiles(spec *Spec) []string {
	var files []string
	if _, ok := spec.PostgresFor("harbor"); ok && spec.DataServices.Postgres.CAFile != "" {
		files = append(files, spec.DataServices.Postgres.CAFile)
	}
	if _, ok := spec.RedisFor("harbor"); ok && spec.DataServices.Redis.CAFile != "" && !slices.Contains(files, spec.DataServices.Redis.CAFile) {
		files = append(files, spec.DataServices.Redis.CAFile)
	}
	return files
}

// dataSecrets are SECRETS.txt's lines for the data services.
func dataSecrets(spec *Spec, component string) []string {
	ns := spec.Components[component].Namespace
	var out []string
	line := func(format string, a ...any) {
		out = append(out, fmt.Sprintf("%-16s ", component)+fmt.Sprintf(format, a...))
	}
	if db, ok := spec.PostgresFor(component); ok {
		v := newPostgresView(spec, component)
		line("Secret %s/%s key password = %s (PostgreSQL role %s, database %s on %s:%s)",
			ns, v.Secret, passwordSource(Account{PasswordEnv: db.PasswordEnv, PasswordFile: db.PasswordFile}), db.User, db.Name, v.Host, v.Port)
		if v.CASecret != "" && component != "harbor" {
			line("Secret %s/%s key ca.crt = the PostgreSQL server's CA, file %s", ns, v.CASecret, spec.DataServices.Postgres.CAFile)
		}
	}
	if a, ok := spec.RedisFor(component); ok {
		v := newRedisView(spec, component)
		src := passwordSource(Account{PasswordEnv: a.PasswordEnv, PasswordFile: a.PasswordFile})
		switch {
		case component == "harbor" && a.User != "":
			// harbor-helm 1.18: "If using existingSecret, the key must be
			// REDIS_PASSWORD, if ACL mode enabled, also includes ... REDIS_USERNAME".
			line("Secret %s/%s keys REDIS_USERNAME = %s, REDIS_PASSWORD = %s (Redis ACL user on %s)", ns, v.Secret, a.User, src, v.Addr)
		case component == "harbor":
			line("Secret %s/%s key REDIS_PASSWORD = %s (Redis default user on %s)", ns, v.Secret, src, v.Addr)
		default:
			line("Secret %s/%s key password = %s (Redis user %s on %s)", ns, v.Secret, src, cmp.Or(a.User, "default"), v.Addr)
		}
		if v.CASecret != "" && component != "harbor" {
			line("Secret %s/%s key ca.crt = Redis's CA, file %s", ns, v.CASecret, spec.DataServices.Redis.CAFile)
		}
	}
	if files := harborCAFiles(spec); component == "harbor" && len(files) > 0 {
		line("Secret %s/%s key ca.crt = the data services' CAs, file %s (one PEM bundle; the chart adds it to the trust store of core, jobservice, registry and trivy)",
			ns, HarborCABundleSecret, strings.Join(files, " + "))
	}
	return out
}

// What each component needs of the data services beyond its database or
// account, for the request to the data team.
var dataNeeds = map[string]string{
	"harbor/postgres":   "Harbor's core creates and migrates its schema at start, so the role owns the database",
	"keycloak/postgres": "Keycloak creates and migrates its schema at start, so the role owns the database",
	"harbor/redis": "Harbor uses databases 0 (core), 1 (jobservice), 2 (registry) and 5 (trivy), so not Redis Cluster " +
		"(Cluster has database 0 only); Redis ACLs cannot limit databases, so no other service may use those on the same master",
}

// dataTeamRequest is what to ask the data team for, read from
// dataServices: SECRETS.txt's last section, and the list
// docs/platform.md describes.
func dataTeamRequest(spec *Spec) []string {
	var out []string
	if pg := spec.DataServices.Postgres; pg != nil && len(pg.Databases) > 0 {
		tls := "without TLS (sslMode disable)"
		if pg.SSLMode != "disable" {
			tls = "TLS " + pg.SSLMode
			if pg.CAFile != "" {
				tls += fmt.Sprintf(", server certificate for %s signed by the CA in %s", pg.Host, pg.CAFile)
			}
		}
		out = append(out, fmt.Sprintf("PostgreSQL at %s:%d, %s:", pg.Host, pg.Port, tls))
		for _, name := range slices.Sorted(maps.Keys(pg.Databases)) {
			db := pg.Databases[name]
			out = append(out, fmt.Sprintf("  %-9s database %s owned by login role %s, the password goes into %s; %s",
				name, db.Name, db.User, passwordSource(Account{PasswordEnv: db.PasswordEnv, PasswordFile: db.PasswordFile}), dataNeeds[name+"/postgres"]))
		}
	}
	if r := spec.DataServices.Redis; r != nil && len(r.Accounts) > 0 {
		where := "Redis at " + r.Addr
		if r.Addr == "" {
			where = fmt.Sprintf("Redis Sentinels %s watching master set %s", strings.Join(r.Sentinels, ", "), r.MasterSet)
		}
		tls := "without TLS"
		if r.TLS {
			tls = "TLS"
			if r.CAFile != "" {
				tls += ", certificate signed by the CA in " + r.CAFile
			}
		}
		out = append(out, fmt.Sprintf("%s, %s:", where, tls))
		for _, name := range slices.Sorted(maps.Keys(r.Accounts)) {
			a := r.Accounts[name]
			who := "the default user"
			if a.User != "" {
				who = "ACL user " + a.User
			}
			out = append(out, fmt.Sprintf("  %-9s %s, the password goes into %s; %s",
				name, who, passwordSource(Account{PasswordEnv: a.PasswordEnv, PasswordFile: a.PasswordFile}), dataNeeds[name+"/redis"]))
		}
	}
	return out
}
