package fs

import gofs "github.com/hanwen/go-fuse/v2/fs"

// What Node implements. go-fuse finds these by type assertion at run time, so a method with
// a wrong signature would silently not be called: these lines make it a compile error.
var _ = (gofs.InodeEmbedder)((*Node)(nil))
var _ = (gofs.NodeLookuper)((*Node)(nil))
var _ = (gofs.NodeGetattrer)((*Node)(nil))
var _ = (gofs.NodeStatxer)((*Node)(nil))
var _ = (gofs.NodeSetattrer)((*Node)(nil))
var _ = (gofs.NodeStatfser)((*Node)(nil))
var _ = (gofs.NodeOnForgetter)((*Node)(nil))
var _ = (gofs.NodeMkdirer)((*Node)(nil))
var _ = (gofs.NodeMknoder)((*Node)(nil))
var _ = (gofs.NodeSymlinker)((*Node)(nil))
var _ = (gofs.NodeReadlinker)((*Node)(nil))
var _ = (gofs.NodeLinker)((*Node)(nil))
var _ = (gofs.NodeUnlinker)((*Node)(nil))
var _ = (gofs.NodeRmdirer)((*Node)(nil))
var _ = (gofs.NodeRenamer)((*Node)(nil))
var _ = (gofs.NodeOpendirHandler)((*Node)(nil))
var _ = (gofs.NodeOpener)((*Node)(nil))
var _ = (gofs.NodeCreater)((*Node)(nil))
var _ = (gofs.NodeTmpfiler)((*Node)(nil))
var _ = (gofs.NodeReleaser)((*Node)(nil))
var _ = (gofs.NodeReader)((*Node)(nil))
var _ = (gofs.NodeWriter)((*Node)(nil))
var _ = (gofs.NodeFlusher)((*Node)(nil))
var _ = (gofs.NodeFsyncer)((*Node)(nil))
var _ = (gofs.NodeLseeker)((*Node)(nil))
var _ = (gofs.NodeCopyFileRanger)((*Node)(nil))
var _ = (gofs.NodeAllocater)((*Node)(nil))
var _ = (gofs.NodeGetxattrer)((*Node)(nil))
var _ = (gofs.NodeSetxattrer)((*Node)(nil))
var _ = (gofs.NodeRemovexattrer)((*Node)(nil))
var _ = (gofs.NodeListxattrer)((*Node)(nil))

// What an open directory implements.
var _ = (gofs.FileReaddirenter)((*dirHandle)(nil))
var _ = (gofs.FileSeekdirer)((*dirHandle)(nil))
var _ = (gofs.FileLookuper)((*dirHandle)(nil))
var _ = (gofs.FileFsyncdirer)((*dirHandle)(nil))
var _ = (gofs.FileReleasedirer)((*dirHandle)(nil))
