// Package ctxval stores one value in a context in one allocation: the value
// lives in the context itself, where context.WithValue allocates the
// context and, for a value that is not pointer-shaped, a boxed copy; and
// reading it hands out a pointer without allocating. The kit's packages use
// it for the values every request carries.
package ctxval

import (
	"context"
	"fmt"
)

// valueCtx carries v under key.
type valueCtx[T any] struct {
	context.Context
	key  any
	name string
	v    T
}

// Value implements context.Context: a *T for key.
func (c *valueCtx[T]) Value(key any) any {
	if key == c.key {
		return &c.v
	}
	return c.Context.Value(key)
}

// String describes the context by name, without the value.
func (c *valueCtx[T]) String() string { return fmt.Sprint(c.Context) + "." + c.name }

// With returns a child of parent carrying v under key (a comparable,
// package-private value such as a pointer to an unexported type). name
// shows in the context's String, in place of the value.
func With[T any](parent context.Context, key any, name string, v T) context.Context {
	return &valueCtx[T]{Context: parent, key: key, name: name, v: v}
}

// From returns the value stored under key by With, and whether there is
// one. It does not allocate and never panics (a nil ctx has none).
func From[T any](ctx context.Context, key any) (*T, bool) {
	if ctx == nil {
		return nil, false
	}
	p, ok := ctx.Value(key).(*T)
	return p, ok && p != nil
}
