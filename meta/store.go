package meta

// Store is an open swapfs store: the metadata database and the data volume.
type Store struct{}
