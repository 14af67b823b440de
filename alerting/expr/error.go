package expr

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Error is a mistake in an expression, at a line and column (both from 1;
// columns count characters).
type Error struct {
	Line, Col int
	Msg       string
	// SourceLine is the line the mistake is on, shown with a caret under it.
	SourceLine string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d:%d: %s\n  %s\n  %s^", e.Line, e.Col, e.Msg, e.SourceLine, strings.Repeat(" ", e.Col-1))
}

// errorAt builds an Error for the byte offset pos of src.
func errorAt(src string, pos int, msg string) *Error {
	pos = min(max(pos, 0), len(src))
	lineStart := strings.LastIndexByte(src[:pos], '\n') + 1
	lineEnd := strings.IndexByte(src[pos:], '\n')
	if lineEnd < 0 {
		lineEnd = len(src)
	} else {
		lineEnd += pos
	}
	line := strings.TrimRight(src[lineStart:lineEnd], "\r")
	// Tabs would shift the caret; show them as spaces.
	line = strings.ReplaceAll(line, "\t", " ")
	return &Error{
		Line:       strings.Count(src[:lineStart], "\n") + 1,
		Col:        utf8.RuneCountInString(src[lineStart:pos]) + 1,
		Msg:        msg,
		SourceLine: line,
	}
}
