package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestDocumentedCommandLinesParse runs every tsys-ci command line shown in
// README.md, docs/*.md and every command's --help (UsageText) through the
// real parser (parseOnly: flags, -o values and argument counts are checked,
// nothing runs). A synopsis is expanded: [optional] parts with and without,
// each alternative of (a | b), X... once. A line that cannot parse fails.
func TestDocumentedCommandLinesParse(t *testing.T) {
	var lines []source
	docs, _ := filepath.Glob("../../docs/*.md")
	for _, path := range append([]string{"../../README.md"}, docs...) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, markdownCommandLines(strings.TrimPrefix(path, "../../"), string(data))...)
	}
	lines = append(lines, usageTextLines(newApp().Commands)...)
	// A span that only names a command ("`tsys-ci jenkins seed` creates
	// the jobs") refers to it; it is no command line.
	// "tsys-ci COMMAND --help" stands for every command.
	lines = slices.DeleteFunc(lines, func(l source) bool {
		words := strings.Fields(l.line)
		return isCommandPath(newApp().Commands, words) || strings.ToUpper(words[0]) == words[0]
	})
	if len(lines) < 40 {
		t.Fatalf("found only %d command lines; is the extraction broken?", len(lines))
	}
	tried := 0
	for _, l := range lines {
		variants, err := expandSynopsis(l.line)
		if err != nil {
			t.Errorf("%s: %q: %v", l.where, l.line, err)
			continue
		}
		for _, args := range variants {
			tried++
			if _, err := parse(args...); err != nil {
				t.Errorf("%s: %q\n  as %q: %v", l.where, l.line, args, err)
				break // one expansion is enough to say the line is wrong
			}
		}
	}
	t.Logf("%d command lines, %d expansions parsed", len(lines), tried)
}

// TestSharedLibraryCommandLinesParse: the exact argument order each
// shared-library step builds (templates/jenkins/shared-library/vars), with
// every option it may add. The Jenkins harness runs them for real; this
// keeps the parser's side of that contract in this package's quick tests.
func TestSharedLibraryCommandLinesParse(t *testing.T) {
	for _, args := range [][]string{
		// tsysPromote.groovy: app first, then image or from, spec, strategy, policy, report.
		{"promote", "whiteboard", "--from", ".tsys-ci/push.json", "--verify-key", "/tmp/key.pub", "--report", ".tsys-ci/promote-junit.xml"},
		{"promote", "whiteboard", "--image", "harbor.example/web/whiteboard@sha256:" + strings.Repeat("a", 64), "--spec", "deploy/tsys-ci.yaml", "--strategy", "canary", "--allow-unsigned", "--report", ".tsys-ci/promote-junit.xml"},
		// tsysBuild.groovy
		{"build", "--base", "scratch", "--context", "web", "--workdir", "/app", "--entrypoint", "/app/server", "--cmd", "-v", "--env", "A=b", "--user", "1000", "--port", "8080", "--label", "k=v", "--out", "o", "--result", ".tsys-ci/build.json"},
		// tsysPush.groovy
		{"push", "--from", ".tsys-ci/build.json", "--repository", "harbor.example/web/whiteboard", "--tag", "v1", "--harbor", "https://harbor.example", "--sign", "--key", "/tmp/cosign.key", "--result", ".tsys-ci/push.json"},
	} {
		got, err := parse(args...)
		if err != nil {
			t.Errorf("%q: %v", args, err)
			continue
		}
		if args[0] == "promote" && (len(got.args) != 1 || got.args[0] != "whiteboard") {
			t.Errorf("%q: parsed as %s, want the app whiteboard as the one argument", args, got)
		}
	}
}

type source struct{ where, line string }

// isCommandPath: words are exactly the names of a command and its
// subcommands, e.g. "platform doctor".
func isCommandPath(cmds []*cli.Command, words []string) bool {
	if len(words) == 0 {
		return false
	}
	c := findCommand(cmds, words[0])
	if c == nil {
		return false
	}
	return len(words) == 1 || isCommandPath(c.Subcommands, words[1:])
}

var (
	inlineCode = regexp.MustCompile("`((?:bin/)?tsys-ci [^`]+)`")
	envAssign  = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=\S*$`)
)

// markdownCommandLines finds tsys-ci command lines in fenced code blocks
// (continuation lines joined, comments dropped, `a && b` split) and in
// inline code spans.
func markdownCommandLines(file, text string) []source {
	var out []source
	inFence := false
	var pending string
	for i, raw := range strings.Split(text, "\n") {
		where := fmt.Sprintf("%s:%d", file, i+1)
		if strings.HasPrefix(strings.TrimSpace(raw), "```") {
			inFence = !inFence
			continue
		}
		if !inFence {
			for _, m := range inlineCode.FindAllStringSubmatch(raw, -1) {
				out = append(out, commandSegments(where, strings.ReplaceAll(m[1], `\|`, "|"))...)
			}
			continue
		}
		line := pending + raw
		if strings.HasSuffix(strings.TrimRight(line, " "), `\`) {
			pending = strings.TrimSuffix(strings.TrimRight(line, " "), `\`) + " "
			continue
		}
		pending = ""
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		out = append(out, commandSegments(where, line)...)
	}
	return out
}

// commandSegments splits a shell line at && and ; and keeps the parts that
// run tsys-ci, without environment assignments in front.
func commandSegments(where, line string) []source {
	var out []source
	for _, part := range regexp.MustCompile(`&&|;|\s&\s*$|\s&$`).Split(line, -1) {
		words := strings.Fields(part)
		for len(words) > 0 && envAssign.MatchString(words[0]) {
			words = words[1:]
		}
		if len(words) > 1 && (words[0] == "tsys-ci" || words[0] == "bin/tsys-ci") {
			out = append(out, source{where, strings.Join(words[1:], " ")})
		}
	}
	return out
}

// usageTextLines are the tsys-ci lines of every command's UsageText.
func usageTextLines(cmds []*cli.Command) []source {
	var out []source
	for _, c := range cmds {
		for _, l := range strings.Split(c.UsageText, "\n") {
			l = strings.TrimSpace(l)
			if rest, ok := strings.CutPrefix(l, "tsys-ci "); ok {
				out = append(out, source{"--help of " + c.Name, rest})
			}
		}
		out = append(out, usageTextLines(c.Subcommands)...)
	}
	return out
}

// synopsis grammar: seq := item*; item := WORD | '[' alts ']' | '(' alts ')';
// alts := seq ('|' seq)*. The whole line is an alts.
type synopsisParser struct {
	toks []string
	pos  int
}

// expandSynopsis returns every command line a synopsis stands for.
func expandSynopsis(line string) ([][]string, error) {
	toks, err := synopsisTokens(line)
	if err != nil {
		return nil, err
	}
	p := &synopsisParser{toks: toks}
	out, err := p.alts()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unbalanced %q at word %d", p.toks[p.pos], p.pos)
	}
	return out, nil
}

func (p *synopsisParser) alts() ([][]string, error) {
	var out [][]string
	for {
		seq, err := p.seq()
		if err != nil {
			return nil, err
		}
		out = append(out, seq...)
		if p.pos < len(p.toks) && p.toks[p.pos] == "|" {
			p.pos++
			continue
		}
		return out, nil
	}
}

func (p *synopsisParser) seq() ([][]string, error) {
	out := [][]string{{}}
	for p.pos < len(p.toks) {
		tok := p.toks[p.pos]
		var choices [][]string
		switch tok {
		case "|", "]", ")":
			return out, nil
		case "[", "(":
			p.pos++
			inner, err := p.alts()
			if err != nil {
				return nil, err
			}
			closing := map[string]string{"[": "]", "(": ")"}[tok]
			if p.pos >= len(p.toks) || p.toks[p.pos] != closing {
				return nil, fmt.Errorf("%s without %s", tok, closing)
			}
			p.pos++
			choices = inner
			if tok == "[" {
				choices = append([][]string{{}}, inner...)
			}
		default:
			p.pos++
			choices = [][]string{{tok}}
		}
		var next [][]string
		for _, prefix := range out {
			for _, c := range choices {
				next = append(next, append(append([]string{}, prefix...), c...))
			}
		}
		if len(next) > 4096 {
			return nil, fmt.Errorf("more than 4096 expansions")
		}
		out = next
	}
	return out, nil
}

// synopsisTokens splits a line into words as a shell would (quotes
// removed), with [ ] ( ) | as words of their own, <a placeholder> as one
// word and "..." (repetition, or text left out) dropped.
func synopsisTokens(line string) ([]string, error) {
	var toks []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			w := strings.TrimSuffix(cur.String(), "...")
			if w != "" {
				toks = append(toks, w)
			}
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '\'' || ch == '"':
			end := strings.IndexByte(line[i+1:], ch)
			if end < 0 {
				return nil, fmt.Errorf("unclosed %c", ch)
			}
			cur.WriteString(line[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case ch == '<':
			end := strings.IndexByte(line[i:], '>')
			if end < 0 {
				return nil, fmt.Errorf("unclosed <")
			}
			cur.WriteString("PLACEHOLDER")
			inWord = true
			i += end
		case ch == ' ' || ch == '\t':
			flush()
		case strings.IndexByte("[]()", ch) >= 0,
			ch == '|' && !inWord && (i+1 == len(line) || line[i+1] == ' '):
			// A | inside a word (--base REF|scratch) is part of the value.
			flush()
			toks = append(toks, string(ch))
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	flush()
	return toks, nil
}

// TestExpandSynopsis pins the expansion the test above relies on.
func TestExpandSynopsis(t *testing.T) {
	got, err := expandSynopsis(`promote APP (--image REF | --from F) [--verify-key "K" | --allow-unsigned] [--tag T]... <dir of charts>`)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, g := range got {
		lines = append(lines, strings.Join(g, " "))
	}
	want := []string{
		"promote APP --image REF PLACEHOLDER",
		"promote APP --image REF --tag T PLACEHOLDER",
		"promote APP --image REF --verify-key K PLACEHOLDER",
	}
	for _, w := range want {
		if !strings.Contains("\n"+strings.Join(lines, "\n")+"\n", "\n"+w+"\n") {
			t.Errorf("expansion lacks %q:\n%s", w, strings.Join(lines, "\n"))
		}
	}
	if len(lines) != 12 {
		t.Errorf("%d expansions, want 2*3*2 = 12:\n%s", len(lines), strings.Join(lines, "\n"))
	}
}
