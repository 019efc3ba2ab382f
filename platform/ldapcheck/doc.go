// Package ldapcheck is `tsys-ci platform ldap`: it checks the company's
// directory against what platform.yaml expects of it before anything is
// installed: the bind accounts and their passwords, the user and group bases,
// the groups each component maps to admins, a test user's login, and the TLS
// (LDAPS or StartTLS) with the configured CA. What is missing comes back as
// Findings with an LDIF that would add it.
package ldapcheck
