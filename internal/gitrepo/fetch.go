package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// fetch brings the clone to the remote branch's tip: one upload-pack exchange wanting
// the tip and having ours, so only new objects travel. It also indexes the new commits'
// Request-Ids. Fetches and tip moves are serialized by syncMu; the object storage is
// locked only while the parsed objects are stored.
func (r *Repo) fetch(ctx context.Context) error {
	return r.red.err(r.fetchTip(ctx))
}

func (r *Repo) fetchTip(ctx context.Context) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	cli, err := client.NewClient(r.ep)
	if err != nil {
		return err
	}
	sess, err := cli.NewUploadPackSession(r.ep, r.auth)
	if err != nil {
		return fmt.Errorf("gitrepo: fetch %s: %w", r.red.shown, err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gitrepo: fetch %s: %w", r.red.shown, err)
	}
	want, ok := ar.References[r.branchRef.String()]
	if !ok {
		return nil // the first commit creates the branch
	}
	r.mu.RLock()
	tip := r.tip
	haveWant := r.st.HasEncodedObject(want) == nil
	r.mu.RUnlock()
	if want == tip {
		return nil
	}
	if !haveWant {
		req := packp.NewUploadPackRequestFromCapabilities(ar.Capabilities)
		if r.opts.Dir != "" {
			// The pack is kept as received; it must hold its own delta bases.
			req.Capabilities.Delete(capability.ThinPack)
		}
		if ar.Capabilities.Supports(capability.NoProgress) {
			_ = req.Capabilities.Set(capability.NoProgress)
		}
		req.Wants = []plumbing.Hash{want}
		if !tip.IsZero() {
			req.Haves = []plumbing.Hash{tip}
		}
		resp, err := sess.UploadPack(ctx, req)
		if err != nil {
			return fmt.Errorf("gitrepo: fetch %s: %w", r.red.shown, err)
		}
		defer resp.Close()
		var rd io.Reader = resp
		switch {
		case req.Capabilities.Supports(capability.Sideband64k):
			rd = sideband.NewDemuxer(sideband.Sideband64k, resp)
		case req.Capabilities.Supports(capability.Sideband):
			rd = sideband.NewDemuxer(sideband.Sideband, resp)
		}
		pp, err := readPack(rd, r.readObject)
		if err != nil {
			return fmt.Errorf("gitrepo: fetch %s: %w", r.red.shown, err)
		}
		if err := r.storePack(pp); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idx.walk(r.st, want, r.opts.IdempotencyDepth)
	r.setTip(want)
	return nil
}

// readObject returns a stored object's content (delta bases of thin packs).
func (r *Repo) readObject(h plumbing.Hash) (plumbing.ObjectType, []byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	o, err := r.st.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return 0, nil, err
	}
	rd, err := o.Reader()
	if err != nil {
		return 0, nil, err
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	return o.Type(), b, err
}

// storePack keeps a fetched pack: as objects in memory, or on disk as the pack itself
// plus its index (go-git's storage then reads it like any pack).
func (r *Repo) storePack(pp *parsedPack) error {
	if r.opts.Dir == "" {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, o := range pp.objects {
			if _, err := r.st.SetEncodedObject(&memObject{typ: o.typ, hash: o.hash, content: o.content}); err != nil {
				return err
			}
		}
		return nil
	}
	dir := filepath.Join(r.opts.Dir, "objects", "pack")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return storageErr("write fetched pack to the clone", err)
	}
	// Until the pack and its index are both in place the clone's tip does not move;
	// a failed write removes what it began, and the next fetch asks for all of it again.
	if err := writePack(filepath.Join(dir, "pack-"+pp.sum.String()), pp.raw, pp.idxV2()); err != nil {
		return storageErr("write fetched pack to the clone", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// go-git loads the pack list once; a new storage sees the new pack.
	r.st = filesystem.NewStorage(osfs.New(r.opts.Dir), cache.NewObjectLRUDefault())
	return nil
}
