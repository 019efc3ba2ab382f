package jenkins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/bndr/gojenkins"
)

// RunOptions control Run.
type RunOptions struct {
	Params map[string]string
	// Poll is how often the queue, console and build are asked; 0 is 1 s.
	Poll time.Duration
	// Console receives the build's console as Jenkins writes it; nil
	// discards it, as it does Progress.
	Console io.Writer
	// Progress receives tsys-ci's own lines (queued, started, result).
	Progress io.Writer
}

// RunResult is a finished build.
type RunResult struct {
	Job    string
	Number int64
	Result string // SUCCESS, UNSTABLE, FAILURE, NOT_BUILT, ABORTED
	URL    string
}

// ErrBuildFailed wraps a build that finished with any result but SUCCESS.
var ErrBuildFailed = errors.New("build did not succeed")

// queueItem is the part of /queue/item/N/api/json Run reads. gojenkins'
// own type has no "cancelled", and its GetBuildFromQueueID polls without
// limit, cannot see a cancelled item and looks the job up by its short name
// (wrong for jobs in folders), so Run polls the item itself.
type queueItem struct {
	Cancelled  bool   `json:"cancelled"`
	Why        string `json:"why"`
	Executable *struct {
		Number int64  `json:"number"`
		URL    string `json:"url"`
	} `json:"executable"`
}

// Run triggers a build of a job (full name, "platform/promote"), waits for
// it to leave the queue, streams its console and returns its result. A
// result other than SUCCESS is returned along with an error wrapping
// ErrBuildFailed. ctx bounds the whole wait.
func Run(ctx context.Context, c *Client, job string, opts RunOptions) (*RunResult, error) {
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Console == nil {
		opts.Console = io.Discard
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	progress := func(format string, args ...any) {
		fmt.Fprintf(opts.Progress, "Jenkins %s: "+format+"\n", append([]any{c.Version}, args...)...)
	}
	jb, err := c.getJob(ctx, job)
	if errors.Is(err, errNotFound) {
		return nil, fmt.Errorf("job %s is not in Jenkins at %s (names are folder/job, as in jobs.yaml)", job, c.URL)
	}
	if err != nil {
		return nil, err
	}
	if jb.Raw.Class != classOfKind[KindPipeline] {
		return nil, fmt.Errorf("%s is a %s, not a job that builds: name a job in it, e.g. %s/main for a branch", job, kindOfClass(jb.Raw.Class), job)
	}
	id, err := trigger(ctx, jb, opts.Params)
	if err != nil {
		return nil, fmt.Errorf("triggering %s: %w", job, err)
	}
	progress("%s queued as queue item %d", job, id)

	number, err := waitForBuild(ctx, c, id, opts.Poll, func(why string) { progress("%s waiting: %s", job, why) })
	if err != nil {
		return nil, fmt.Errorf("waiting for %s to start: %w", job, err)
	}
	build, err := jb.GetBuild(ctx, number)
	if err != nil {
		return nil, fmt.Errorf("reading build %s #%d: HTTP %w", job, number, err)
	}
	progress("%s #%d started: %s", job, number, build.GetUrl())
	if err := follow(ctx, build, opts); err != nil {
		return nil, fmt.Errorf("following %s #%d: %w", job, number, err)
	}
	res := &RunResult{Job: job, Number: number, Result: build.GetResult(), URL: build.GetUrl()}
	progress("%s #%d finished: %s", job, number, res.Result)
	if res.Result != gojenkins.STATUS_SUCCESS {
		return res, fmt.Errorf("%s #%d finished %s (%s): %w", job, number, res.Result, res.URL, ErrBuildFailed)
	}
	return res, nil
}

// trigger asks for a build and returns its queue item. gojenkins'
// InvokeSimple returns 0 when the job is already queued; Jenkins would
// hand back that item, so Run follows it too.
func trigger(ctx context.Context, jb *gojenkins.Job, params map[string]string) (_ int64, err error) {
	defer guard("triggering the build", &err)
	if queued, ok := queuedItem(jb); ok {
		return queued, nil
	}
	id, err := jb.InvokeSimple(ctx, params)
	if err != nil {
		return 0, err
	}
	if id != 0 {
		return id, nil
	}
	if _, err := jb.Poll(ctx); err != nil {
		return 0, err
	}
	if queued, ok := queuedItem(jb); ok {
		return queued, nil
	}
	return 0, fmt.Errorf("Jenkins accepted the build but named no queue item")
}

func queuedItem(jb *gojenkins.Job) (int64, bool) {
	m, ok := jb.Raw.QueueItem.(map[string]any)
	if !jb.Raw.InQueue || !ok {
		return 0, false
	}
	id, ok := m["id"].(float64)
	return int64(id), ok && id > 0
}

// waitForBuild polls a queue item until it has a build number.
func waitForBuild(ctx context.Context, c *Client, id int64, poll time.Duration, waiting func(string)) (int64, error) {
	lastWhy := ""
	for {
		var qi queueItem
		resp, err := c.j.Requester.GetJSON(ctx, fmt.Sprintf("/queue/item/%d", id), &qi, nil)
		if err != nil {
			return 0, err
		}
		switch {
		case resp.StatusCode == http.StatusNotFound:
			return 0, fmt.Errorf("queue item %d is gone (Jenkins forgets items 5 minutes after they leave the queue)", id)
		case resp.StatusCode != http.StatusOK:
			return 0, fmt.Errorf("reading queue item %d: HTTP %d", id, resp.StatusCode)
		case qi.Cancelled:
			return 0, fmt.Errorf("queue item %d was cancelled in Jenkins", id)
		case qi.Executable != nil && qi.Executable.Number > 0:
			return qi.Executable.Number, nil
		}
		if qi.Why != "" && qi.Why != lastWhy {
			waiting(qi.Why)
			lastWhy = qi.Why
		}
		if err := sleep(ctx, poll); err != nil {
			return 0, err
		}
	}
}

// follow streams the console until Jenkins says it is complete, then waits
// for building=false: a Pipeline sets its result before it is done.
func follow(ctx context.Context, b *gojenkins.Build, opts RunOptions) error {
	var offset int64
	for {
		chunk, err := b.GetConsoleOutputFromIndex(ctx, offset)
		if err != nil {
			return fmt.Errorf("reading the console: %w", err)
		}
		if _, err := io.WriteString(opts.Console, chunk.Content); err != nil {
			return err
		}
		offset = chunk.Offset
		if !chunk.HasMoreText {
			break
		}
		if err := sleep(ctx, opts.Poll); err != nil {
			return err
		}
	}
	for {
		if _, err := b.Poll(ctx); err != nil {
			return fmt.Errorf("reading the build: %w", err)
		}
		if !b.Raw.Building {
			return nil
		}
		if err := sleep(ctx, opts.Poll); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
