package jenkins

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Jenkins does not hand config.xml back as it was posted: XStream writes an
// XML 1.1 declaration, plugin="name@version" attributes and every field's
// default. So "changed" cannot be a byte comparison. Seeding compares what
// the template says with the same parts of what Jenkins has: Jenkins' config
// is projected onto the shape of the rendered one (elements the template
// never names are dropped, plugin attributes ignored), and the item is up to
// date when the projection renders the same as the template. The diff that
// --dry-run prints is between those two renderings, so it shows only what
// seeding would change.

// node is an XML element with its attributes sorted and text trimmed.
type node struct {
	name     string
	attrs    []xml.Attr
	text     string
	children []*node
}

// maxDepth bounds element nesting: job configs nest about ten deep, and
// rendering a document indents every line by its depth.
const maxDepth = 100

// parseXML reads one XML document, of any declared version (Go's decoder
// only accepts 1.0 declarations, Jenkins writes 1.1).
func parseXML(data []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(stripDeclaration(data)))
	var stack []*node
	var root *node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name.Local}
			for _, a := range t.Attr {
				if a.Name.Local != "plugin" {
					n.attrs = append(n.attrs, xml.Attr{Name: xml.Name{Local: a.Name.Local}, Value: a.Value})
				}
			}
			slices.SortFunc(n.attrs, func(a, b xml.Attr) int { return strings.Compare(a.Name.Local, b.Name.Local) })
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
			if len(stack) > maxDepth {
				return nil, fmt.Errorf("elements nested deeper than %d", maxDepth)
			}
		case xml.EndElement:
			n := stack[len(stack)-1]
			n.text = strings.TrimSpace(n.text)
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			} else if strings.TrimSpace(string(t)) != "" {
				return nil, fmt.Errorf("text outside the root element")
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no root element")
	}
	return root, nil
}

func stripDeclaration(b []byte) []byte {
	t := bytes.TrimLeft(b, " \t\r\n\ufeff")
	if bytes.HasPrefix(t, []byte("<?xml")) {
		if end := bytes.Index(t, []byte("?>")); end >= 0 {
			return t[end+2:]
		}
	}
	return b
}

// project keeps the parts of have that want names: the k-th child called X
// in have is matched with the k-th child called X in want; children of a
// name want never uses are dropped. Extra children of a name want does use
// stay, so a second library added by hand still shows up as a difference.
func project(have, want *node) *node {
	out := &node{name: have.name, attrs: have.attrs, text: have.text}
	if len(want.children) == 0 && len(have.children) > 0 && want.text == "" {
		// want is an empty element (<triggers/>); whatever Jenkins has in it
		// is a difference.
		out.children = have.children
		return out
	}
	byName := map[string][]*node{}
	for _, w := range want.children {
		byName[w.name] = append(byName[w.name], w)
	}
	seen := map[string]int{}
	for _, c := range have.children {
		k := seen[c.name]
		seen[c.name]++
		ws := byName[c.name]
		switch {
		case k < len(ws):
			out.children = append(out.children, project(c, ws[k]))
		case len(ws) > 0:
			out.children = append(out.children, c)
		}
	}
	return out
}

func nthChild(n *node, name string, k int) *node {
	for _, c := range n.children {
		if c.name == name {
			if k == 0 {
				return c
			}
			k--
		}
	}
	return nil
}

// lines renders a node as indented lines, one element or text per line.
func (n *node) lines() []string {
	var out []string
	var walk func(n *node, indent string)
	walk = func(n *node, indent string) {
		var attrs strings.Builder
		for _, a := range n.attrs {
			fmt.Fprintf(&attrs, " %s=%q", a.Name.Local, a.Value)
		}
		switch {
		case len(n.children) == 0 && n.text == "":
			out = append(out, fmt.Sprintf("%s<%s%s/>", indent, n.name, attrs.String()))
		case len(n.children) == 0 && !strings.Contains(n.text, "\n"):
			out = append(out, fmt.Sprintf("%s<%s%s>%s</%s>", indent, n.name, attrs.String(), n.text, n.name))
		default:
			out = append(out, fmt.Sprintf("%s<%s%s>", indent, n.name, attrs.String()))
			if n.text != "" {
				for _, l := range strings.Split(n.text, "\n") {
					out = append(out, indent+"  "+l)
				}
			}
			for _, c := range n.children {
				walk(c, indent+"  ")
			}
			out = append(out, fmt.Sprintf("%s</%s>", indent, n.name))
		}
	}
	walk(n, "")
	return out
}

// compareConfig reports whether Jenkins' config (have) already says what
// the template (want) says, and if not, a diff from have to want.
func compareConfig(have, want []byte) (same bool, diff string, err error) {
	h, err := parseXML(have)
	if err != nil {
		return false, "", fmt.Errorf("Jenkins' config.xml is not XML: %w", err)
	}
	w, err := parseXML(want)
	if err != nil {
		return false, "", fmt.Errorf("rendered config is not XML: %w", err)
	}
	if h.name != w.name {
		return false, "", fmt.Errorf("Jenkins has a <%s>, the template a <%s>", h.name, w.name)
	}
	a, b := project(h, w).lines(), w.lines()
	if slices.Equal(a, b) {
		return true, "", nil
	}
	return false, lineDiff(a, b, 2), nil
}

// maxDiffCells bounds the LCS table of lineDiff (a config of a few hundred
// lines is far below it).
const maxDiffCells = 4_000_000

// lineDiff is a unified-style diff of two short line lists (config files
// are tens of lines, so the quadratic LCS is cheap), with context lines
// around each change and "..." where unchanged lines are left out.
func lineDiff(a, b []string, context int) string {
	n, m := len(a), len(b)
	if n*m > maxDiffCells {
		// Far beyond any job config: say so instead of spending minutes.
		return fmt.Sprintf("   (configs of %d and %d lines: too long to diff)\n", n, m)
	}
	// Compare lines by number, not by text, in the quadratic part.
	ids := map[string]int{}
	id := func(l string) int {
		if v, ok := ids[l]; ok {
			return v
		}
		ids[l] = len(ids)
		return ids[l]
	}
	ai, bi := make([]int, n), make([]int, m)
	for i, l := range a {
		ai[i] = id(l)
	}
	for j, l := range b {
		bi[j] = id(l)
	}
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if ai[i] == bi[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		mark byte
		text string
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && ai[i] == bi[j]:
			ops = append(ops, op{' ', a[i]})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', a[i]})
			i++
		default:
			ops = append(ops, op{'+', b[j]})
			j++
		}
	}
	keep := make([]bool, len(ops))
	for k, o := range ops {
		if o.mark != ' ' {
			for c := max(0, k-context); c <= min(len(ops)-1, k+context); c++ {
				keep[c] = true
			}
		}
	}
	var out strings.Builder
	skipped := false
	for k, o := range ops {
		if !keep[k] {
			if !skipped {
				out.WriteString("   ...\n")
				skipped = true
			}
			continue
		}
		skipped = false
		fmt.Fprintf(&out, " %c %s\n", o.mark, o.text)
	}
	return out.String()
}
