package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
)

// Do sends req to the serve listening at path and returns its answer, calling line with each
// log line that comes before it (for "logs"). It ends when ctx does (a "logs" that follows
// ends so). The error says serve could not be reached, or did not answer; an answer that
// refused the peer is returned with an error matching [ErrRefused].
func Do(ctx context.Context, path string, req Request, line func(string)) (Answer, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Answer{}, &dialError{path, err}
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	b, err := json.Marshal(req)
	if err != nil {
		return Answer{}, fmt.Errorf("control: %w", err)
	}
	// A serve that refuses the peer answers at once and closes: the write may fail then, and
	// the answer still be there to read.
	_, werr := c.Write(append(b, '\n'))
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		l, err := r.ReadBytes('\n')
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return Answer{}, ctx.Err()
			case werr != nil:
				return Answer{}, fmt.Errorf("control: send to serve at %s: %w", path, werr)
			}
			return Answer{}, fmt.Errorf("control: serve at %s closed the connection without an answer: %w", path, err)
		}
		var msg struct {
			Line *string `json:"line"`
			Answer
		}
		if err := json.Unmarshal(l, &msg); err != nil {
			return Answer{}, fmt.Errorf("control: serve at %s answered %.80q: %w", path, l, err)
		}
		if msg.Line != nil {
			if line != nil {
				line(*msg.Line)
			}
			continue
		}
		if msg.Refused {
			return msg.Answer, fmt.Errorf("%w: %s", ErrRefused, msg.Error)
		}
		return msg.Answer, nil
	}
}

// dialError is a connection to serve that failed: its message says why in a few words (no
// such file, connection refused, permission denied).
type dialError struct {
	path string
	err  error
}

func (e *dialError) Error() string {
	cause := e.err
	var se *os.SyscallError
	if errors.As(cause, &se) {
		cause = se.Err
	}
	return fmt.Sprintf("control: cannot reach serve at %s: %v", e.path, cause)
}

func (e *dialError) Unwrap() error { return e.err }
