package store

import "context"

// Host is what the tailsift extension offers the components whose storage
// key names it.
type Host interface {
	// Store is the extension's store; nil before the extension started.
	Store() *Store
	// Attach registers a component that can send a stored trace down its
	// pipeline (the retrieval API's keep); detach undoes it.
	Attach(k Keeper) (detach func())
}

// Keeper sends a stored, dropped trace down a pipeline now.
type Keeper interface {
	KeepStored(ctx context.Context, id [16]byte) (spans int, err error)
}
