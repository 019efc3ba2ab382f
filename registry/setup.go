package registry

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/retention"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/robot"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/systeminfo"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/webhook"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
)

// SetupOptions is what `tsys-ci registry setup` makes sure of in Harbor.
type SetupOptions struct {
	Project string // the project images are pushed to
	Public  bool   // whether anyone may pull (default: private)
	Robot   string // robot account name; Harbor shows it as robot$PROJECT+NAME
	// WebhookURL is where Harbor posts PUSH_ARTIFACT (tsys-ci serve); empty
	// means no webhook policy.
	WebhookURL string
	// WebhookAuthHeader is the Authorization header this project's webhook
	// was given by an earlier run (its saved secret), or "". Setup keeps
	// the policy's header only when it is this one; otherwise it makes a
	// new random one for this project alone (SetupResult.WebhookAuthHeader),
	// so no two projects share a secret and a project admin, who can read
	// the header back from Harbor, can send only their own project's events.
	WebhookAuthHeader string
	// KeepLatest is how many most recently pushed artifacts per repository
	// the retention rule keeps; 0 means no retention rule.
	KeepLatest int
	// RetentionCron is when retention runs (Harbor's six-field cron).
	RetentionCron string
	// DryRun reads Harbor and reports what would change, changing nothing.
	DryRun bool
}

// WebhookPolicyName is the name of the policy tsys-ci owns in a project.
const WebhookPolicyName = "tsys-ci"

// SetupResult says what Setup changed; RobotSecret is set only when the
// robot was created (Harbor shows a secret once).
type SetupResult struct {
	Changes []string `json:"changes"`
	// Warnings are problems setup found but cannot fix, e.g. a Harbor
	// version whose webhooks tsys-ci serve cannot deploy from.
	Warnings    []string `json:"warnings,omitempty"`
	RobotName   string   `json:"robot"`
	RobotSecret string   `json:"-"`
	// WebhookAuthHeader is set when setup gave the project's webhook a new
	// secret: save it (tsys-ci serve needs it, Harbor does not show it to
	// anyone but project admins).
	WebhookAuthHeader string `json:"-"`
}

// NewWebhookAuthHeader makes a webhook secret: "Bearer " and 43 characters
// of 32 random bytes.
func NewWebhookAuthHeader() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a webhook secret: %w", err)
	}
	return "Bearer " + base64.RawURLEncoding.EncodeToString(b), nil
}

// Setup makes Harbor match o: the project, a project robot with push and
// pull rights to that project only, the tsys-ci webhook policy and a tag
// retention rule. Each is created when missing and updated when it differs;
// a second run with the same options changes nothing.
func (h *Harbor) Setup(ctx context.Context, o SetupOptions) (*SetupResult, error) {
	if !projectNameRE.MatchString(o.Project) {
		return nil, &UsageError{fmt.Sprintf("project %q: Harbor project names are lower-case letters and digits, joined by '.', '_' or '-'", o.Project)}
	}
	if o.Robot == "" {
		o.Robot = "ci"
	}
	if !projectNameRE.MatchString(o.Robot) {
		return nil, &UsageError{fmt.Sprintf("robot name %q: lower-case letters and digits, joined by '.', '_' or '-'", o.Robot)}
	}
	if o.WebhookURL != "" {
		if u, err := url.Parse(o.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, &UsageError{fmt.Sprintf("webhook URL %q must be an http:// or https:// URL (tsys-ci serve's address)", o.WebhookURL)}
		}
	}
	if o.KeepLatest < 0 {
		return nil, &UsageError{fmt.Sprintf("keep %d: must be 0 (no retention rule) or more", o.KeepLatest)}
	}
	res := &SetupResult{Changes: []string{}}
	if o.DryRun {
		exists, err := h.ProjectExists(ctx, o.Project)
		if err != nil {
			return nil, err
		}
		if !exists {
			res.Changes = append(res.Changes, "would create project "+o.Project,
				"would create robot robot$"+o.Project+"+"+o.Robot+" (push and pull on "+o.Project+" only)")
			if o.WebhookURL != "" {
				res.Changes = append(res.Changes, "would create webhook policy "+WebhookPolicyName+": PUSH_ARTIFACT -> "+o.WebhookURL)
			}
			if o.KeepLatest > 0 {
				res.Changes = append(res.Changes, "would create tag retention: "+retentionText(o))
			}
			return res, nil
		}
	}
	made, err := h.EnsureProject(ctx, o.Project, o.Public)
	if err != nil {
		return nil, err
	}
	if made {
		res.Changes = append(res.Changes, "created project "+o.Project)
	}
	p, err := h.project(ctx, o.Project)
	if err != nil {
		return nil, err
	}
	if p.Metadata != nil && p.Metadata.Public != strconv.FormatBool(o.Public) && !made {
		// Visibility is the admin's decision once the project exists: say so, do not change it.
		res.Changes = append(res.Changes, fmt.Sprintf("left project %s's visibility as it is (public=%s)", o.Project, p.Metadata.Public))
	}
	if err := h.ensureRobot(ctx, o, int64(p.ProjectID), res); err != nil {
		return nil, err
	}
	if o.WebhookURL != "" {
		if err := h.ensureWebhook(ctx, o, res); err != nil {
			return nil, err
		}
		if u, _ := url.Parse(o.WebhookURL); u.Scheme == "http" {
			res.Warnings = append(res.Warnings, "webhook URL "+o.WebhookURL+" is http://: the project's webhook secret crosses the network in clear; tsys-ci serve listens with TLS (serve.yaml tls), give its https:// address")
		}
		if w := h.webhookVersionWarning(ctx); w != "" {
			res.Warnings = append(res.Warnings, w)
		}
	}
	if o.KeepLatest > 0 {
		if err := h.ensureRetention(ctx, o, p, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

var projectNameRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

var harborVersionRE = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)`)

// webhookVersionWarning says why tsys-ci serve will not deploy from this
// Harbor's webhooks, or "". Harbor v2.11.1 to v2.12.0 send PUSH_ARTIFACT
// only for the first manifest PUT of a digest (goharbor/harbor#20828,
// reverted in v2.12.1; seen on a real v2.12.0). tsys-ci push pushes by
// digest, signs, then tags, so the tag's push, the one serve's policies
// match, sends nothing there.
func (h *Harbor) webhookVersionWarning(ctx context.Context) string {
	info, err := h.api.Systeminfo.GetSystemInfo(ctx, &systeminfo.GetSystemInfoParams{})
	if err != nil || info.Payload == nil || info.Payload.HarborVersion == nil {
		return fmt.Sprintf("could not read Harbor's version (%v); Harbor v2.11.1 to v2.12.0 send no webhook when tsys-ci push tags an image, so tsys-ci serve would deploy nothing", err)
	}
	v := *info.Payload.HarborVersion
	m := harborVersionRE.FindStringSubmatch(v)
	if m == nil {
		return ""
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	patch, _ := strconv.Atoi(m[3])
	n := major*1_000_000 + minor*1_000 + patch
	if n < 2_011_001 || n > 2_012_000 {
		return ""
	}
	return fmt.Sprintf("Harbor %s sends PUSH_ARTIFACT only for the first push of a digest, not when tsys-ci push tags it afterwards (Harbor v2.11.1 to v2.12.0, goharbor/harbor#20828): tsys-ci serve will see no tagged push and deploy nothing; upgrade Harbor to v2.12.1 or later", v)
}

// robotPermissions: push and pull on the project's repositories (pushing
// needs both), and listing and reading its artifacts (tsys-ci push reads
// the pushed artifact to see its signature: Harbor v2.12 answers 403 to
// GET .../artifacts/{ref} without artifact:read); nothing else, and nothing
// in any other project.
func robotPermissions(projectName string) []*models.RobotPermission {
	return []*models.RobotPermission{{
		Kind: "project", Namespace: projectName,
		Access: []*models.Access{
			{Resource: "repository", Action: "pull"},
			{Resource: "repository", Action: "push"},
			{Resource: "artifact", Action: "list"},
			{Resource: "artifact", Action: "read"},
		},
	}}
}

// permissionSet flattens permissions for comparison: kind/ns/resource:action.
func permissionSet(perms []*models.RobotPermission) []string {
	var out []string
	for _, p := range perms {
		for _, a := range p.Access {
			if a.Effect == "deny" {
				continue
			}
			out = append(out, p.Kind+"/"+p.Namespace+"/"+a.Resource+":"+a.Action)
		}
	}
	sort.Strings(out)
	return out
}

func (h *Harbor) ensureRobot(ctx context.Context, o SetupOptions, projectID int64, res *SetupResult) error {
	full := "robot$" + o.Project + "+" + o.Robot
	res.RobotName = full
	q := "Level=project,ProjectID=" + strconv.FormatInt(projectID, 10)
	var existing *models.Robot
	for page := int64(1); existing == nil; page++ {
		size := int64(100)
		list, err := h.api.Robot.ListRobot(ctx, &robot.ListRobotParams{Q: &q, Page: &page, PageSize: &size})
		if err != nil {
			return h.fail("listing the robots of project "+o.Project, err)
		}
		for _, r := range list.Payload {
			if r.Name == full {
				existing = r
			}
		}
		if int64(len(list.Payload)) < size {
			break
		}
	}
	want := robotPermissions(o.Project)
	if existing == nil && o.DryRun {
		res.Changes = append(res.Changes, "would create robot "+full+" (push and pull on "+o.Project+" only)")
		return nil
	}
	if existing == nil {
		created, err := h.api.Robot.CreateRobot(ctx, &robot.CreateRobotParams{Robot: &models.RobotCreate{
			Name: o.Robot, Level: "project", Duration: -1, Permissions: want,
			Description: "tsys-ci: pushes and signs images of project " + o.Project,
		}})
		if err != nil {
			return h.fail("creating robot "+full, err)
		}
		res.RobotSecret = created.Payload.Secret
		res.Changes = append(res.Changes, "created robot "+created.Payload.Name+" (push and pull on "+o.Project+" only)")
		return nil
	}
	if reflect.DeepEqual(permissionSet(existing.Permissions), permissionSet(want)) && !existing.Disable {
		return nil
	}
	if o.DryRun {
		res.Changes = append(res.Changes, fmt.Sprintf("would update robot %s: permissions %v -> %v, enabled", full, permissionSet(existing.Permissions), permissionSet(want)))
		return nil
	}
	upd := *existing
	upd.Permissions, upd.Disable, upd.Secret = want, false, ""
	if _, err := h.api.Robot.UpdateRobot(ctx, &robot.UpdateRobotParams{RobotID: existing.ID, Robot: &upd}); err != nil {
		return h.fail("updating robot "+full, err)
	}
	res.Changes = append(res.Changes, fmt.Sprintf("updated robot %s: permissions %v -> %v, enabled", full, permissionSet(existing.Permissions), permissionSet(want)))
	return nil
}

func (h *Harbor) ensureWebhook(ctx context.Context, o SetupOptions, res *SetupResult) error {
	isName := true
	size := int64(100)
	list, err := h.api.Webhook.ListWebhookPoliciesOfProject(ctx, &webhook.ListWebhookPoliciesOfProjectParams{
		ProjectNameOrID: o.Project, XIsResourceName: &isName, PageSize: &size,
	})
	if err != nil {
		return h.fail("listing the webhook policies of project "+o.Project, err)
	}
	want := &models.WebhookPolicy{
		Name: WebhookPolicyName, Description: "tsys-ci serve: deploys on push", Enabled: true,
		EventTypes: []string{"PUSH_ARTIFACT"},
		Targets:    []*models.WebhookTargetObject{{Type: "http", Address: o.WebhookURL, AuthHeader: o.WebhookAuthHeader}},
	}
	// A new secret whenever the saved one is not the policy's: never one
	// given from outside, which could be another project's.
	newSecret := func() error {
		h, err := NewWebhookAuthHeader()
		if err != nil {
			return err
		}
		want.Targets[0].AuthHeader, res.WebhookAuthHeader = h, h
		return nil
	}
	for _, p := range list.Payload {
		if p.Name != WebhookPolicyName {
			continue
		}
		if o.WebhookAuthHeader != "" && p.Enabled && reflect.DeepEqual(p.EventTypes, want.EventTypes) && reflect.DeepEqual(p.Targets, want.Targets) {
			return nil
		}
		if o.DryRun {
			res.Changes = append(res.Changes, "would update webhook policy "+WebhookPolicyName+" -> "+o.WebhookURL)
			return nil
		}
		if len(p.Targets) != 1 || p.Targets[0].AuthHeader != o.WebhookAuthHeader || o.WebhookAuthHeader == "" {
			if err := newSecret(); err != nil {
				return err
			}
		}
		if _, err := h.api.Webhook.UpdateWebhookPolicyOfProject(ctx, &webhook.UpdateWebhookPolicyOfProjectParams{
			ProjectNameOrID: o.Project, XIsResourceName: &isName, WebhookPolicyID: p.ID, Policy: want,
		}); err != nil {
			return h.fail("updating webhook policy "+WebhookPolicyName, err)
		}
		res.Changes = append(res.Changes, "updated webhook policy "+WebhookPolicyName+" -> "+o.WebhookURL)
		return nil
	}
	if o.DryRun {
		res.Changes = append(res.Changes, "would create webhook policy "+WebhookPolicyName+": PUSH_ARTIFACT -> "+o.WebhookURL)
		return nil
	}
	if err := newSecret(); err != nil {
		return err
	}
	if _, err := h.api.Webhook.CreateWebhookPolicyOfProject(ctx, &webhook.CreateWebhookPolicyOfProjectParams{
		ProjectNameOrID: o.Project, XIsResourceName: &isName, Policy: want,
	}); err != nil {
		return h.fail("creating webhook policy "+WebhookPolicyName, err)
	}
	res.Changes = append(res.Changes, "created webhook policy "+WebhookPolicyName+": PUSH_ARTIFACT -> "+o.WebhookURL)
	return nil
}

func retentionPolicy(o SetupOptions, projectID int64) *models.RetentionPolicy {
	return &models.RetentionPolicy{
		Algorithm: "or",
		Rules: []*models.RetentionRule{{
			Action: "retain", Template: "latestPushedK",
			Params:       map[string]interface{}{"latestPushedK": o.KeepLatest},
			TagSelectors: []*models.RetentionSelector{{Kind: "doublestar", Decoration: "matches", Pattern: "**"}},
			ScopeSelectors: map[string][]models.RetentionSelector{
				"repository": {{Kind: "doublestar", Decoration: "repoMatches", Pattern: "**"}},
			},
		}},
		Trigger: &models.RetentionRuleTrigger{Kind: "Schedule", Settings: map[string]interface{}{"cron": o.RetentionCron}},
		Scope:   &models.RetentionPolicyScope{Level: "project", Ref: projectID},
	}
}

// sameRetention compares what matters of two policies; numbers come back
// from JSON as float64, so values are compared as printed. Of the trigger's
// settings only the cron counts: Harbor adds next_scheduled_time to what it
// returns.
func sameRetention(a, b *models.RetentionPolicy) bool {
	norm := func(p *models.RetentionPolicy) string {
		var s []string
		s = append(s, p.Algorithm)
		for _, r := range p.Rules {
			s = append(s, r.Action, r.Template, fmt.Sprint(r.Params), fmt.Sprint(r.Disabled))
			for _, t := range r.TagSelectors {
				s = append(s, t.Kind, t.Decoration, t.Pattern)
			}
			for k, sel := range r.ScopeSelectors {
				for _, t := range sel {
					s = append(s, k, t.Kind, t.Decoration, t.Pattern)
				}
			}
		}
		if p.Trigger != nil {
			s = append(s, p.Trigger.Kind, retentionCron(p.Trigger.Settings))
		}
		return strings.Join(s, "|")
	}
	return norm(a) == norm(b)
}

// retentionCron is the cron of a retention trigger's settings, whichever
// map type they come as.
func retentionCron(settings interface{}) string {
	switch m := settings.(type) {
	case map[string]interface{}:
		if c, ok := m["cron"].(string); ok {
			return c
		}
		return ""
	case map[string]string:
		return m["cron"]
	}
	return fmt.Sprint(settings)
}

func (h *Harbor) ensureRetention(ctx context.Context, o SetupOptions, p *models.Project, res *SetupResult) error {
	want := retentionPolicy(o, int64(p.ProjectID))
	desc := retentionText(o)
	if p.Metadata != nil && p.Metadata.RetentionID != nil && *p.Metadata.RetentionID != "" {
		id, err := strconv.ParseInt(*p.Metadata.RetentionID, 10, 64)
		if err != nil {
			return fmt.Errorf("Harbor %s: project %s has retention_id %q, not a number", h.URL, o.Project, *p.Metadata.RetentionID)
		}
		got, err := h.api.Retention.GetRetention(ctx, &retention.GetRetentionParams{ID: id})
		if err != nil {
			return h.fail("reading retention policy "+strconv.FormatInt(id, 10), err)
		}
		if sameRetention(got.Payload, want) {
			return nil
		}
		if o.DryRun {
			res.Changes = append(res.Changes, "would update tag retention: "+desc)
			return nil
		}
		want.ID = id
		if _, err := h.api.Retention.UpdateRetention(ctx, &retention.UpdateRetentionParams{ID: id, Policy: want}); err != nil {
			return h.fail("updating retention policy "+strconv.FormatInt(id, 10), err)
		}
		res.Changes = append(res.Changes, "updated tag retention: "+desc)
		return nil
	}
	if o.DryRun {
		res.Changes = append(res.Changes, "would create tag retention: "+desc)
		return nil
	}
	if _, err := h.api.Retention.CreateRetention(ctx, &retention.CreateRetentionParams{Policy: want}); err != nil {
		return h.fail("creating the retention policy of project "+o.Project, err)
	}
	res.Changes = append(res.Changes, "created tag retention: "+desc)
	return nil
}

func retentionText(o SetupOptions) string {
	return fmt.Sprintf("keep the %d most recently pushed artifacts per repository (cron %q)", o.KeepLatest, o.RetentionCron)
}
