package platform

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 27: the components that keep state use the company's data
// services, never a single-instance database or Redis of their own.

func renderedValues(t *testing.T, spec *Spec, component string) map[string]any {
	t.Helper()
	v, err := ComponentValues(spec, templatesFS(t), component)
	if err != nil {
		t.Fatalf("values of %s: %v", component, err)
	}
	return v
}

// at walks a values tree by dotted path.
func at(t *testing.T, v map[string]any, path string) any {
	t.Helper()
	var cur any = v
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s: %v is not a mapping at %q", path, cur, k)
		}
		cur = mm[k]
	}
	return cur
}

// TestExampleHarborOnExternalData: the example's Harbor starts no
// PostgreSQL or Redis of its own, with the settings Harbor's chart 1.18
// reads (goharbor/harbor-helm values.yaml, v1.18.4).
func TestExampleHarborOnExternalData(t *testing.T) {
	v := renderedValues(t, loadExample(t), "harbor")
	for path, want := range map[string]any{
		"database.type":                          "external",
		"database.external.host":                 "pg.tsys.lan",
		"database.external.port":                 "5432",
		"database.external.username":             "harbor",
		"database.external.coreDatabase":         "harbor",
		"database.external.existingSecret":       HarborDBSecret,
		"database.external.sslmode":              "verify-full",
		"redis.type":                             "external",
		"redis.external.addr":                    "redis1.tsys.lan:26379,redis2.tsys.lan:26379,redis3.tsys.lan:26379",
		"redis.external.sentinelMasterSet":       "platform",
		"redis.external.coreDatabaseIndex":       "0",
		"redis.external.jobserviceDatabaseIndex": "1",
		"redis.external.registryDatabaseIndex":   "2",
		"redis.external.trivyAdapterIndex":       "5",
		"redis.external.existingSecret":          HarborRedisSecret,
		"redis.external.tlsOptions.enable":       false,
		"caBundleSecretName":                     HarborCABundleSecret,
		"trivy.replicas":                         float64(2),
	} {
		if got := at(t, v, path); got != want {
			t.Errorf("harbor %s = %#v, want %#v", path, got, want)
		}
	}
	for _, path := range []string{"database.external.password", "redis.external.password"} {
		if got := at(t, v, path); got != nil {
			t.Errorf("harbor %s is rendered (%v); passwords come from the existing Secrets", path, got)
		}
	}
}

func TestExampleKeycloakOnExternalDatabase(t *testing.T) {
	v := renderedValues(t, loadExample(t), "keycloak")
	for path, want := range map[string]any{
		"postgresql.enabled":                         false,
		"externalDatabase.host":                      "pg.tsys.lan",
		"externalDatabase.port":                      float64(5432),
		"externalDatabase.user":                      "keycloak",
		"externalDatabase.database":                  "keycloak",
		"externalDatabase.existingSecret":            KeycloakDBSecret,
		"externalDatabase.existingSecretPasswordKey": "password",
	} {
		if got := at(t, v, path); got != want {
			t.Errorf("keycloak %s = %#v, want %#v", path, got, want)
		}
	}
	env, _ := at(t, v, "extraEnvVars").([]any)
	if len(env) != 1 || env[0].(map[string]any)["value"] != "sslmode=verify-full&sslrootcert=/opt/tsys-ci/db-ca/ca.crt" {
		t.Errorf("keycloak's JDBC parameters: %v", env)
	}
}

// TestDataServicesVariants: plain Redis with TLS and its own CA, the
// default Redis user, PostgreSQL without TLS.
func TestDataServicesVariants(t *testing.T) {
	spec, err := ParseSpec(mutate(t, func(d map[string]any) {
		pg := m(m(d, "dataServices"), "postgres")
		pg["sslMode"] = "require"
		delete(pg, "caFile")
		m(d, "dataServices")["redis"] = map[string]any{
			"addr": "redis.tsys.lan:6380", "tls": true, "caFile": "/etc/tsys-ci/redis-ca.pem",
			"accounts": map[string]any{"harbor": map[string]any{"passwordFile": "/run/secrets/redis-harbor"}},
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	v := renderedValues(t, spec, "harbor")
	for path, want := range map[string]any{
		"database.external.sslmode":        "require",
		"redis.external.addr":              "redis.tsys.lan:6380",
		"redis.external.sentinelMasterSet": "",
		"redis.external.tlsOptions.enable": true,
		"redis.external.username":          "",
		"caBundleSecretName":               HarborCABundleSecret,
	} {
		if got := at(t, v, path); got != want {
			t.Errorf("harbor %s = %#v, want %#v", path, got, want)
		}
	}
	k := renderedValues(t, spec, "keycloak")
	if got := at(t, k, "extraEnvVars").([]any)[0].(map[string]any)["value"]; got != "sslmode=require" {
		t.Errorf("keycloak's JDBC parameters %v, want sslmode=require", got)
	}
	if got := at(t, k, "extraVolumes"); got != nil {
		t.Errorf("keycloak mounts a CA though postgres names none: %v", got)
	}
	secrets := string(renderSecrets(spec))
	for _, want := range []string{
		"Secret harbor/harbor-redis key REDIS_PASSWORD = file /run/secrets/redis-harbor (Redis default user on redis.tsys.lan:6380)",
		"Secret harbor/harbor-ca-bundle key ca.crt = the data services' CAs, file /etc/tsys-ci/redis-ca.pem (",
		"Redis at redis.tsys.lan:6380, TLS, certificate signed by the CA in /etc/tsys-ci/redis-ca.pem:",
		"PostgreSQL at pg.tsys.lan:5432, TLS require:",
	} {
		if !strings.Contains(secrets, want) {
			t.Errorf("SECRETS.txt lacks %q:\n%s", want, secrets)
		}
	}
	if strings.Contains(secrets, "keycloak-db-ca") {
		t.Errorf("SECRETS.txt asks for a CA postgres does not name:\n%s", secrets)
	}
}

// TestWithoutStatefulComponentsNoDataServices: a platform without Harbor
// and Keycloak needs no dataServices.
func TestWithoutStatefulComponentsNoDataServices(t *testing.T) {
	spec, err := ParseSpec(mutate(t, func(d map[string]any) {
		delete(d, "dataServices")
		for _, c := range []string{"harbor", "keycloak"} {
			m(m(d, "components"), c)["disabled"] = true
		}
		delete(d, "paas") // serve's registry defaults to Harbor
	}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(renderSecrets(spec)), "data team") {
		t.Error("SECRETS.txt asks the data team for something no component uses")
	}
}

func TestDataServicesValidationNamesTheField(t *testing.T) {
	ds := func(d map[string]any) map[string]any { return m(d, "dataServices") }
	pg := func(d map[string]any) map[string]any { return m(ds(d), "postgres") }
	rd := func(d map[string]any) map[string]any { return m(ds(d), "redis") }
	dbs := func(d map[string]any) map[string]any { return m(pg(d), "databases") }
	cases := []struct {
		name     string
		edit     func(doc map[string]any)
		path     string
		contains string
	}{
		{"no data services", func(d map[string]any) { delete(d, "dataServices") }, "dataServices.postgres.databases.harbor",
			"missing; harbor keeps its state in PostgreSQL and would otherwise start a single-instance database of its own"},
		{"no keycloak database", func(d map[string]any) { delete(dbs(d), "keycloak") }, "dataServices.postgres.databases.keycloak", "missing"},
		{"no harbor redis", func(d map[string]any) { delete(m(rd(d), "accounts"), "harbor") }, "dataServices.redis.accounts.harbor",
			"would otherwise start a single-instance Redis"},
		{"host with scheme", func(d map[string]any) { pg(d)["host"] = "postgres://pg.tsys.lan" }, "dataServices.postgres.host", "neither an IP address nor a DNS name"},
		{"no host", func(d map[string]any) { delete(pg(d), "host") }, "dataServices.postgres.host", "missing"},
		{"port", func(d map[string]any) { pg(d)["port"] = 70000 }, "dataServices.postgres.port", "not a TCP port"},
		{"ssl mode", func(d map[string]any) { pg(d)["sslMode"] = "prefer" }, "dataServices.postgres.sslMode", "not one of disable, require, verify-ca, verify-full"},
		{"verify without ca", func(d map[string]any) { delete(pg(d), "caFile") }, "dataServices.postgres.caFile", "sslMode verify-full checks the server's certificate"},
		{"relative ca", func(d map[string]any) { pg(d)["caFile"] = "pg-ca.pem" }, "dataServices.postgres.caFile", "absolute"},
		{"unknown database user", func(d map[string]any) {
			dbs(d)["jenkins"] = map[string]any{"name": "jenkins", "user": "jenkins", "passwordEnv": "X"}
		}, "dataServices.postgres.databases.jenkins", "no component by that name uses PostgreSQL; known: harbor, keycloak"},
		{"database name", func(d map[string]any) { m(dbs(d), "harbor")["name"] = "Harbor-DB" }, "dataServices.postgres.databases.harbor.name", "not a PostgreSQL database name"},
		{"role name", func(d map[string]any) { m(dbs(d), "harbor")["user"] = "" }, "dataServices.postgres.databases.harbor.user", "not a PostgreSQL role name"},
		{"no password source", func(d map[string]any) { delete(m(dbs(d), "harbor"), "passwordEnv") }, "dataServices.postgres.databases.harbor", "no password source"},
		{"two password sources", func(d map[string]any) { m(dbs(d), "keycloak")["passwordFile"] = "/run/pw" }, "dataServices.postgres.databases.keycloak", "both"},
		{"bad env name", func(d map[string]any) { m(dbs(d), "keycloak")["passwordEnv"] = "1PW" }, "dataServices.postgres.databases.keycloak.passwordEnv", "not an environment variable"},
		{"redis neither", func(d map[string]any) { delete(rd(d), "sentinels"); delete(rd(d), "masterSet") }, "dataServices.redis", "give addr"},
		{"redis both", func(d map[string]any) { rd(d)["addr"] = "redis.tsys.lan:6379" }, "dataServices.redis", "both addr and sentinels"},
		{"redis addr without port", func(d map[string]any) {
			delete(rd(d), "sentinels")
			delete(rd(d), "masterSet")
			rd(d)["addr"] = "redis.tsys.lan"
		}, "dataServices.redis.addr", "not host:port"},
		{"sentinel without port", func(d map[string]any) { rd(d)["sentinels"] = []any{"redis1.tsys.lan"} }, "dataServices.redis.sentinels[0]", "not host:port"},
		{"sentinels without master set", func(d map[string]any) { delete(rd(d), "masterSet") }, "dataServices.redis.masterSet", "name of the master set"},
		{"redis ca without tls", func(d map[string]any) { rd(d)["caFile"] = "/etc/tsys-ci/redis-ca.pem" }, "dataServices.redis.caFile", "without tls: true"},
		{"unknown redis user", func(d map[string]any) {
			m(rd(d), "accounts")["keycloak"] = map[string]any{"passwordEnv": "X"}
		}, "dataServices.redis.accounts.keycloak", "no component by that name uses Redis; known: harbor"},
		{"redis user", func(d map[string]any) { m(m(rd(d), "accounts"), "harbor")["user"] = "har bor" }, "dataServices.redis.accounts.harbor.user", "not a Redis user name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec(mutate(t, tc.edit))
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("got %v, want a validation error at %s", err, tc.path)
			}
			for _, p := range verr.Problems {
				if p.Path == tc.path && strings.Contains(p.Message, tc.contains) {
					return
				}
			}
			t.Fatalf("no problem at %s containing %q in:\n%v", tc.path, tc.contains, err)
		})
	}
}

func TestDataServicesRefuseInlinePasswords(t *testing.T) {
	_, err := ParseSpec(mutate(t, func(d map[string]any) {
		m(m(m(m(d, "dataServices"), "postgres"), "databases"), "harbor")["password"] = "hunter2"
	}))
	if err == nil || !strings.Contains(err.Error(), "passwords never go into platform.yaml") {
		t.Fatalf("got %v, want the inline password refused", err)
	}
}

// The lab's platform.yaml (test/e2e) must stay valid: the e2e test
// renders and applies it.
func TestLabPlatformLoads(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "test", "e2e", "testdata", "platform", "platform.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSpec(raw); err != nil {
		t.Fatalf("the lab's platform.yaml does not validate: %v", err)
	}
}
