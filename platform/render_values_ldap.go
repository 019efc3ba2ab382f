package platform

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// HarborUserSettings is Harbor's CONFIG_OVERWRITE_JSON for LDAP login
// (chart value core.configureUserSettings). The bind password is not part
// of it: render never writes passwords.
func (v valuesView) HarborUserSettings() map[string]any {
	l := v.LDAP
	return map[string]any{
		"auth_mode":                       "ldap_auth",
		"ldap_url":                        l.URL,
		"ldap_base_dn":                    l.UserBase,
		"ldap_filter":                     l.UserFilter,
		"ldap_uid":                        l.LoginAttribute,
		"ldap_scope":                      2,
		"ldap_search_dn":                  l.BindDN,
		"ldap_verify_cert":                true,
		"ldap_group_base_dn":              l.GroupBase,
		"ldap_group_search_filter":        l.GroupFilter,
		"ldap_group_attribute_name":       "cn",
		"ldap_group_search_scope":         2,
		"ldap_group_admin_dn":             l.AdminGroupDN,
		"ldap_group_membership_attribute": "memberOf",
	}
}

// KeycloakRealm is the realm keycloak-config-cli imports: UCS as a
// read-only LDAP user federation with a group mapper.
func (v valuesView) KeycloakRealm() map[string]any {
	l := v.LDAP
	list := func(s string) []string { return []string{s} }
	membershipType, memberUserAttr := "DN", l.LoginAttribute
	if !l.MembershipAttributeIsDN {
		membershipType = "UID"
	}
	groups := map[string]any{
		"name":       "ucs-groups",
		"providerId": "group-ldap-mapper",
		"config": map[string]any{
			"groups.dn":                      list(l.GroupBase),
			"group.name.ldap.attribute":      list("cn"),
			"group.object.classes":           list(l.GroupClass),
			"membership.ldap.attribute":      list(l.GroupMembership),
			"membership.attribute.type":      list(membershipType),
			"membership.user.ldap.attribute": list(memberUserAttr),
			"mode":                           list("READ_ONLY"),
			"user.roles.retrieve.strategy":   list("LOAD_GROUPS_BY_MEMBER_ATTRIBUTE"),
			"preserve.group.inheritance":     list("false"),
		},
	}
	provider := map[string]any{
		"name":       "ucs",
		"providerId": "ldap",
		"subComponents": map[string]any{
			"org.keycloak.storage.ldap.mappers.LDAPStorageMapper": []any{groups},
		},
		"config": map[string]any{
			"vendor":                 list("other"),
			"connectionUrl":          list(l.URL),
			"startTls":               list(fmt.Sprint(l.StartTLS)),
			"useTruststoreSpi":       list("always"),
			"bindDn":                 list(l.BindDN),
			"bindCredential":         list("$(env:LDAP_BIND_PASSWORD)"),
			"authType":               list("simple"),
			"usersDn":                list(l.UserBase),
			"customUserSearchFilter": list(l.UserFilter),
			"usernameLDAPAttribute":  list(l.LoginAttribute),
			"rdnLDAPAttribute":       list(l.LoginAttribute),
			"uuidLDAPAttribute":      list("entryUUID"),
			"userObjectClasses":      list("inetOrgPerson, organizationalPerson"),
			"searchScope":            list("2"),
			"editMode":               list("READ_ONLY"),
			"importEnabled":          list("true"),
			"syncRegistrations":      list("false"),
			"pagination":             list("true"),
		},
	}
	return map[string]any{
		"realm":   v.Spec.Name,
		"enabled": true,
		"components": map[string]any{
			"org.keycloak.storage.UserStorageProvider": []any{provider},
		},
	}
}

// JenkinsSecurityRealm is the JCasC securityRealm block (a YAML string in
// the chart's values). ${<secret>-password} is how the chart exposes
// additionalExistingSecrets to JCasC.
func (v valuesView) JenkinsSecurityRealm() (string, error) {
	l := v.LDAP
	realm := map[string]any{"ldap": map[string]any{
		"configurations": []any{map[string]any{
			"server":                  l.URL,
			"rootDN":                  l.BaseDN,
			"userSearchBase":          l.UserBaseRel,
			"userSearch":              "(&" + l.UserFilter + "(" + l.LoginAttribute + "={0}))",
			"groupSearchBase":         l.GroupBaseRel,
			"groupSearchFilter":       "(&(cn={0})" + l.GroupFilter + ")",
			"groupMembershipStrategy": map[string]any{"fromGroupSearch": map[string]any{"filter": l.MemberOfGroupFilter}},
			"managerDN":               l.BindDN,
			"managerPasswordSecret":   "${" + l.BindSecret + "-password}",
		}},
		"cache":           map[string]any{"size": 100, "ttl": 10},
		"userIdStrategy":  "caseInsensitive",
		"groupIdStrategy": "caseInsensitive",
	}}
	b, err := yaml.Marshal(realm)
	return string(b), err
}

// JenkinsAuthorization gives the admin group everything and logged-in
// users read access.
func (v valuesView) JenkinsAuthorization() (string, error) {
	b, err := yaml.Marshal(map[string]any{"globalMatrix": map[string]any{"entries": []any{
		map[string]any{"group": map[string]any{"name": v.LDAP.AdminGroup, "permissions": []string{"Overall/Administer"}}},
		map[string]any{"group": map[string]any{"name": "authenticated", "permissions": []string{"Overall/Read"}}},
	}}})
	return string(b), err
}
