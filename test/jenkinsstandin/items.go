package jenkinsstandin

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"
)

type kind int

const (
	kindRoot kind = iota
	kindFolder
	kindPipeline
	kindMultibranch
)

// Root elements of config.xml the stand-in knows, and the _class each kind
// reports in api/json.
const (
	folderClass      = "com.cloudbees.hudson.plugins.folder.Folder"
	pipelineClass    = "org.jenkinsci.plugins.workflow.job.WorkflowJob"
	multibranchClass = "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"
	runClass         = "org.jenkinsci.plugins.workflow.job.WorkflowRun"
)

var kindOfRoot = map[string]kind{
	folderClass:       kindFolder,
	"flow-definition": kindPipeline, // XStream alias of WorkflowJob
	pipelineClass:     kindPipeline,
	multibranchClass:  kindMultibranch,
}

var classOfKind = map[kind]string{
	kindRoot:        "hudson.model.Hudson",
	kindFolder:      folderClass,
	kindPipeline:    pipelineClass,
	kindMultibranch: multibranchClass,
}

type item struct {
	name      string
	kind      kind
	parent    *item
	children  []*item
	config    []byte // as posted, without its XML declaration
	meta      configMeta
	builds    []*Build
	nextBuild int
}

// child finds a child by name; Jenkins item names are case-insensitive.
func (it *item) child(name string) *item {
	for _, c := range it.children {
		if strings.EqualFold(c.name, name) {
			return c
		}
	}
	return nil
}

func (it *item) fullName() string {
	if it.parent == nil || it.parent.kind == kindRoot {
		return it.name
	}
	return it.parent.fullName() + "/" + it.name
}

// path is the item's URL path relative to Jenkins' root: "job/a/job/b/".
func (it *item) path() string {
	if it.kind == kindRoot {
		return ""
	}
	return it.parent.path() + "job/" + it.name + "/"
}

func baseURL(r *http.Request) string { return "http://" + r.Host + "/" }

// serveItem dispatches the tokens below an item, the way Stapler walks
// getItem/getJob and then the item's web methods.
func (s *Server) serveItem(q *request, it *item, tokens []string) {
	for len(tokens) >= 2 && tokens[0] == "job" {
		if it.kind != kindRoot && it.kind != kindFolder && it.kind != kindMultibranch {
			notFound(q)
			return
		}
		c := it.child(tokens[1])
		if c == nil {
			notFound(q)
			return
		}
		it, tokens = c, tokens[2:]
	}
	if len(tokens) == 0 || tokens[0] == "configure" {
		if q.r.Method != http.MethodGet {
			methodNotAllowed(q)
			return
		}
		writeHTML(q, http.StatusOK, "Jenkins stand-in: "+it.fullName())
		return
	}
	if isAPIJSON(tokens) {
		writeJSON(q, s.itemJSON(q.r, it))
		return
	}
	if it.kind == kindPipeline {
		if n, err := strconv.Atoi(tokens[0]); err == nil {
			s.serveBuild(q, it, n, tokens[1:])
			return
		}
	}
	switch tokens[0] {
	case "createItem":
		if it.kind != kindRoot && it.kind != kindFolder {
			// Only Folder implements createItem; what a multibranch project
			// answers is unconfirmed, Stapler's 404 is the likely one.
			notFound(q)
			return
		}
		if postOnly(q) {
			s.createItem(q, it)
		}
	case "config.xml":
		if it.kind == kindRoot {
			notFound(q)
			return
		}
		s.serveConfig(q, it)
	case "doDelete":
		if it.kind == kindRoot {
			notFound(q)
			return
		}
		if postOnly(q) && s.allowed(q, PermDelete) {
			s.deleteItem(it)
			q.w.Header().Set("Location", baseURL(q.r)+it.parent.path())
			q.w.WriteHeader(http.StatusFound)
		}
	case "build", "buildWithParameters":
		if it.kind != kindPipeline {
			// Multibranch "build" (re-indexing) is not part of the stand-in.
			notFound(q)
			return
		}
		if postOnly(q) && s.allowed(q, PermBuild) {
			s.triggerBuild(q, it, tokens[0] == "buildWithParameters")
		}
	default:
		notFound(q)
	}
}

// createItem follows ItemGroupMixIn.createTopLevelItem.
func (s *Server) createItem(q *request, parent *item) {
	if !s.allowed(q, PermCreate) {
		return
	}
	name := strings.TrimSpace(q.r.URL.Query().Get("name"))
	mode := q.r.URL.Query().Get("mode")
	contentType := q.r.Header.Get("Content-Type")
	isXML := strings.HasPrefix(contentType, "application/xml") || strings.HasPrefix(contentType, "text/xml")
	if !isXML {
		// Form fields count as well as the query for mode and name.
		if err := q.r.ParseForm(); err == nil {
			if name == "" {
				name = strings.TrimSpace(q.r.Form.Get("name"))
			}
			if mode == "" {
				mode = q.r.Form.Get("mode")
			}
		}
	}
	if contentType == "" && mode != "copy" {
		failure(q, "No Content-Type header set")
		return
	}
	if msg := checkGoodName(name); msg != "" {
		failure(q, msg)
		return
	}
	if parent.child(name) != nil {
		failure(q, "A job already exists with the name ‘"+name+"’")
		return
	}
	switch {
	case isXML:
		k, meta, config, ok := readConfig(q, name)
		if !ok {
			return
		}
		parent.children = append(parent.children, &item{name: name, kind: k, parent: parent, config: config, meta: meta, nextBuild: 1})
		q.w.WriteHeader(http.StatusOK)
	case mode == folderClass:
		config := []byte("<" + folderClass + "/>")
		it := &item{name: name, kind: kindFolder, parent: parent, config: config, nextBuild: 1}
		parent.children = append(parent.children, it)
		q.w.Header().Set("Location", baseURL(q.r)+it.path()+"configure")
		q.w.WriteHeader(http.StatusFound)
	case mode == "":
		http.Error(q.w, "Jenkins stand-in: no mode given", http.StatusBadRequest)
	default:
		failure(q, "Jenkins stand-in does not implement createItem mode="+mode)
	}
}

// checkGoodName is Jenkins.checkGoodName; it returns the message of the
// Failure Jenkins would throw, or "".
func checkGoodName(name string) string {
	if name == "" {
		return "No name is specified"
	}
	if name == "." || name == ".." {
		return "“" + name + "” is not an allowed name"
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return "‘" + strconv.QuoteRune(c) + "’ is an unsafe character"
		}
		if strings.ContainsRune(`?*/\%!@#$^&|<>[]:;`, c) {
			return "‘" + string(c) + "’ is an unsafe character"
		}
	}
	if strings.HasSuffix(name, ".") {
		return "A name cannot end with ‘.’"
	}
	return ""
}

// serveConfig is AbstractItem.doConfigDotXml.
func (s *Server) serveConfig(q *request, it *item) {
	switch q.r.Method {
	case http.MethodGet:
		if !s.allowed(q, PermConfigure) { // Jenkins needs EXTENDED_READ; Configure implies it
			return
		}
		q.w.Header().Set("Content-Type", "application/xml")
		q.w.WriteHeader(http.StatusOK)
		io.WriteString(q.w, "<?xml version='1.1' encoding='UTF-8'?>\n")
		q.w.Write(it.config)
	case http.MethodPost:
		if !s.allowed(q, PermConfigure) {
			return
		}
		k, meta, config, ok := readConfig(q, it.fullName())
		if !ok {
			return
		}
		if k != it.kind {
			serverError(q, fmt.Sprintf("java.io.IOException: Expecting class %s but got class %s instead", classOfKind[it.kind], classOfKind[k]))
			return
		}
		it.config, it.meta = config, meta
		q.w.WriteHeader(http.StatusOK)
	default:
		methodNotAllowed(q)
	}
}

// deleteItem removes an item and, for a folder, everything below it,
// cancelling queued builds of the jobs it removes.
func (s *Server) deleteItem(it *item) {
	for _, c := range it.children {
		s.deleteItem(c)
	}
	for id, qi := range s.queue {
		if qi.job == it && qi.build == nil && !qi.cancelled {
			s.cancelLocked(id)
		}
	}
	p := it.parent
	for i, c := range p.children {
		if c == it {
			p.children = append(p.children[:i:i], p.children[i+1:]...)
			break
		}
	}
}

// configMeta is what the stand-in reads from a config.xml.
type configMeta struct {
	description string
	disabled    bool
	params      []paramDef
}

type paramDef struct{ name, defaultValue string }

// parseConfig checks a config.xml as XStream would (well-formed, a known
// root element) and returns its kind, what the stand-in needs from it, and
// the XML without its declaration. Jenkins writes XML 1.1 declarations,
// which Go's decoder refuses, so the declaration is cut off first.
// readConfig reads and parses the config.xml posted for the item named
// name (createItem, POST config.xml); on failure it has answered as Jenkins
// does and reports false.
func readConfig(q *request, name string) (kind, configMeta, []byte, bool) {
	body, err := io.ReadAll(q.r.Body)
	if err != nil {
		serverError(q, "reading the request body: "+err.Error())
		return 0, configMeta{}, nil, false
	}
	k, meta, config, err := parseConfig(body)
	if err != nil {
		serverError(q, "java.io.IOException: Unable to read "+name+"/config.xml: "+err.Error())
		return 0, configMeta{}, nil, false
	}
	return k, meta, config, true
}

func parseConfig(body []byte) (kind, configMeta, []byte, error) {
	body = StripXMLDeclaration(body)
	var doc struct {
		XMLName     xml.Name
		Description string `xml:"description"`
		Disabled    bool   `xml:"disabled"`
		Properties  struct {
			Params struct {
				Defs struct {
					Items []struct {
						Name         string `xml:"name"`
						DefaultValue string `xml:"defaultValue"`
					} `xml:",any"`
				} `xml:"parameterDefinitions"`
			} `xml:"hudson.model.ParametersDefinitionProperty"`
		} `xml:"properties"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		return 0, configMeta{}, nil, fmt.Errorf("malformed XML: %w", err)
	}
	k, ok := kindOfRoot[doc.XMLName.Local]
	if !ok {
		return 0, configMeta{}, nil, fmt.Errorf("com.thoughtworks.xstream.mapper.CannotResolveClassException: %s", doc.XMLName.Local)
	}
	meta := configMeta{description: doc.Description, disabled: doc.Disabled}
	for _, p := range doc.Properties.Params.Defs.Items {
		meta.params = append(meta.params, paramDef{p.Name, p.DefaultValue})
	}
	return k, meta, bytes.TrimSpace(body), nil
}

// StripXMLDeclaration removes a leading <?xml ...?> declaration, whatever
// its version, so Go's encoding/xml (XML 1.0 only) can read Jenkins' files.
func StripXMLDeclaration(b []byte) []byte {
	t := bytes.TrimLeft(b, " \t\r\n\ufeff")
	if !bytes.HasPrefix(t, []byte("<?xml")) {
		return b
	}
	end := bytes.Index(t, []byte("?>"))
	if end < 0 {
		return b
	}
	return t[end+2:]
}

func (s *Server) itemJSON(r *http.Request, it *item) map[string]any {
	base := baseURL(r)
	m := map[string]any{"_class": classOfKind[it.kind]}
	if it.kind == kindRoot {
		m["mode"] = "NORMAL"
		m["nodeDescription"] = "the Jenkins stand-in of tsys-ci (test/jenkinsstandin)"
		m["nodeName"] = ""
		m["numExecutors"] = 2
		m["useCrumbs"] = true
		m["useSecurity"] = true
		m["url"] = base
	} else {
		m["name"] = it.name
		m["fullName"] = it.fullName()
		m["displayName"] = it.name
		m["fullDisplayName"] = strings.ReplaceAll(it.fullName(), "/", " » ")
		m["url"] = base + it.path()
		m["description"] = it.meta.description
	}
	if it.kind != kindPipeline {
		jobs := []map[string]any{}
		for _, c := range it.children {
			j := map[string]any{"_class": classOfKind[c.kind], "name": c.name, "url": base + c.path()}
			if c.kind == kindPipeline {
				j["color"] = s.color(c)
			}
			jobs = append(jobs, j)
		}
		m["jobs"] = jobs
		return m
	}
	s.jobJSON(r, it, m)
	return m
}

func isAPIJSON(tokens []string) bool {
	return len(tokens) >= 2 && tokens[0] == "api" && tokens[1] == "json"
}

func postOnly(q *request) bool {
	if q.r.Method != http.MethodPost {
		methodNotAllowed(q)
		return false
	}
	return true
}

func writeJSON(q *request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		serverError(q, "encoding JSON: "+err.Error())
		return
	}
	q.w.Header().Set("Content-Type", "application/json;charset=utf-8")
	q.w.WriteHeader(http.StatusOK)
	q.w.Write(b)
}

func writeHTML(q *request, status int, text string) {
	q.w.Header().Set("Content-Type", "text/html;charset=utf-8")
	q.w.WriteHeader(status)
	fmt.Fprintf(q.w, "<html><body>%s</body></html>\n", htmlEscape(text))
}

// failure is hudson.model.Failure rendered by error.jelly: 400 with the
// message in X-Error, which gojenkins turns into its error text.
func failure(q *request, msg string) {
	q.w.Header().Set("X-Error", msg)
	writeHTML(q, http.StatusBadRequest, "Error: "+msg)
}

func notFound(q *request) {
	writeHTML(q, http.StatusNotFound, "Jenkins stand-in: not found: "+q.r.URL.Path)
}

func methodNotAllowed(q *request) {
	writeHTML(q, http.StatusMethodNotAllowed, "Jenkins stand-in: "+q.r.Method+" is not allowed on "+q.r.URL.Path)
}

func serverError(q *request, msg string) {
	writeHTML(q, http.StatusInternalServerError, "Oops! (Jenkins stand-in) "+msg)
}

func htmlEscape(s string) string { return html.EscapeString(s) }
